// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAlgorithmRegistry} from "./interfaces/IAlgorithmRegistry.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";

/**
 * @dev The algorithm center. Any active member submits; a REVIEWER of another org evaluates, lists and
 * delists; a REGISTRAR of a catalog entry's owner org admits listed algorithms for that entry.
 */
contract AlgorithmRegistry is IAlgorithmRegistry {
    uint8 public constant PASS_MARK = 60; // lowest evaluation score that may be listed
    bytes32 private constant _REVIEWER_ROLE = keccak256("REVIEWER");
    bytes32 private constant _REGISTRAR_ROLE = keccak256("REGISTRAR");

    IConsortium private immutable _consortium;
    IDataCatalog private immutable _catalog;
    Algorithm[] private _algorithms; // index 0 unused: algorithm ids start at 1
    mapping(bytes32 nameVersion => uint64) private _byNameVersion;
    mapping(uint64 entryId => mapping(uint64 algorithmId => bool)) private _admitted;

    constructor(IConsortium consortium_, IDataCatalog catalog_) {
        _consortium = consortium_;
        _catalog = catalog_;
        _algorithms.push();
    }

    /**
     * @dev Submits an algorithm for evaluation.
     *
     * Requirements: the caller is an account of an active member org; name and version not empty and not
     * submitted before together; code hash not zero.
     *
     * Emits an {AlgorithmSubmitted} event.
     */
    function submit(AlgorithmInput calldata input) external returns (uint64 algorithmId) {
        uint32 org = _consortium.requireMember(msg.sender);
        if (bytes(input.name).length == 0) revert AlgorithmEmptyName();
        if (bytes(input.version).length == 0) revert AlgorithmEmptyVersion();
        if (input.codeHash == bytes32(0)) revert AlgorithmZeroCodeHash();
        bytes32 key = keccak256(abi.encode(input.name, input.version));
        if (_byNameVersion[key] != 0) revert AlgorithmDuplicate(input.name, input.version);
        algorithmId = uint64(_algorithms.length);
        _byNameVersion[key] = algorithmId;
        bytes32 inputHash = keccak256(abi.encode(input));
        _algorithms.push(
            Algorithm({
                submitterOrg: org,
                status: AlgorithmStatus.Submitted,
                score: 0,
                codeHash: input.codeHash,
                reportHash: bytes32(0),
                inputHash: inputHash
            })
        );
        emit AlgorithmSubmitted(algorithmId, org, msg.sender, input, inputHash);
    }

    /**
     * @dev Records an evaluation (report hash, score 0..100). A listed algorithm scored below {PASS_MARK} is
     * delisted at once.
     *
     * Requirements: the caller is a REVIEWER of an org other than the submitter's; the algorithm is not
     * delisted; score <= 100.
     *
     * Emits an {AlgorithmEvaluated} event, and {AlgorithmStatusChanged} when the status changes.
     */
    function evaluate(uint64 algorithmId, bytes32 reportHash, uint8 score) external {
        uint32 org = _consortium.requireRole(msg.sender, _REVIEWER_ROLE);
        Algorithm storage a = _existing(algorithmId);
        if (a.submitterOrg == org) revert AlgorithmSelfEvaluation(algorithmId, org);
        if (score > 100) revert AlgorithmBadScore(score);
        if (a.status == AlgorithmStatus.Delisted) {
            revert AlgorithmIllegalStatus(algorithmId, a.status, AlgorithmStatus.Evaluated);
        }
        bool passed = score >= PASS_MARK;
        a.score = score;
        a.reportHash = reportHash;
        emit AlgorithmEvaluated(algorithmId, org, msg.sender, reportHash, score, passed);
        if (a.status == AlgorithmStatus.Submitted) {
            _setStatus(algorithmId, a, org, AlgorithmStatus.Evaluated, "");
        } else if (a.status == AlgorithmStatus.Listed && !passed) {
            _setStatus(algorithmId, a, org, AlgorithmStatus.Delisted, "evaluation below pass mark");
        }
    }

    /**
     * @dev Lists an evaluated algorithm whose latest score passes.
     *
     * Requirements: the caller is a REVIEWER of an org other than the submitter's; status Evaluated;
     * score >= {PASS_MARK}.
     *
     * Emits an {AlgorithmStatusChanged} event.
     */
    function list(uint64 algorithmId) external {
        uint32 org = _consortium.requireRole(msg.sender, _REVIEWER_ROLE);
        Algorithm storage a = _existing(algorithmId);
        if (a.submitterOrg == org) revert AlgorithmSelfEvaluation(algorithmId, org);
        if (a.status != AlgorithmStatus.Evaluated) {
            revert AlgorithmIllegalStatus(algorithmId, a.status, AlgorithmStatus.Listed);
        }
        if (a.score < PASS_MARK) revert AlgorithmNotPassed(algorithmId, a.score, PASS_MARK);
        _setStatus(algorithmId, a, org, AlgorithmStatus.Listed, "");
    }

    /**
     * @dev Takes an algorithm down for `reason`; final (a fixed algorithm is submitted as a new version).
     *
     * Requirements: the caller is a REVIEWER (of any org); the algorithm is not delisted already.
     *
     * Emits an {AlgorithmStatusChanged} event.
     */
    function delist(uint64 algorithmId, string calldata reason) external {
        uint32 org = _consortium.requireRole(msg.sender, _REVIEWER_ROLE);
        Algorithm storage a = _existing(algorithmId);
        if (a.status == AlgorithmStatus.Delisted) {
            revert AlgorithmIllegalStatus(algorithmId, a.status, AlgorithmStatus.Delisted);
        }
        _setStatus(algorithmId, a, org, AlgorithmStatus.Delisted, reason);
    }

    /**
     * @dev Admits a listed algorithm for catalog entry `entryId` in the data zone.
     *
     * Requirements: the caller is a REGISTRAR of the entry's owner org; the algorithm is listed and not
     * admitted for the entry already.
     *
     * Emits an {AlgorithmAdmitted} event.
     */
    function admit(uint64 entryId, uint64 algorithmId) external {
        uint32 owner = _entryOwner(entryId);
        Algorithm storage a = _existing(algorithmId);
        if (a.status != AlgorithmStatus.Listed) revert AlgorithmNotListed(algorithmId, a.status);
        if (_admitted[entryId][algorithmId]) revert AlgorithmAlreadyAdmitted(entryId, algorithmId);
        _admitted[entryId][algorithmId] = true;
        emit AlgorithmAdmitted(entryId, algorithmId, owner, msg.sender);
    }

    /**
     * @dev Withdraws an admission. Requirements: the caller is a REGISTRAR of the entry's owner org; the
     * algorithm is admitted for the entry. Emits an {AlgorithmWithdrawn} event.
     */
    function withdraw(uint64 entryId, uint64 algorithmId) external {
        uint32 owner = _entryOwner(entryId);
        if (!_admitted[entryId][algorithmId]) revert AlgorithmNotAdmitted(entryId, algorithmId);
        _admitted[entryId][algorithmId] = false;
        emit AlgorithmWithdrawn(entryId, algorithmId, owner, msg.sender);
    }

    // ---------------------------------------------------------------- views

    function getAlgorithm(uint64 algorithmId) external view returns (Algorithm memory) {
        return _existing(algorithmId);
    }

    function algorithmCount() external view returns (uint64) {
        return uint64(_algorithms.length - 1);
    }

    /// @dev The id of the algorithm submitted as `name` `version`, or 0.
    function idOf(string calldata name, string calldata version) external view returns (uint64) {
        return _byNameVersion[keccak256(abi.encode(name, version))];
    }

    function isAdmitted(uint64 entryId, uint64 algorithmId) external view returns (bool) {
        return _admitted[entryId][algorithmId] && algorithmId < _algorithms.length
            && _algorithms[algorithmId].status == AlgorithmStatus.Listed;
    }

    // ---------------------------------------------------------------- internal

    function _existing(uint64 algorithmId) private view returns (Algorithm storage) {
        if (algorithmId == 0 || algorithmId >= _algorithms.length) revert AlgorithmUnknown(algorithmId);
        return _algorithms[algorithmId];
    }

    /// @dev The owner org of `entryId`, checking that the caller is one of its REGISTRARs.
    function _entryOwner(uint64 entryId) private view returns (uint32 owner) {
        uint32 org = _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
        owner = _catalog.getEntry(entryId).ownerOrg; // reverts CatalogUnknownEntry for an unknown entry
        if (org != owner) revert AlgorithmNotEntryOwner(entryId, org, owner);
    }

    function _setStatus(uint64 algorithmId, Algorithm storage a, uint32 byOrg, AlgorithmStatus to, string memory reason)
        private
    {
        AlgorithmStatus from = a.status;
        a.status = to;
        emit AlgorithmStatusChanged(algorithmId, byOrg, from, to, reason);
    }
}
