// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IDeviceRegistry} from "./IDeviceRegistry.sol";

/**
 * @dev Joint review of new front ends (联审): a department files a construction project of planned devices; the
 * lead department of the project's domain approves or refuses it; on approval the planned devices enter the
 * ledger (DeviceRegistry, status Planned) in the same transaction.
 *
 * The chain stores the project's status and the hash of its planned devices (keccak256(abi.encode(devices)));
 * the ProjectFiled event carries the full list so the indexer mirrors it and the reviewer re-sends it with the
 * approval (checked against the hash). Carriers a device will be mounted on are named in its attributes.
 */
interface IReviewBoard {
    enum Domain {
        Imagery, // 城市影像: public security
        CityManagement, // 统一城市管理: city management commission
        Emergency, // 应急监测: emergency bureau
        Other // 其他: economy and information bureau
    }

    enum ProjectStatus {
        None,
        Filed,
        Approved,
        Refused,
        Withdrawn
    }

    struct Project {
        uint32 applicantOrg;
        Domain domain;
        ProjectStatus status;
        uint32 reviewerOrg; // the lead org that decided (0 while filed)
        uint16 deviceCount;
        uint40 filedAt;
        uint40 decidedAt;
        bytes32 devicesHash;
    }

    event LeadOrgSet(Domain indexed domain, uint32 indexed orgId);
    event ProjectFiled(
        uint64 indexed projectId,
        uint32 indexed applicantOrg,
        Domain indexed domain,
        string title,
        IDeviceRegistry.DeviceInput[] devices,
        bytes32 devicesHash,
        address applicant
    );
    event ProjectDecided(
        uint64 indexed projectId, uint32 indexed reviewerOrg, bool approved, string reason, address reviewer
    );
    event ProjectWithdrawn(uint64 indexed projectId, uint32 indexed applicantOrg, address by);

    error ReviewOnlyConsortium(address caller);
    error ReviewUnknownProject(uint64 projectId);
    error ReviewNoLead(Domain domain);
    error ReviewNotLead(uint64 projectId, uint32 callerOrg, uint32 leadOrg);
    error ReviewNotFiled(uint64 projectId, ProjectStatus status);
    error ReviewNotApplicant(uint64 projectId, uint32 callerOrg, uint32 applicantOrg);
    error ReviewEmptyTitle();
    error ReviewBadDeviceCount(uint256 count);
    error ReviewNotPlanned(uint256 index);
    error ReviewDevicesMismatch(uint64 projectId, bytes32 expected, bytes32 actual);
    error ReviewEmptyReason();

    function getProject(uint64 projectId) external view returns (Project memory);

    function leadOrg(Domain domain) external view returns (uint32);
}
