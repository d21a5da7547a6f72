// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortium} from "./interfaces/IConsortium.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IReviewBoard} from "./interfaces/IReviewBoard.sol";

/**
 * @dev The joint-review board. REGISTRARs file projects for their org; REVIEWERs of the domain's lead org (set by
 * the consortium) decide; the applicant may withdraw a project still filed.
 */
contract ReviewBoard is IReviewBoard {
    uint16 public constant MAX_DEVICES = 200; // per project: an approval registers them all in one transaction
    bytes32 private constant _REGISTRAR_ROLE = keccak256("REGISTRAR");
    bytes32 private constant _REVIEWER_ROLE = keccak256("REVIEWER");

    IConsortium private immutable _consortium;
    IDeviceRegistry private immutable _registry;
    mapping(Domain domain => uint32 orgId) private _leads;
    Project[] private _projects; // index 0 unused: project ids start at 1

    constructor(IConsortium consortium_, IDeviceRegistry registry_) {
        _consortium = consortium_;
        _registry = registry_;
        _projects.push();
    }

    /// @dev Sets the lead org of `domain`; only the consortium (a passed proposal). Emits {LeadOrgSet}.
    function setLeadOrg(Domain domain, uint32 orgId) external {
        if (msg.sender != address(_consortium)) revert ReviewOnlyConsortium(msg.sender);
        _leads[domain] = orgId;
        emit LeadOrgSet(domain, orgId);
    }

    /**
     * @dev Files a project of planned devices for the caller's org.
     *
     * Requirements: the caller is a REGISTRAR of an active org; the domain has a lead org; title not empty;
     * 1..{MAX_DEVICES} devices, all Planned (codes and locations are checked in full when the project is approved).
     *
     * Emits a {ProjectFiled} event.
     */
    function file(Domain domain, string calldata title, IDeviceRegistry.DeviceInput[] calldata devices)
        external
        returns (uint64 projectId)
    {
        uint32 org = _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
        if (_leads[domain] == 0) revert ReviewNoLead(domain);
        if (bytes(title).length == 0) revert ReviewEmptyTitle();
        if (devices.length == 0 || devices.length > MAX_DEVICES) revert ReviewBadDeviceCount(devices.length);
        for (uint256 i = 0; i < devices.length; ++i) {
            if (devices[i].status != IDeviceRegistry.Status.Planned) revert ReviewNotPlanned(i);
        }
        bytes32 devicesHash = keccak256(abi.encode(devices));
        projectId = uint64(_projects.length);
        _projects.push(
            Project({
                applicantOrg: org,
                domain: domain,
                status: ProjectStatus.Filed,
                reviewerOrg: 0,
                deviceCount: uint16(devices.length),
                filedAt: uint40(block.timestamp),
                decidedAt: 0,
                devicesHash: devicesHash
            })
        );
        emit ProjectFiled(projectId, org, domain, title, devices, devicesHash, msg.sender);
    }

    /**
     * @dev Approves a filed project; its devices (re-sent, checked against the filed hash) enter the ledger as
     * Planned devices of the applicant org.
     *
     * Requirements: the caller is a REVIEWER of the domain's lead org; the project is filed; `devices` are the
     * filed ones; every device passes the ledger's checks (code rule, unique code, location).
     *
     * Emits {ProjectDecided} and, from the DeviceRegistry, one {DeviceRegistered} per device.
     */
    function approve(uint64 projectId, IDeviceRegistry.DeviceInput[] calldata devices) external {
        (Project storage p, uint32 org) = _decidable(projectId);
        bytes32 actual = keccak256(abi.encode(devices));
        if (actual != p.devicesHash) revert ReviewDevicesMismatch(projectId, p.devicesHash, actual);
        _decide(p, org, ProjectStatus.Approved);
        emit ProjectDecided(projectId, org, true, "", msg.sender);
        _registry.registerReviewed(p.applicantOrg, devices);
    }

    /**
     * @dev Refuses a filed project for `reason` (e.g. duplicate building near existing devices).
     *
     * Requirements: the caller is a REVIEWER of the domain's lead org; the project is filed; reason not empty.
     *
     * Emits a {ProjectDecided} event.
     */
    function refuse(uint64 projectId, string calldata reason) external {
        (Project storage p, uint32 org) = _decidable(projectId);
        if (bytes(reason).length == 0) revert ReviewEmptyReason();
        _decide(p, org, ProjectStatus.Refused);
        emit ProjectDecided(projectId, org, false, reason, msg.sender);
    }

    /// @dev Withdraws a filed project; only a REGISTRAR of the applicant org. Emits {ProjectWithdrawn}.
    function withdraw(uint64 projectId) external {
        uint32 org = _consortium.requireRole(msg.sender, _REGISTRAR_ROLE);
        Project storage p = _existing(projectId);
        if (p.applicantOrg != org) revert ReviewNotApplicant(projectId, org, p.applicantOrg);
        if (p.status != ProjectStatus.Filed) revert ReviewNotFiled(projectId, p.status);
        p.status = ProjectStatus.Withdrawn;
        emit ProjectWithdrawn(projectId, org, msg.sender);
    }

    // ---------------------------------------------------------------- views

    function getProject(uint64 projectId) external view returns (Project memory) {
        return _existing(projectId);
    }

    function projectCount() external view returns (uint64) {
        return uint64(_projects.length - 1);
    }

    function leadOrg(Domain domain) external view returns (uint32) {
        return _leads[domain];
    }

    // ---------------------------------------------------------------- internal

    function _existing(uint64 projectId) private view returns (Project storage) {
        if (projectId == 0 || projectId >= _projects.length) revert ReviewUnknownProject(projectId);
        return _projects[projectId];
    }

    /// @dev The filed project and the caller's org, a REVIEWER of the project's lead org.
    function _decidable(uint64 projectId) private view returns (Project storage p, uint32 org) {
        org = _consortium.requireRole(msg.sender, _REVIEWER_ROLE);
        p = _existing(projectId);
        uint32 lead = _leads[p.domain];
        if (org != lead) revert ReviewNotLead(projectId, org, lead);
        if (p.status != ProjectStatus.Filed) revert ReviewNotFiled(projectId, p.status);
    }

    function _decide(Project storage p, uint32 org, ProjectStatus to) private {
        p.status = to;
        p.reviewerOrg = org;
        p.decidedAt = uint40(block.timestamp);
    }
}
