// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/**
 * @dev Members (organisations), their accounts and roles, governed by k-of-n votes of ADMIN organisations.
 *
 * Roles are OpenZeppelin AccessControl roles held by accounts; every account that holds a role belongs to
 * exactly one member organisation, so "org X's registrar" is an account of org X holding REGISTRAR_ROLE.
 */
interface IConsortium {
    enum OrgKind {
        None,
        Department,
        District,
        Company,
        Auditor
    }

    struct Org {
        uint32 id;
        OrgKind kind;
        bool active;
        string code;
        string name;
    }

    /// @dev A member organisation was admitted (`id` is assigned in admission order, starting at 1).
    event MemberAdmitted(uint32 indexed orgId, string code, string name, OrgKind kind);
    /// @dev A member organisation was suspended or reinstated; a suspended org's accounts hold no usable role.
    event MemberStatusChanged(uint32 indexed orgId, string code, bool active);
    /// @dev An account was attached to a member organisation.
    event AccountAdded(address indexed account, uint32 indexed orgId);
    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        uint32 indexed proposerOrg,
        address target,
        bytes data,
        string description
    );
    event ProposalVoted(uint256 indexed proposalId, address indexed voter, uint32 indexed voterOrg, uint16 votes);
    event ProposalExecuted(uint256 indexed proposalId);
    event ThresholdChanged(uint16 threshold, uint16 adminOrgs);

    error ConsortiumOnlySelf(address caller);
    error ConsortiumUnknownAccount(address account);
    error ConsortiumUnknownOrg(string code);
    error ConsortiumOrgExists(string code);
    error ConsortiumOrgInactive(uint32 orgId);
    error ConsortiumBadOrg(string code);
    error ConsortiumAccountTaken(address account, uint32 orgId);
    error ConsortiumMissingRole(address account, bytes32 role);
    error ConsortiumUnknownProposal(uint256 proposalId);
    error ConsortiumProposalExecuted(uint256 proposalId);
    error ConsortiumAlreadyVoted(uint256 proposalId, uint32 orgId);
    error ConsortiumBadThreshold(uint16 threshold, uint16 adminOrgs);

    /// @dev Returns the org id of `account` if it belongs to an active org and holds `role`; reverts otherwise.
    function requireRole(address account, bytes32 role) external view returns (uint32 orgId);

    /// @dev Returns the org id of `account` if it belongs to an active org (any role or none); reverts otherwise.
    function requireMember(address account) external view returns (uint32 orgId);

    function orgOf(address account) external view returns (uint32 orgId);

    function orgIdByCode(string calldata code) external view returns (uint32 orgId);

    function getOrg(uint32 orgId) external view returns (Org memory);

    function threshold() external view returns (uint16);

    /// @dev The number of active member orgs with at least one ADMIN account; `threshold` never exceeds it.
    function adminOrgCount() external view returns (uint16);
}
