// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev The sensing ledger (感知台账): front ends keyed by their city-wide code, with owner org, type, status,
 * location and the hash of their attributes; the life cycle is a state machine enforced here.
 *
 * Coordinates are micro-degrees (degrees x 1e6, WGS-84); times are unix seconds; `district` is the
 * six-digit administrative division code (e.g. 110105 for Chaoyang). Attributes travel in the events as
 * canonical JSON (sorted keys, no spaces) and are stored only as their keccak256, so the indexer can mirror
 * them and an auditor can recompute the hash. Attributes must never carry personal data.
 */
interface IDeviceRegistry {
    enum Status {
        None,
        Planned,
        Active,
        Suspended,
        Replaced,
        Retired
    }

    enum Action {
        Activate, // Planned -> Active
        Suspend, // Active -> Suspended
        Resume, // Suspended -> Active
        Upgrade, // Active -> Active (hardware or firmware upgraded in place)
        Replace, // Active | Suspended -> Replaced (by another planned or active device of the same org)
        Retire // Planned | Active | Suspended -> Retired
    }

    enum InspectionResult {
        Passed,
        Issues,
        Failed
    }

    /// @dev Characters allowed after a code's prefix: a bit set of CHARSET_* constants.
    struct CodeRule {
        string typeName;
        string prefix;
        uint8 length;
        uint8 charset;
    }

    struct DeviceInput {
        string code;
        uint16 typeId;
        Status status;
        uint32 district;
        int32 lat;
        int32 lon;
        uint40 builtAt;
        string attributes;
    }

    /// @dev Storage layout: one packed slot plus the attributes hash (2 slots per device).
    struct Device {
        uint32 ownerOrg;
        uint16 typeId;
        Status status;
        uint32 district;
        int32 lat;
        int32 lon;
        uint40 builtAt;
        uint40 lastInspectedAt;
        bytes32 attributesHash;
    }

    event CodeRuleSet(uint16 indexed typeId, string typeName, string prefix, uint8 length, uint8 charset);
    event DeviceRegistered(
        bytes32 indexed codeHash,
        uint32 indexed ownerOrg,
        string code,
        uint16 typeId,
        Status status,
        uint32 district,
        int32 lat,
        int32 lon,
        uint40 builtAt,
        bytes32 attributesHash,
        string attributes
    );
    event DeviceUpdated(
        bytes32 indexed codeHash,
        uint32 indexed ownerOrg,
        string code,
        uint32 district,
        int32 lat,
        int32 lon,
        bytes32 attributesHash,
        string attributes
    );
    event DeviceLifecycleChanged(
        bytes32 indexed codeHash,
        uint32 indexed ownerOrg,
        string code,
        Action action,
        Status fromStatus,
        Status toStatus,
        string replacedBy,
        string note
    );
    event DeviceInspected(
        bytes32 indexed codeHash,
        uint32 indexed ownerOrg,
        string code,
        InspectionResult result,
        uint40 inspectedAt,
        bytes32 reportHash,
        string note
    );

    error DeviceRegistryOnlyConsortium(address caller);
    error DeviceRegistryBadCodeRule(uint16 typeId);
    error DeviceRegistryUnknownType(uint16 typeId);
    error DeviceRegistryCodeLength(string code, uint8 expected, uint256 actual);
    error DeviceRegistryCodePrefix(string code, string prefix);
    error DeviceRegistryCodeCharacter(string code, uint256 position);
    error DeviceRegistryDuplicateCode(string code);
    error DeviceRegistryUnknownDevice(string code);
    error DeviceRegistryNotOwner(string code, uint32 callerOrg, uint32 ownerOrg);
    error DeviceRegistryBadInitialStatus(string code, Status status);
    error DeviceRegistryBadLocation(int32 lat, int32 lon);
    error DeviceRegistryIllegalTransition(string code, Status status, Action action);
    error DeviceRegistryBadReplacement(string code, string replacedBy);
    error DeviceRegistryNotInspectable(string code, Status status);
    error DeviceRegistryBadTime(uint40 time);
    error DeviceRegistryEmptyBatch();
    error DeviceRegistryOnlyReviewBoard(address caller);

    /// @dev The joint-review board whose approved projects enter the ledger as planned devices.
    event ReviewBoardSet(address reviewBoard);

    function getDevice(string calldata code) external view returns (Device memory);

    function getCodeRule(uint16 typeId) external view returns (CodeRule memory);

    function exists(string calldata code) external view returns (bool);

    /// @dev Registers the planned devices of an approved joint-review project for `org`; only the review board.
    function registerReviewed(uint32 org, DeviceInput[] calldata inputs) external;
}
