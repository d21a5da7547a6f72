// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev Sharing requests and grants (共享申请授权审批): request -> approvals -> active grant -> revoked or
 * expired; or refused. Approvals, refusals and revocations are EIP-712 signatures of the entry owner's
 * APPROVER accounts, verified here; whoever sends the transaction (the gateway) only relays them.
 *
 * `form` is one of the catalog's form bits: 1 raw, 2 desensitized, 4 result-only. Times are unix seconds
 * of the chain's blocks; a grant is active while `block.timestamp < expiresAt` and not revoked.
 */
interface ISharingAgreements {
    enum RequestStatus {
        None,
        Pending,
        Granted,
        Refused,
        Revoked
    }

    enum Decision {
        None,
        Approve,
        Refuse,
        Revoke
    }

    struct Request {
        uint64 entryId;
        uint32 requesterOrg;
        uint32 ownerOrg;
        uint8 form;
        RequestStatus status;
        uint8 approvals;
        uint8 approvalsNeeded;
        uint40 duration;
        uint40 requestedAt;
        uint40 grantedAt;
        uint40 expiresAt;
    }

    /// @dev A batch of data-zone usage receipts, anchored by its Merkle root (see {anchorReceipts}).
    struct ReceiptBatch {
        bytes32 merkleRoot;
        uint64 firstReceipt;
        uint64 lastReceipt;
        uint32 relayerOrg;
        uint40 anchoredAt;
    }

    event SharingRequested(
        uint256 indexed requestId,
        uint64 indexed entryId,
        uint32 indexed requesterOrg,
        uint32 ownerOrg,
        address requester,
        uint8 form,
        string purpose,
        uint40 duration,
        uint8 approvalsNeeded
    );
    event SharingApproved(
        uint256 indexed requestId, address indexed approver, uint32 indexed ownerOrg, uint8 approvals, uint256 nonce
    );
    event SharingGranted(
        uint256 indexed requestId, uint64 indexed entryId, uint32 indexed requesterOrg, uint8 form, uint40 grantedAt, uint40 expiresAt
    );
    event SharingRefused(uint256 indexed requestId, address indexed approver, uint32 indexed ownerOrg, string reason, uint256 nonce);
    event SharingRevoked(uint256 indexed requestId, address indexed approver, uint32 indexed ownerOrg, string reason, uint256 nonce);
    event ApprovalThresholdSet(uint8 indexed grade, uint8 approvals);
    event UsageReceiptsAnchored(
        uint64 indexed batchId,
        uint32 indexed relayerOrg,
        bytes32 merkleRoot,
        uint64 firstReceipt,
        uint64 lastReceipt,
        address relayer
    );

    error SharingOnlyConsortium(address caller);
    error SharingBadThreshold(uint8 grade, uint8 approvals);
    error SharingEntryNotPublished(uint64 entryId);
    error SharingNotShareable(uint64 entryId);
    error SharingBadForm(uint8 form);
    error SharingFormNotAllowed(uint64 entryId, uint8 form, uint8 allowedForms);
    error SharingOwnEntry(uint64 entryId);
    error SharingEmptyPurpose();
    error SharingBadDuration(uint40 duration);
    error SharingUnknownRequest(uint256 requestId);
    error SharingNotPending(uint256 requestId, RequestStatus status);
    error SharingNotGranted(uint256 requestId, RequestStatus status);
    error SharingSignatureExpired(uint256 deadline);
    error SharingNonceUsed(address approver, uint256 nonce, uint256 expected);
    error SharingInvalidSignature(address approver);
    error SharingNotOwnerApprover(address approver, uint32 ownerOrg);
    error SharingAlreadyApproved(uint256 requestId, address approver);
    error SharingZeroRoot();
    error SharingBadReceiptRange(uint64 firstReceipt, uint64 lastReceipt, uint64 expectedFirst);
    error SharingUnknownBatch(uint64 batchId);

    function getRequest(uint256 requestId) external view returns (Request memory);

    function isActive(uint256 requestId) external view returns (bool);

    function nonces(address approver) external view returns (uint256);
}
