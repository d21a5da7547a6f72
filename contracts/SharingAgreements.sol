// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";
import {ISharingAgreements} from "./interfaces/ISharingAgreements.sol";

/**
 * @dev Sharing agreements. The number of approvals a conditional entry needs depends on its grade and is
 * set by the consortium (defaults 1, 1, 2, 2 for grades 1-4); unconditional entries are granted at request.
 *
 * A decision is the EIP-712 struct
 * `Decision(uint256 requestId,uint8 decision,bytes32 reasonHash,uint256 nonce,uint256 deadline)`
 * signed by an APPROVER account of the entry's owner org, in the domain {name: "DirChainSharing", version: "1",
 * chainId, verifyingContract: this}; nonces are per approver and used in order, so a signature counts once
 * (no replay) and only before its deadline.
 *
 * The domain separator is computed here rather than with OpenZeppelin's EIP712: that one (5.7) pulls in
 * `mcopy`, a Cancun opcode, and these contracts target paris so they also run on Clique and QBFT chains.
 */
contract SharingAgreements is ISharingAgreements {
    bytes32 public constant DECISION_TYPEHASH =
        keccak256("Decision(uint256 requestId,uint8 decision,bytes32 reasonHash,uint256 nonce,uint256 deadline)");
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _APPROVER_ROLE = keccak256("APPROVER");
    bytes32 private constant _RELAYER_ROLE = keccak256("RELAYER");
    uint8 private constant _ALL_FORMS = 7;
    uint40 public constant MIN_DURATION = 1 hours;
    uint40 public constant MAX_DURATION = 5 * 365 days;

    IConsortium private immutable _consortium;
    IDataCatalog private immutable _catalog;
    mapping(uint8 grade => uint8) private _approvalsByGrade;
    Request[] private _requests; // index 0 unused: request ids start at 1
    mapping(uint256 requestId => mapping(address approver => bool)) private _approvedBy;
    mapping(address approver => uint256) private _nonces;
    ReceiptBatch[] private _receiptBatches; // index 0 unused: batch ids start at 1
    mapping(uint32 relayerOrg => uint64) private _lastAnchoredReceipt;

    constructor(IConsortium consortium_, IDataCatalog catalog_) {
        _consortium = consortium_;
        _catalog = catalog_;
        _requests.push();
        _receiptBatches.push();
        _setThreshold(1, 1);
        _setThreshold(2, 1);
        _setThreshold(3, 2);
        _setThreshold(4, 2);
    }

    /// @dev Sets the approvals a conditional entry of `grade` needs; only by the consortium (a passed proposal).
    function setApprovalThreshold(uint8 grade, uint8 approvals) external {
        if (msg.sender != address(_consortium)) revert SharingOnlyConsortium(msg.sender);
        _setThreshold(grade, approvals);
    }

    /**
     * @dev Requests `form` of catalog entry `entryId` for `purpose`, for `duration` seconds once granted.
     *
     * Requirements: the caller is an account of an active member org other than the owner; the entry is
     * published and shareable; `form` is one form the entry allows; purpose not empty; duration 1 h..5 y.
     *
     * Emits a {SharingRequested} event, and {SharingGranted} at once for unconditional entries.
     */
    function request(uint64 entryId, uint8 form, string calldata purpose, uint40 duration)
        external
        returns (uint256 requestId)
    {
        uint32 requesterOrg = _consortium.requireMember(msg.sender);
        IDataCatalog.Entry memory entry = _shareableEntry(entryId, form);
        if (entry.ownerOrg == requesterOrg) revert SharingOwnEntry(entryId);
        if (bytes(purpose).length == 0) revert SharingEmptyPurpose();
        if (duration < MIN_DURATION || duration > MAX_DURATION) revert SharingBadDuration(duration);

        uint8 needed = entry.shareCondition == IDataCatalog.ShareCondition.Unconditional
            ? 0
            : _approvalsByGrade[entry.grade];
        requestId = _requests.length;
        _requests.push(
            Request({
                entryId: entryId,
                requesterOrg: requesterOrg,
                ownerOrg: entry.ownerOrg,
                form: form,
                status: RequestStatus.Pending,
                approvals: 0,
                approvalsNeeded: needed,
                duration: duration,
                requestedAt: uint40(block.timestamp),
                grantedAt: 0,
                expiresAt: 0
            })
        );
        emit SharingRequested(requestId, entryId, requesterOrg, entry.ownerOrg, msg.sender, form, purpose, duration, needed);
        if (needed == 0) _grant(requestId, _requests[requestId]);
    }

    /**
     * @dev Counts `approver`'s signed approval of a pending request; grants it when enough have approved.
     *
     * Requirements: the request is pending; the entry is still published, shareable and allows the form
     * (the owner may have changed it since the request); the signature is `approver`'s over Decision(Approve)
     * with its current nonce, before `deadline`; `approver` holds APPROVER in the entry's owner org and has
     * not approved this request yet.
     *
     * Emits a {SharingApproved} event, and {SharingGranted} when the threshold is reached.
     */
    function approve(uint256 requestId, address approver, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
    {
        Request storage r = _pending(requestId);
        _shareableEntry(r.entryId, r.form);
        _useDecision(requestId, r.ownerOrg, Decision.Approve, "", approver, nonce, deadline, signature);
        if (_approvedBy[requestId][approver]) revert SharingAlreadyApproved(requestId, approver);
        _approvedBy[requestId][approver] = true;
        uint8 approvals = r.approvals + 1;
        r.approvals = approvals;
        emit SharingApproved(requestId, approver, r.ownerOrg, approvals, nonce);
        if (approvals >= r.approvalsNeeded) _grant(requestId, r);
    }

    /// @dev Refuses a pending request with `reason`, on one owner approver's signature. Emits {SharingRefused}.
    function refuse(
        uint256 requestId,
        string calldata reason,
        address approver,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Request storage r = _pending(requestId);
        _useDecision(requestId, r.ownerOrg, Decision.Refuse, reason, approver, nonce, deadline, signature);
        r.status = RequestStatus.Refused;
        emit SharingRefused(requestId, approver, r.ownerOrg, reason, nonce);
    }

    /// @dev Revokes a grant with `reason`, on one owner approver's signature. Emits a {SharingRevoked} event.
    function revoke(
        uint256 requestId,
        string calldata reason,
        address approver,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Request storage r = _existing(requestId);
        if (r.status != RequestStatus.Granted) revert SharingNotGranted(requestId, r.status);
        _useDecision(requestId, r.ownerOrg, Decision.Revoke, reason, approver, nonce, deadline, signature);
        r.status = RequestStatus.Revoked;
        emit SharingRevoked(requestId, approver, r.ownerOrg, reason, nonce);
    }

    /**
     * @dev Anchors the data-zone usage receipts `firstReceipt`..`lastReceipt` of the caller's org (the zone
     * operator) by the root of their Merkle tree. The tree follows OpenZeppelin's {MerkleProof}: sorted-pair
     * keccak256, leaf = keccak256(bytes.concat(keccak256(abi.encode(receiptId, receiptHash)))). Receipt ids
     * are per relayer org and anchored in order without gaps, so no receipt is left out or anchored twice.
     *
     * Requirements: the caller is a RELAYER of an active org; root not zero; `firstReceipt` is the org's
     * next unanchored id and `lastReceipt` >= `firstReceipt`.
     *
     * Emits a {UsageReceiptsAnchored} event.
     */
    function anchorReceipts(bytes32 merkleRoot, uint64 firstReceipt, uint64 lastReceipt)
        external
        returns (uint64 batchId)
    {
        uint32 org = _consortium.requireRole(msg.sender, _RELAYER_ROLE);
        if (merkleRoot == bytes32(0)) revert SharingZeroRoot();
        uint64 expectedFirst = _lastAnchoredReceipt[org] + 1;
        if (firstReceipt != expectedFirst || lastReceipt < firstReceipt) {
            revert SharingBadReceiptRange(firstReceipt, lastReceipt, expectedFirst);
        }
        _lastAnchoredReceipt[org] = lastReceipt;
        batchId = uint64(_receiptBatches.length);
        _receiptBatches.push(
            ReceiptBatch({
                merkleRoot: merkleRoot,
                firstReceipt: firstReceipt,
                lastReceipt: lastReceipt,
                relayerOrg: org,
                anchoredAt: uint40(block.timestamp)
            })
        );
        emit UsageReceiptsAnchored(batchId, org, merkleRoot, firstReceipt, lastReceipt, msg.sender);
    }

    // ---------------------------------------------------------------- views

    function getReceiptBatch(uint64 batchId) external view returns (ReceiptBatch memory) {
        if (batchId == 0 || batchId >= _receiptBatches.length) revert SharingUnknownBatch(batchId);
        return _receiptBatches[batchId];
    }

    function lastAnchoredReceipt(uint32 relayerOrg) external view returns (uint64) {
        return _lastAnchoredReceipt[relayerOrg];
    }

    /// @dev True if receipt `receiptId` with hash `receiptHash` is in batch `batchId` by `proof`.
    function verifyReceipt(uint64 batchId, uint64 receiptId, bytes32 receiptHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (batchId == 0 || batchId >= _receiptBatches.length) revert SharingUnknownBatch(batchId);
        ReceiptBatch storage b = _receiptBatches[batchId];
        if (receiptId < b.firstReceipt || receiptId > b.lastReceipt) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(receiptId, receiptHash))));
        return MerkleProof.verifyCalldata(proof, b.merkleRoot, leaf);
    }

    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _existing(requestId);
    }

    function requestCount() external view returns (uint256) {
        return _requests.length - 1;
    }

    /// @dev True while the grant is neither revoked nor expired (by the current block's time).
    function isActive(uint256 requestId) external view returns (bool) {
        Request storage r = _existing(requestId);
        return r.status == RequestStatus.Granted && block.timestamp < r.expiresAt;
    }

    function hasApproved(uint256 requestId, address approver) external view returns (bool) {
        return _approvedBy[requestId][approver];
    }

    function approvalThreshold(uint8 grade) external view returns (uint8) {
        return _approvalsByGrade[grade];
    }

    function nonces(address approver) external view returns (uint256) {
        return _nonces[approver];
    }

    /// @dev The EIP-712 digest an approver signs (for clients that cannot build typed data themselves).
    function decisionDigest(uint256 requestId, Decision decision, string calldata reason, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _digest(requestId, decision, reason, nonce, deadline);
    }

    /// @dev The EIP-712 domain separator (computed per call, so it follows the chain id).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("DirChainSharing"), keccak256("1"), block.chainid, address(this))
        );
    }

    // ---------------------------------------------------------------- internal

    function _existing(uint256 requestId) private view returns (Request storage) {
        if (requestId == 0 || requestId >= _requests.length) revert SharingUnknownRequest(requestId);
        return _requests[requestId];
    }

    /// @dev The entry, if it is published, shareable and allows `form` (one of the form bits).
    function _shareableEntry(uint64 entryId, uint8 form) private view returns (IDataCatalog.Entry memory entry) {
        entry = _catalog.getEntry(entryId);
        if (entry.status != IDataCatalog.EntryStatus.Published) revert SharingEntryNotPublished(entryId);
        if (entry.shareCondition == IDataCatalog.ShareCondition.NotShareable) revert SharingNotShareable(entryId);
        if (form != 1 && form != 2 && form != 4) revert SharingBadForm(form);
        if (entry.forms & form == 0) revert SharingFormNotAllowed(entryId, form, entry.forms);
    }

    function _pending(uint256 requestId) private view returns (Request storage r) {
        r = _existing(requestId);
        if (r.status != RequestStatus.Pending) revert SharingNotPending(requestId, r.status);
    }

    function _digest(uint256 requestId, Decision decision, string memory reason, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        bytes32 structHash =
            keccak256(abi.encode(DECISION_TYPEHASH, requestId, uint8(decision), keccak256(bytes(reason)), nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @dev Checks a signed decision (deadline, nonce, signer, owner approver role) and uses the nonce.
    function _useDecision(
        uint256 requestId,
        uint32 ownerOrg,
        Decision decision,
        string memory reason,
        address approver,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert SharingSignatureExpired(deadline);
        uint256 expected = _nonces[approver];
        if (nonce != expected) revert SharingNonceUsed(approver, nonce, expected);
        bytes32 digest = _digest(requestId, decision, reason, nonce, deadline);
        // The third value only details a malformed signature; `error` and the signer are what decide.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, signature);
        if (error != ECDSA.RecoverError.NoError || signer != approver) revert SharingInvalidSignature(approver);
        // requireRole reverts for an account outside the consortium, of a suspended org or without the role:
        // each means "not an approver", reported as such rather than as the Consortium's own error
        bool isOwnerApprover = false; // stays false when requireRole reverts
        try _consortium.requireRole(approver, _APPROVER_ROLE) returns (uint32 approverOrg) {
            isOwnerApprover = approverOrg == ownerOrg;
        } catch {}
        if (!isOwnerApprover) revert SharingNotOwnerApprover(approver, ownerOrg);
        _nonces[approver] = expected + 1;
    }

    function _grant(uint256 requestId, Request storage r) private {
        uint40 now_ = uint40(block.timestamp);
        r.status = RequestStatus.Granted;
        r.grantedAt = now_;
        r.expiresAt = now_ + r.duration;
        emit SharingGranted(requestId, r.entryId, r.requesterOrg, r.form, now_, r.expiresAt);
    }

    function _setThreshold(uint8 grade, uint8 approvals) private {
        if (grade == 0 || grade > 4 || approvals == 0 || approvals > 10) revert SharingBadThreshold(grade, approvals);
        _approvalsByGrade[grade] = approvals;
        emit ApprovalThresholdSet(grade, approvals);
    }
}
