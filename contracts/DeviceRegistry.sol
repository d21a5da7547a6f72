// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";

/**
 * @dev The sensing ledger. Only a REGISTRAR account of the owner org changes a device; code rules are set
 * by the consortium (a passed proposal). See {IDeviceRegistry} for units and the event contract.
 */
contract DeviceRegistry is IDeviceRegistry {
    uint8 public constant CHARSET_DIGITS = 1;
    uint8 public constant CHARSET_UPPER = 2;
    uint8 public constant CHARSET_LOWER = 4;
    uint8 public constant CHARSET_HYPHEN = 8;
    bytes32 private constant _REGISTRAR_ROLE = keccak256("REGISTRAR");
    int32 private constant _MAX_LAT = 90_000_000;
    int32 private constant _MAX_LON = 180_000_000;

    IConsortium private immutable _consortium;
    mapping(uint16 typeId => CodeRule) private _rules;
    mapping(bytes32 codeHash => Device) private _devices;
    address private _reviewBoard;

    constructor(IConsortium consortium_) {
        _consortium = consortium_;
    }

    function consortium() external view returns (IConsortium) {
        return _consortium;
    }

    // ---------------------------------------------------------------- governed

    /**
     * @dev Sets the code rule of device type `typeId`.
     *
     * Requirements:
     * - the caller is the consortium (a passed proposal);
     * - `length` is longer than `prefix`, and `charset` allows at least one character class.
     *
     * Emits a {CodeRuleSet} event.
     */
    function setCodeRule(uint16 typeId, string calldata typeName, string calldata prefix, uint8 length, uint8 charset)
        external
    {
        if (msg.sender != address(_consortium)) revert DeviceRegistryOnlyConsortium(msg.sender);
        if (typeId == 0 || bytes(typeName).length == 0 || bytes(prefix).length >= length || charset == 0 || charset > 15)
        {
            revert DeviceRegistryBadCodeRule(typeId);
        }
        _rules[typeId] = CodeRule({typeName: typeName, prefix: prefix, length: length, charset: charset});
        emit CodeRuleSet(typeId, typeName, prefix, length, charset);
    }

    /// @dev Sets the joint-review board (see {registerReviewed}); only the consortium. Emits {ReviewBoardSet}.
    function setReviewBoard(address board) external {
        if (msg.sender != address(_consortium)) revert DeviceRegistryOnlyConsortium(msg.sender);
        _reviewBoard = board;
        emit ReviewBoardSet(board);
    }

    function reviewBoard() external view returns (address) {
        return _reviewBoard;
    }

    /**
     * @dev Registers the devices of a joint-review project approved by its lead department, for `org` (the
     * applicant), all as Planned; all or none.
     *
     * Requirements: the caller is the review board; each device passes the checks of {registerDevice} and is
     * Planned.
     *
     * Emits one {DeviceRegistered} event per device.
     */
    function registerReviewed(uint32 org, DeviceInput[] calldata inputs) external {
        if (msg.sender != _reviewBoard || msg.sender == address(0)) revert DeviceRegistryOnlyReviewBoard(msg.sender);
        if (inputs.length == 0) revert DeviceRegistryEmptyBatch();
        for (uint256 i = 0; i < inputs.length; ++i) {
            if (inputs[i].status != Status.Planned) revert DeviceRegistryBadInitialStatus(inputs[i].code, inputs[i].status);
            _register(org, inputs[i]);
        }
    }

    // ---------------------------------------------------------------- registrar writes

    /**
     * @dev Registers one device owned by the caller's org.
     *
     * Requirements:
     * - the caller is a REGISTRAR of an active member org;
     * - the code is new and follows its type's code rule; status is Planned or Active; location is valid.
     *
     * Emits a {DeviceRegistered} event.
     */
    function registerDevice(DeviceInput calldata input) external {
        _register(_callerOrg(), input);
    }

    /// @dev Registers many devices in one transaction; all or none. Emits one {DeviceRegistered} per device.
    function registerDevices(DeviceInput[] calldata inputs) external {
        if (inputs.length == 0) revert DeviceRegistryEmptyBatch();
        uint32 org = _callerOrg();
        for (uint256 i = 0; i < inputs.length; ++i) {
            _register(org, inputs[i]);
        }
    }

    /**
     * @dev Replaces a device's location and attributes.
     *
     * Requirements: the caller is a REGISTRAR of the owner org; the device is not Replaced or Retired.
     *
     * Emits a {DeviceUpdated} event.
     */
    function updateDevice(string calldata code, uint32 district, int32 lat, int32 lon, string calldata attributes)
        external
    {
        (Device storage d, bytes32 codeHash) = _owned(code);
        if (d.status == Status.Replaced || d.status == Status.Retired) {
            revert DeviceRegistryIllegalTransition(code, d.status, Action.Upgrade);
        }
        _checkLocation(lat, lon);
        bytes32 attributesHash = keccak256(bytes(attributes));
        d.district = district;
        d.lat = lat;
        d.lon = lon;
        d.attributesHash = attributesHash;
        emit DeviceUpdated(codeHash, d.ownerOrg, code, district, lat, lon, attributesHash, attributes);
    }

    /**
     * @dev Moves a device through its life cycle (see {IDeviceRegistry-Action} for the legal moves).
     *
     * Requirements: the caller is a REGISTRAR of the owner org; the move is legal from the current status;
     * for Replace, `replacedBy` is another device of the same org that is Planned or Active (not itself
     * replaced or retired).
     *
     * Emits a {DeviceLifecycleChanged} event.
     */
    function changeLifecycle(string calldata code, Action action, string calldata replacedBy, string calldata note)
        external
    {
        (Device storage d, bytes32 codeHash) = _owned(code);
        Status from = d.status;
        Status to = _nextStatus(code, from, action);
        if (action == Action.Replace) {
            Device storage r = _devices[keccak256(bytes(replacedBy))];
            bool usable = r.status == Status.Planned || r.status == Status.Active;
            if (!usable || r.ownerOrg != d.ownerOrg || keccak256(bytes(replacedBy)) == codeHash) {
                revert DeviceRegistryBadReplacement(code, replacedBy);
            }
        } else if (bytes(replacedBy).length != 0) {
            revert DeviceRegistryBadReplacement(code, replacedBy);
        }
        d.status = to;
        emit DeviceLifecycleChanged(codeHash, d.ownerOrg, code, action, from, to, replacedBy, note);
    }

    /**
     * @dev Records a periodic inspection (巡检).
     *
     * Requirements: the caller is a REGISTRAR of the owner org; the device is Active or Suspended;
     * `inspectedAt` is not in the future and not before the previous inspection.
     *
     * Emits a {DeviceInspected} event.
     */
    function recordInspection(
        string calldata code,
        InspectionResult result,
        uint40 inspectedAt,
        bytes32 reportHash,
        string calldata note
    ) external {
        (Device storage d, bytes32 codeHash) = _owned(code);
        if (d.status != Status.Active && d.status != Status.Suspended) revert DeviceRegistryNotInspectable(code, d.status);
        if (inspectedAt > block.timestamp || inspectedAt < d.lastInspectedAt) revert DeviceRegistryBadTime(inspectedAt);
        d.lastInspectedAt = inspectedAt;
        emit DeviceInspected(codeHash, d.ownerOrg, code, result, inspectedAt, reportHash, note);
    }

    // ---------------------------------------------------------------- views

    function getDevice(string calldata code) external view returns (Device memory d) {
        d = _devices[keccak256(bytes(code))];
        if (d.status == Status.None) revert DeviceRegistryUnknownDevice(code);
    }

    function exists(string calldata code) external view returns (bool) {
        return _devices[keccak256(bytes(code))].status != Status.None;
    }

    function getCodeRule(uint16 typeId) external view returns (CodeRule memory rule) {
        rule = _rules[typeId];
        if (rule.length == 0) revert DeviceRegistryUnknownType(typeId);
    }

    // ---------------------------------------------------------------- internal

    function _callerOrg() private view returns (uint32) {
        return _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
    }

    function _owned(string calldata code) private view returns (Device storage d, bytes32 codeHash) {
        uint32 org = _callerOrg();
        codeHash = keccak256(bytes(code));
        d = _devices[codeHash];
        if (d.status == Status.None) revert DeviceRegistryUnknownDevice(code);
        if (d.ownerOrg != org) revert DeviceRegistryNotOwner(code, org, d.ownerOrg);
    }

    function _register(uint32 org, DeviceInput calldata input) private {
        _checkCode(input.code, input.typeId);
        if (input.status != Status.Planned && input.status != Status.Active) {
            revert DeviceRegistryBadInitialStatus(input.code, input.status);
        }
        _checkLocation(input.lat, input.lon);
        if (input.builtAt > block.timestamp) revert DeviceRegistryBadTime(input.builtAt);
        bytes32 codeHash = keccak256(bytes(input.code));
        Device storage d = _devices[codeHash];
        if (d.status != Status.None) revert DeviceRegistryDuplicateCode(input.code);
        bytes32 attributesHash = keccak256(bytes(input.attributes));
        _devices[codeHash] = Device({
            ownerOrg: org,
            typeId: input.typeId,
            status: input.status,
            district: input.district,
            lat: input.lat,
            lon: input.lon,
            builtAt: input.builtAt,
            lastInspectedAt: 0,
            attributesHash: attributesHash
        });
        emit DeviceRegistered(
            codeHash,
            org,
            input.code,
            input.typeId,
            input.status,
            input.district,
            input.lat,
            input.lon,
            input.builtAt,
            attributesHash,
            input.attributes
        );
    }

    function _checkCode(string calldata code, uint16 typeId) private view {
        CodeRule storage rule = _rules[typeId];
        uint8 length = rule.length;
        if (length == 0) revert DeviceRegistryUnknownType(typeId);
        bytes calldata c = bytes(code);
        if (c.length != length) revert DeviceRegistryCodeLength(code, length, c.length);
        bytes memory prefix = bytes(rule.prefix);
        for (uint256 i = 0; i < prefix.length; ++i) {
            if (c[i] != prefix[i]) revert DeviceRegistryCodePrefix(code, rule.prefix);
        }
        uint8 charset = rule.charset;
        for (uint256 i = prefix.length; i < length; ++i) {
            if (!_allowed(c[i], charset)) revert DeviceRegistryCodeCharacter(code, i);
        }
    }

    function _allowed(bytes1 ch, uint8 charset) private pure returns (bool) {
        if (ch >= "0" && ch <= "9") return charset & CHARSET_DIGITS != 0;
        if (ch >= "A" && ch <= "Z") return charset & CHARSET_UPPER != 0;
        if (ch >= "a" && ch <= "z") return charset & CHARSET_LOWER != 0;
        if (ch == "-") return charset & CHARSET_HYPHEN != 0;
        return false;
    }

    function _checkLocation(int32 lat, int32 lon) private pure {
        if (lat > _MAX_LAT || lat < -_MAX_LAT || lon > _MAX_LON || lon < -_MAX_LON) {
            revert DeviceRegistryBadLocation(lat, lon);
        }
    }

    function _nextStatus(string calldata code, Status from, Action action) private pure returns (Status) {
        if (action == Action.Activate && from == Status.Planned) return Status.Active;
        if (action == Action.Suspend && from == Status.Active) return Status.Suspended;
        if (action == Action.Resume && from == Status.Suspended) return Status.Active;
        if (action == Action.Upgrade && from == Status.Active) return Status.Active;
        if (action == Action.Replace && (from == Status.Active || from == Status.Suspended)) return Status.Replaced;
        if (
            action == Action.Retire && (from == Status.Planned || from == Status.Active || from == Status.Suspended)
        ) return Status.Retired;
        revert DeviceRegistryIllegalTransition(code, from, action);
    }
}
