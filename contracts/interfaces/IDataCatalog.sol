// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev The sensing-data catalog (感知数据目录): entries with owner, classification, grade, share condition,
 * allowed forms, schema hash, lineage to devices and upstream entries, versions (major.minor) and status.
 *
 * The chain stores what sharing must enforce (owner, grade, condition, forms, status, version) and the hash
 * of each version's full record; the events carry the full record so the indexer can mirror every version
 * and an auditor can recompute the hashes. Titles and schemas are metadata, never personal data.
 */
interface IDataCatalog {
    enum ShareCondition {
        Unconditional, // 无条件共享
        Conditional, // 有条件共享
        NotShareable // 不予共享
    }

    enum EntryStatus {
        None,
        Draft,
        Published,
        Deprecated
    }

    struct EntryInput {
        string title;
        string classification;
        uint8 grade; // 1 (lowest sensitivity) .. 4 (highest)
        ShareCondition shareCondition;
        uint8 forms; // bit set of FORM_RAW | FORM_DESENSITIZED | FORM_RESULT_ONLY
        string schema; // JSON: fields, types and per-field masking rules
        string[] deviceCodes; // lineage: producing devices (must be on the ledger)
        uint64[] upstream; // lineage: entries this one derives from
    }

    struct Entry {
        uint32 ownerOrg;
        uint8 grade;
        ShareCondition shareCondition;
        uint8 forms;
        EntryStatus status;
        uint16 major;
        uint16 minor;
        bytes32 versionHash; // keccak256(abi.encode(EntryInput)) of the current version
    }

    /**
     * @dev A version of an entry was recorded (1.0 at creation), with its full record: `versionHash` is
     * keccak256(abi.encode(entry)), so an auditor recomputes it from the event alone.
     */
    event CatalogEntryVersioned(
        uint64 indexed entryId, uint32 indexed ownerOrg, uint16 major, uint16 minor, EntryInput entry, bytes32 versionHash
    );
    event CatalogEntryStatusChanged(
        uint64 indexed entryId, uint32 indexed ownerOrg, EntryStatus fromStatus, EntryStatus toStatus
    );

    error CatalogUnknownEntry(uint64 entryId);
    error CatalogNotOwner(uint64 entryId, uint32 callerOrg, uint32 ownerOrg);
    error CatalogEmptyTitle();
    error CatalogBadGrade(uint8 grade);
    error CatalogBadForms(uint8 forms);
    error CatalogUnknownDevice(string code);
    error CatalogUnknownUpstream(uint64 entryId);
    error CatalogIllegalStatus(uint64 entryId, EntryStatus fromStatus, EntryStatus toStatus);

    function getEntry(uint64 entryId) external view returns (Entry memory);
}
