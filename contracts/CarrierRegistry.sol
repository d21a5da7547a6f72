// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ICarrierRegistry} from "./interfaces/ICarrierRegistry.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";

/**
 * @dev The carrier catalog. A REGISTRAR of the owner org registers carriers and sets how much of them its own
 * devices use; any member's REGISTRAR applies to reuse spare slots and ports; a REGISTRAR of the owner org grants
 * (taking the capacity) or refuses with a reason; the requester may withdraw an open request.
 */
contract CarrierRegistry is ICarrierRegistry {
    bytes32 private constant _REGISTRAR_ROLE = keccak256("REGISTRAR");
    int32 private constant _MAX_LAT = 90_000_000;
    int32 private constant _MAX_LON = 180_000_000;
    uint256 private constant _MAX_CODE_BYTES = 64;

    IConsortium private immutable _consortium;
    mapping(bytes32 carrierHash => Carrier) private _carriers;
    mapping(bytes32 carrierHash => string) private _codes;
    // What granted reuse takes of each carrier: kept apart from the owner's own use so that {setUsage} (the
    // owner's devices) never overwrites it.
    mapping(bytes32 carrierHash => uint16) private _reusedSlots;
    mapping(bytes32 carrierHash => uint16) private _reusedPorts;
    ReuseRequest[] private _requests; // index 0 unused: request ids start at 1

    constructor(IConsortium consortium_) {
        _consortium = consortium_;
        _requests.push();
    }

    /**
     * @dev Registers a carrier owned by the caller's org, nothing used yet.
     *
     * Requirements: the caller is a REGISTRAR of an active org; the code is 1..64 bytes and new; the location is
     * valid.
     *
     * Emits a {CarrierRegistered} event.
     */
    function register(CarrierInput calldata input) external {
        uint32 org = _registrarOrg();
        uint256 length = bytes(input.code).length;
        if (length == 0 || length > _MAX_CODE_BYTES) revert CarrierBadCode(input.code);
        if (input.lat < -_MAX_LAT || input.lat > _MAX_LAT || input.lon < -_MAX_LON || input.lon > _MAX_LON) {
            revert CarrierBadLocation(input.lat, input.lon);
        }
        bytes32 carrierHash = keccak256(bytes(input.code));
        if (_carriers[carrierHash].ownerOrg != 0) revert CarrierDuplicateCode(input.code);
        bytes32 attributesHash = keccak256(bytes(input.attributes));
        _carriers[carrierHash] = Carrier({
            ownerOrg: org,
            kind: input.kind,
            district: input.district,
            lat: input.lat,
            lon: input.lon,
            slots: input.slots,
            slotsUsed: 0,
            ports: input.ports,
            portsUsed: 0,
            attributesHash: attributesHash
        });
        _codes[carrierHash] = input.code;
        emit CarrierRegistered(carrierHash, org, input, attributesHash, msg.sender);
    }

    /**
     * @dev Sets how many slots and ports of the caller's carrier its own devices use; what granted reuse takes
     * stays counted on top (found by the carrier state machine test: setting the owner's use used to overwrite
     * granted reuse, so the same slots could be granted again).
     *
     * Requirements: the caller is a REGISTRAR of the owner org; own use plus granted reuse <= capacity.
     *
     * Emits a {CarrierUsageChanged} event with the carrier's total use. {CarrierBadUsage} reports the total use
     * the call would have left (at most 65535) against the capacity.
     */
    function setUsage(string calldata code, uint16 slotsUsed, uint16 portsUsed) external {
        (Carrier storage c, bytes32 carrierHash) = _owned(code);
        uint256 slotsTotal = uint256(slotsUsed) + _reusedSlots[carrierHash];
        uint256 portsTotal = uint256(portsUsed) + _reusedPorts[carrierHash];
        if (slotsTotal > c.slots || portsTotal > c.ports) {
            revert CarrierBadUsage(code, _clamp(slotsTotal), c.slots, _clamp(portsTotal), c.ports);
        }
        c.slotsUsed = uint16(slotsTotal);
        c.portsUsed = uint16(portsTotal);
        emit CarrierUsageChanged(carrierHash, c.ownerOrg, code, c.slotsUsed, c.portsUsed);
    }

    /**
     * @dev Applies to reuse `slots` mounting positions and `ports` network ports of another org's carrier.
     *
     * Requirements: the caller is a REGISTRAR of an active org other than the owner; slots + ports > 0; purpose
     * not empty; the carrier has that much spare capacity now.
     *
     * Emits a {CarrierReuseRequested} event.
     */
    function requestReuse(string calldata code, uint16 slots, uint16 ports, string calldata purpose)
        external
        returns (uint64 requestId)
    {
        uint32 org = _registrarOrg();
        bytes32 carrierHash = keccak256(bytes(code));
        Carrier storage c = _existing(code, carrierHash);
        if (c.ownerOrg == org) revert CarrierOwnCarrier(code);
        if (slots == 0 && ports == 0) revert CarrierEmptyReuse();
        if (bytes(purpose).length == 0) revert CarrierEmptyPurpose();
        _checkCapacity(code, c, slots, ports);
        requestId = uint64(_requests.length);
        _requests.push(
            ReuseRequest({
                carrierHash: carrierHash,
                requesterOrg: org,
                ownerOrg: c.ownerOrg,
                slots: slots,
                ports: ports,
                status: ReuseStatus.Requested,
                requestedAt: uint40(block.timestamp),
                decidedAt: 0
            })
        );
        emit CarrierReuseRequested(requestId, carrierHash, org, c.ownerOrg, code, slots, ports, purpose, msg.sender);
    }

    /**
     * @dev Grants (taking the slots and ports) or refuses (with `reason`) an open reuse request.
     *
     * Requirements: the caller is a REGISTRAR of the carrier's owner org; the request is open; a grant needs the
     * spare capacity now; a refusal needs a reason.
     *
     * Emits {CarrierReuseDecided}, and {CarrierUsageChanged} on a grant.
     */
    function decideReuse(uint64 requestId, bool grant, string calldata reason) external {
        ReuseRequest storage r = _open(requestId);
        string memory code = _codes[r.carrierHash];
        Carrier storage c = _carriers[r.carrierHash];
        uint32 org = _registrarOrg();
        if (org != c.ownerOrg) revert CarrierNotOwner(code, org, c.ownerOrg);
        r.decidedAt = uint40(block.timestamp);
        if (grant) {
            _checkCapacity(code, c, r.slots, r.ports);
            r.status = ReuseStatus.Granted;
            c.slotsUsed += r.slots;
            c.portsUsed += r.ports;
            _reusedSlots[r.carrierHash] += r.slots;
            _reusedPorts[r.carrierHash] += r.ports;
            emit CarrierReuseDecided(requestId, r.carrierHash, c.ownerOrg, true, reason, msg.sender);
            emit CarrierUsageChanged(r.carrierHash, c.ownerOrg, code, c.slotsUsed, c.portsUsed);
        } else {
            if (bytes(reason).length == 0) revert CarrierEmptyReason();
            r.status = ReuseStatus.Refused;
            emit CarrierReuseDecided(requestId, r.carrierHash, c.ownerOrg, false, reason, msg.sender);
        }
    }

    /// @dev Withdraws an open reuse request; only a REGISTRAR of the requester org. Emits {CarrierReuseWithdrawn}.
    function withdrawReuse(uint64 requestId) external {
        ReuseRequest storage r = _open(requestId);
        uint32 org = _registrarOrg();
        if (org != r.requesterOrg) revert CarrierNotRequester(requestId, org, r.requesterOrg);
        r.status = ReuseStatus.Withdrawn;
        emit CarrierReuseWithdrawn(requestId, org, msg.sender);
    }

    // ---------------------------------------------------------------- views

    function getCarrier(string calldata code) external view returns (Carrier memory) {
        return _existing(code, keccak256(bytes(code)));
    }

    function getReuseRequest(uint64 requestId) external view returns (ReuseRequest memory) {
        if (requestId == 0 || requestId >= _requests.length) revert CarrierUnknownRequest(requestId);
        return _requests[requestId];
    }

    function reuseRequestCount() external view returns (uint64) {
        return uint64(_requests.length - 1);
    }

    // ---------------------------------------------------------------- internal

    function _registrarOrg() private view returns (uint32) {
        return _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
    }

    function _existing(string calldata code, bytes32 carrierHash) private view returns (Carrier storage c) {
        c = _carriers[carrierHash];
        if (c.ownerOrg == 0) revert CarrierUnknown(code);
    }

    function _owned(string calldata code) private view returns (Carrier storage c, bytes32 carrierHash) {
        uint32 org = _registrarOrg();
        carrierHash = keccak256(bytes(code));
        c = _existing(code, carrierHash);
        if (c.ownerOrg != org) revert CarrierNotOwner(code, org, c.ownerOrg);
    }

    function _open(uint64 requestId) private view returns (ReuseRequest storage r) {
        if (requestId == 0 || requestId >= _requests.length) revert CarrierUnknownRequest(requestId);
        r = _requests[requestId];
        if (r.status != ReuseStatus.Requested) revert CarrierRequestClosed(requestId, r.status);
    }

    function _clamp(uint256 value) private pure returns (uint16) {
        return value > type(uint16).max ? type(uint16).max : uint16(value);
    }

    function _checkCapacity(string memory code, Carrier storage c, uint16 slots, uint16 ports) private view {
        uint16 slotsFree = c.slots - c.slotsUsed;
        uint16 portsFree = c.ports - c.portsUsed;
        if (slots > slotsFree || ports > portsFree) revert CarrierNoCapacity(code, slotsFree, portsFree);
    }
}
