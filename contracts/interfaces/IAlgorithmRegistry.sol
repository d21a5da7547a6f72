// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev The algorithm center (算法中心): algorithms are submitted with their code hash pinned, evaluated by a
 * REVIEWER (测评: report hash and score), listed (上架) when their latest evaluation passes, and delisted at any
 * time; a listed algorithm evaluated below the pass mark is delisted at once (continual evaluation).
 * The owner org of a catalog entry admits listed algorithms for that entry in the data zone; an admission
 * counts only while the algorithm stays listed, so delisting takes effect everywhere at once.
 */
interface IAlgorithmRegistry {
    enum AlgorithmStatus {
        None,
        Submitted,
        Evaluated,
        Listed,
        Delisted
    }

    struct AlgorithmInput {
        string name; // e.g. "grouped_count"
        string version; // e.g. "1.0.0"
        bytes32 codeHash; // keccak256 of the implementation the zone runs; the zone refuses any other code
        string outputs; // JSON: the declared outputs (what leaves the zone), metadata only
    }

    struct Algorithm {
        uint32 submitterOrg;
        AlgorithmStatus status;
        uint8 score; // latest evaluation, 0..100
        bytes32 codeHash;
        bytes32 reportHash; // latest evaluation report (kept off-chain)
        bytes32 inputHash; // keccak256(abi.encode(AlgorithmInput))
    }

    /// @dev An algorithm was submitted with its full record; `inputHash` = keccak256(abi.encode(input)).
    event AlgorithmSubmitted(
        uint64 indexed algorithmId, uint32 indexed submitterOrg, address submitter, AlgorithmInput input, bytes32 inputHash
    );
    event AlgorithmEvaluated(
        uint64 indexed algorithmId, uint32 indexed reviewerOrg, address reviewer, bytes32 reportHash, uint8 score, bool passed
    );
    event AlgorithmStatusChanged(
        uint64 indexed algorithmId, uint32 indexed byOrg, AlgorithmStatus fromStatus, AlgorithmStatus toStatus, string reason
    );
    event AlgorithmAdmitted(uint64 indexed entryId, uint64 indexed algorithmId, uint32 indexed ownerOrg, address by);
    event AlgorithmWithdrawn(uint64 indexed entryId, uint64 indexed algorithmId, uint32 indexed ownerOrg, address by);

    error AlgorithmUnknown(uint64 algorithmId);
    error AlgorithmEmptyName();
    error AlgorithmEmptyVersion();
    error AlgorithmZeroCodeHash();
    error AlgorithmDuplicate(string name, string version);
    error AlgorithmBadScore(uint8 score);
    error AlgorithmSelfEvaluation(uint64 algorithmId, uint32 org);
    error AlgorithmIllegalStatus(uint64 algorithmId, AlgorithmStatus fromStatus, AlgorithmStatus toStatus);
    error AlgorithmNotPassed(uint64 algorithmId, uint8 score, uint8 passMark);
    error AlgorithmNotListed(uint64 algorithmId, AlgorithmStatus status);
    error AlgorithmNotEntryOwner(uint64 entryId, uint32 callerOrg, uint32 ownerOrg);
    error AlgorithmAlreadyAdmitted(uint64 entryId, uint64 algorithmId);
    error AlgorithmNotAdmitted(uint64 entryId, uint64 algorithmId);

    function getAlgorithm(uint64 algorithmId) external view returns (Algorithm memory);

    /// @dev True while `algorithmId` is admitted for `entryId` and listed.
    function isAdmitted(uint64 entryId, uint64 algorithmId) external view returns (bool);
}
