// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev Carriers (感知载体): poles, mounts and cabinets that front ends are mounted on, with location, network ports
 * and mounting capacity ("多杆合一": one pole for many devices). Other members apply to reuse spare capacity; the
 * owner org grants or refuses; a grant takes the slots and ports at once.
 *
 * Coordinates are micro-degrees like the DeviceRegistry's; attributes are canonical JSON carried in the events and
 * stored as their keccak256 (never personal data).
 */
interface ICarrierRegistry {
    enum Kind {
        Pole, // 杆
        Mount, // 支架/挂点
        Cabinet, // 机箱/机柜
        Building // 建筑物挂点
    }

    enum ReuseStatus {
        None,
        Requested,
        Granted,
        Refused,
        Withdrawn
    }

    struct CarrierInput {
        string code;
        Kind kind;
        uint32 district;
        int32 lat;
        int32 lon;
        uint16 slots; // mounting positions
        uint16 ports; // network ports
        string attributes;
    }

    struct Carrier {
        uint32 ownerOrg;
        Kind kind;
        uint32 district;
        int32 lat;
        int32 lon;
        uint16 slots;
        uint16 slotsUsed;
        uint16 ports;
        uint16 portsUsed;
        bytes32 attributesHash;
    }

    struct ReuseRequest {
        bytes32 carrierHash; // keccak256 of the carrier code
        uint32 requesterOrg;
        uint32 ownerOrg;
        uint16 slots;
        uint16 ports;
        ReuseStatus status;
        uint40 requestedAt;
        uint40 decidedAt;
    }

    /// @dev A carrier was registered with its full record; `attributesHash` = keccak256(bytes(carrier.attributes)).
    event CarrierRegistered(
        bytes32 indexed carrierHash, uint32 indexed ownerOrg, CarrierInput carrier, bytes32 attributesHash, address by
    );
    event CarrierUsageChanged(
        bytes32 indexed carrierHash, uint32 indexed ownerOrg, string code, uint16 slotsUsed, uint16 portsUsed
    );
    event CarrierReuseRequested(
        uint64 indexed requestId,
        bytes32 indexed carrierHash,
        uint32 indexed requesterOrg,
        uint32 ownerOrg,
        string code,
        uint16 slots,
        uint16 ports,
        string purpose,
        address requester
    );
    event CarrierReuseDecided(
        uint64 indexed requestId, bytes32 indexed carrierHash, uint32 indexed ownerOrg, bool granted, string reason, address by
    );
    event CarrierReuseWithdrawn(uint64 indexed requestId, uint32 indexed requesterOrg, address by);

    error CarrierDuplicateCode(string code);
    error CarrierBadCode(string code);
    error CarrierUnknown(string code);
    error CarrierNotOwner(string code, uint32 callerOrg, uint32 ownerOrg);
    error CarrierBadLocation(int32 lat, int32 lon);
    error CarrierBadUsage(string code, uint16 slotsUsed, uint16 slots, uint16 portsUsed, uint16 ports);
    error CarrierOwnCarrier(string code);
    error CarrierEmptyReuse();
    error CarrierEmptyPurpose();
    error CarrierNoCapacity(string code, uint16 slotsFree, uint16 portsFree);
    error CarrierUnknownRequest(uint64 requestId);
    error CarrierRequestClosed(uint64 requestId, ReuseStatus status);
    error CarrierNotRequester(uint64 requestId, uint32 callerOrg, uint32 requesterOrg);
    error CarrierEmptyReason();

    function getCarrier(string calldata code) external view returns (Carrier memory);

    function getReuseRequest(uint64 requestId) external view returns (ReuseRequest memory);
}
