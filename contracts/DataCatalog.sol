// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDataCatalog} from "./interfaces/IDataCatalog.sol";

interface IDeviceLedger {
    function exists(string calldata code) external view returns (bool);
}

/**
 * @dev The data catalog. Only a REGISTRAR of the owner org creates, revises or changes the status of an
 * entry. Status moves Draft -> Published -> Deprecated (or Draft -> Deprecated); revisions keep the status.
 */
contract DataCatalog is IDataCatalog {
    uint8 public constant FORM_RAW = 1;
    uint8 public constant FORM_DESENSITIZED = 2;
    uint8 public constant FORM_RESULT_ONLY = 4;
    uint8 public constant MAX_GRADE = 4;
    bytes32 private constant _REGISTRAR_ROLE = keccak256("REGISTRAR");

    IConsortium private immutable _consortium;
    IDeviceLedger private immutable _devices;
    Entry[] private _entries; // index 0 unused: entry ids start at 1

    constructor(IConsortium consortium_, IDeviceLedger devices_) {
        _consortium = consortium_;
        _devices = devices_;
        _entries.push();
    }

    /**
     * @dev Creates an entry at version 1.0, as a draft or published at once.
     *
     * Requirements: the caller is a REGISTRAR of an active org; title not empty; grade 1..4; forms a
     * non-empty subset of raw/desensitized/result-only; every lineage device on the ledger and every
     * upstream entry existing.
     *
     * Emits a {CatalogEntryVersioned} event and, if published, a {CatalogEntryStatusChanged} event.
     */
    function createEntry(EntryInput calldata input, bool publish) external returns (uint64 entryId) {
        uint32 org = _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
        entryId = uint64(_entries.length);
        _entries.push();
        Entry storage e = _entries[entryId];
        e.ownerOrg = org;
        e.status = EntryStatus.Draft;
        _setVersion(entryId, e, input, 1, 0);
        emit CatalogEntryStatusChanged(entryId, org, EntryStatus.None, EntryStatus.Draft);
        if (publish) _setStatus(entryId, e, EntryStatus.Published);
    }

    /**
     * @dev Records a new version of an entry: major+1.0 if `majorChange`, else major.minor+1.
     *
     * Requirements: the caller is a REGISTRAR of the owner org; the entry is not deprecated; same checks
     * on the input as {createEntry}.
     *
     * Emits a {CatalogEntryVersioned} event.
     */
    function reviseEntry(uint64 entryId, EntryInput calldata input, bool majorChange) external {
        Entry storage e = _owned(entryId);
        if (e.status == EntryStatus.Deprecated) {
            revert CatalogIllegalStatus(entryId, e.status, e.status);
        }
        if (majorChange) _setVersion(entryId, e, input, e.major + 1, 0);
        else _setVersion(entryId, e, input, e.major, e.minor + 1);
    }

    /// @dev Publishes or deprecates an entry. Emits a {CatalogEntryStatusChanged} event.
    function setStatus(uint64 entryId, EntryStatus status) external {
        Entry storage e = _owned(entryId);
        _setStatus(entryId, e, status);
    }

    function getEntry(uint64 entryId) external view returns (Entry memory) {
        if (entryId == 0 || entryId >= _entries.length) revert CatalogUnknownEntry(entryId);
        return _entries[entryId];
    }

    function entryCount() external view returns (uint64) {
        return uint64(_entries.length - 1);
    }

    function _owned(uint64 entryId) private view returns (Entry storage e) {
        uint32 org = _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
        if (entryId == 0 || entryId >= _entries.length) revert CatalogUnknownEntry(entryId);
        e = _entries[entryId];
        if (e.ownerOrg != org) revert CatalogNotOwner(entryId, org, e.ownerOrg);
    }

    function _setStatus(uint64 entryId, Entry storage e, EntryStatus to) private {
        EntryStatus from = e.status;
        bool legal = (from == EntryStatus.Draft && (to == EntryStatus.Published || to == EntryStatus.Deprecated))
            || (from == EntryStatus.Published && to == EntryStatus.Deprecated);
        if (!legal) revert CatalogIllegalStatus(entryId, from, to);
        e.status = to;
        emit CatalogEntryStatusChanged(entryId, e.ownerOrg, from, to);
    }

    function _setVersion(uint64 entryId, Entry storage e, EntryInput calldata input, uint16 major, uint16 minor)
        private
    {
        _check(entryId, input);
        bytes32 versionHash = keccak256(abi.encode(input));
        e.grade = input.grade;
        e.shareCondition = input.shareCondition;
        e.forms = input.forms;
        e.major = major;
        e.minor = minor;
        e.versionHash = versionHash;
        emit CatalogEntryVersioned(entryId, e.ownerOrg, major, minor, input, versionHash);
    }

    function _check(uint64 entryId, EntryInput calldata input) private view {
        if (bytes(input.title).length == 0) revert CatalogEmptyTitle();
        if (input.grade == 0 || input.grade > MAX_GRADE) revert CatalogBadGrade(input.grade);
        if (input.forms == 0 || input.forms > (FORM_RAW | FORM_DESENSITIZED | FORM_RESULT_ONLY)) {
            revert CatalogBadForms(input.forms);
        }
        for (uint256 i = 0; i < input.deviceCodes.length; ++i) {
            if (!_devices.exists(input.deviceCodes[i])) revert CatalogUnknownDevice(input.deviceCodes[i]);
        }
        for (uint256 i = 0; i < input.upstream.length; ++i) {
            uint64 up = input.upstream[i];
            // an upstream entry exists and is older than this one, so lineage can never form a cycle
            if (up == 0 || up >= entryId) revert CatalogUnknownUpstream(up);
        }
    }
}
