// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {IConsortium} from "./interfaces/IConsortium.sol";

/**
 * @dev The consortium: member organisations, their accounts and roles.
 *
 * Bootstrap: the constructor admits a founding org whose account is ADMIN with a threshold of 1, so the
 * founder alone can admit the first members (one proposal executes at once). From then on every change of
 * membership, roles, threshold or another contract's governed settings is a proposal that executes when
 * `threshold` distinct orgs that are active ADMIN orgs at that moment have voted for it: a vote stops counting
 * while its org is suspended or has no ADMIN account left, so a removed admin's votes cannot help pass anything.
 * Governed functions are `onlySelf`: they run only as the call a passed proposal makes (`propose`/`vote` ->
 * `target.call(data)`, or `multicall` on this contract).
 * The contract holds DEFAULT_ADMIN_ROLE itself, so AccessControl's own grantRole/revokeRole are governed too.
 *
 * Liveness: `adminOrgCount` counts the *active* orgs with at least one ADMIN account (only they can vote), and
 * no revocation, renunciation or suspension may leave it below `threshold`, so a proposal can always pass.
 */
contract Consortium is IConsortium, AccessControl, Multicall {
    bytes32 public constant ADMIN_ROLE = keccak256("ADMIN");
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR");
    bytes32 public constant REVIEWER_ROLE = keccak256("REVIEWER");
    bytes32 public constant APPROVER_ROLE = keccak256("APPROVER");
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR");
    bytes32 public constant RELAYER_ROLE = keccak256("RELAYER");

    struct Proposal {
        address target;
        bool executed;
        uint16 votes;
        bytes data;
    }

    Org[] private _orgs; // index 0 is a placeholder so that org id 0 means "none"
    mapping(bytes32 codeHash => uint32) private _orgIdByCode;
    mapping(address account => uint32) private _orgOf;
    mapping(uint32 orgId => uint16) private _adminAccounts;
    uint16 private _adminOrgCount;
    uint16 private _threshold;
    Proposal[] private _proposals;
    mapping(uint256 proposalId => mapping(uint32 orgId => bool)) private _voted;
    mapping(uint256 proposalId => uint32[]) private _voters;

    modifier onlySelf() {
        if (msg.sender != address(this)) revert ConsortiumOnlySelf(msg.sender);
        _;
    }

    constructor(string memory founderCode, string memory founderName, OrgKind founderKind, address founderAdmin) {
        _orgs.push();
        _grantRole(DEFAULT_ADMIN_ROLE, address(this));
        _admit(founderCode, founderName, founderKind);
        _addAccount(founderCode, founderAdmin);
        _setThreshold(1);
        _grantRole(ADMIN_ROLE, founderAdmin);
    }

    // ---------------------------------------------------------------- proposals

    /**
     * @dev Proposes that this contract call `target` with `data`, and casts the proposer's org's vote.
     *
     * Requirements:
     * - the caller holds ADMIN_ROLE in an active org.
     *
     * Emits a {ProposalCreated} event, a {ProposalVoted} event and, if the threshold is met, {ProposalExecuted}.
     */
    function propose(address target, bytes calldata data, string calldata description) external returns (uint256) {
        uint32 org = requireRole(msg.sender, ADMIN_ROLE);
        uint256 id = _proposals.length;
        _proposals.push(Proposal({target: target, executed: false, votes: 0, data: data}));
        emit ProposalCreated(id, msg.sender, org, target, data, description);
        _vote(id, org);
        return id;
    }

    /**
     * @dev Casts the caller's org's vote for proposal `proposalId`; executes it once `threshold` of its voters
     * are active ADMIN orgs.
     *
     * Requirements:
     * - the caller holds ADMIN_ROLE in an active org that has not voted for this proposal;
     * - the proposal exists and has not been executed.
     */
    function vote(uint256 proposalId) external {
        uint32 org = requireRole(msg.sender, ADMIN_ROLE);
        if (proposalId >= _proposals.length) revert ConsortiumUnknownProposal(proposalId);
        _vote(proposalId, org);
    }

    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        if (proposalId >= _proposals.length) revert ConsortiumUnknownProposal(proposalId);
        return _proposals[proposalId];
    }

    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    function hasVoted(uint256 proposalId, uint32 orgId) external view returns (bool) {
        return _voted[proposalId][orgId];
    }

    // ---------------------------------------------------------------- governed (onlySelf)

    /// @dev Admits a member organisation. Emits a {MemberAdmitted} event.
    function admitMember(string calldata code, string calldata name, OrgKind kind) external onlySelf {
        _admit(code, name, kind);
    }

    /// @dev Attaches `account` to the org `orgCode`. Emits an {AccountAdded} event.
    function addAccount(string calldata orgCode, address account) external onlySelf {
        _addAccount(orgCode, account);
    }

    /**
     * @dev Suspends or reinstates a member org.
     *
     * Requirements:
     * - suspending an ADMIN org may not leave fewer active admin orgs than the threshold.
     *
     * Emits a {MemberStatusChanged} event.
     */
    function setMemberActive(string calldata code, bool active) external onlySelf {
        uint32 id = orgIdByCode(code);
        Org storage org = _orgs[id];
        if (org.active != active && _adminAccounts[id] != 0) {
            if (active) {
                _adminOrgCount++;
            } else {
                _adminOrgCount--;
                if (_adminOrgCount < _threshold) revert ConsortiumBadThreshold(_threshold, _adminOrgCount);
            }
        }
        org.active = active;
        emit MemberStatusChanged(id, code, active);
    }

    /// @dev Sets how many ADMIN orgs must vote for a proposal. Emits a {ThresholdChanged} event.
    function setThreshold(uint16 newThreshold) external onlySelf {
        _setThreshold(newThreshold);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IConsortium
    function requireRole(address account, bytes32 role) public view returns (uint32 orgId) {
        orgId = requireMember(account);
        if (!hasRole(role, account)) revert ConsortiumMissingRole(account, role);
    }

    /// @inheritdoc IConsortium
    function requireMember(address account) public view returns (uint32 orgId) {
        orgId = _orgOf[account];
        if (orgId == 0) revert ConsortiumUnknownAccount(account);
        if (!_orgs[orgId].active) revert ConsortiumOrgInactive(orgId);
    }

    function orgOf(address account) external view returns (uint32) {
        return _orgOf[account];
    }

    function orgIdByCode(string calldata code) public view returns (uint32 orgId) {
        orgId = _orgIdByCode[keccak256(bytes(code))];
        if (orgId == 0) revert ConsortiumUnknownOrg(code);
    }

    function getOrg(uint32 orgId) external view returns (Org memory) {
        return _orgs[orgId];
    }

    function orgCount() external view returns (uint32) {
        return uint32(_orgs.length - 1);
    }

    function threshold() external view returns (uint16) {
        return _threshold;
    }

    function adminOrgCount() external view returns (uint16) {
        return _adminOrgCount;
    }

    // ---------------------------------------------------------------- internal

    function _vote(uint256 id, uint32 org) private {
        Proposal storage p = _proposals[id];
        if (p.executed) revert ConsortiumProposalExecuted(id);
        if (_voted[id][org]) revert ConsortiumAlreadyVoted(id, org);
        _voted[id][org] = true;
        _voters[id].push(org);
        uint16 votes = p.votes + 1;
        p.votes = votes;
        emit ProposalVoted(id, msg.sender, org, votes);
        if (votes >= _threshold && _standingVotes(id) >= _threshold) {
            p.executed = true;
            // The call's return data is not needed: functionCall already reverts (with the target's reason) on failure.
            // slither-disable-next-line unused-return
            Address.functionCall(p.target, p.data);
            emit ProposalExecuted(id);
        }
    }

    /// @dev The voters of proposal `id` that are active ADMIN orgs now. Counted at each vote rather than kept,
    /// because a suspension or revocation after the vote must take that vote back (found by the governance
    /// state machine test: the stale vote of a suspended org let a proposal pass with one current admin).
    function _standingVotes(uint256 id) private view returns (uint16 standing) {
        uint32[] storage voters = _voters[id];
        for (uint256 i = 0; i < voters.length; ++i) {
            uint32 org = voters[i];
            if (_orgs[org].active && _adminAccounts[org] != 0) standing++;
        }
    }

    function _admit(string memory code, string memory name, OrgKind kind) private {
        bytes32 key = keccak256(bytes(code));
        if (bytes(code).length == 0 || bytes(code).length > 32 || kind == OrgKind.None) revert ConsortiumBadOrg(code);
        if (_orgIdByCode[key] != 0) revert ConsortiumOrgExists(code);
        uint32 id = uint32(_orgs.length);
        _orgs.push(Org({id: id, kind: kind, active: true, code: code, name: name}));
        _orgIdByCode[key] = id;
        emit MemberAdmitted(id, code, name, kind);
    }

    function _addAccount(string memory orgCode, address account) private {
        uint32 id = _orgIdByCode[keccak256(bytes(orgCode))];
        if (id == 0) revert ConsortiumUnknownOrg(orgCode);
        uint32 current = _orgOf[account];
        if (current != 0) revert ConsortiumAccountTaken(account, current);
        _orgOf[account] = id;
        emit AccountAdded(account, id);
    }

    function _setThreshold(uint16 newThreshold) private {
        uint16 admins = _adminOrgCount;
        // During construction there is no admin org yet; the founder's ADMIN grant follows at once.
        uint16 available = admins == 0 ? 1 : admins;
        if (newThreshold == 0 || newThreshold > available) revert ConsortiumBadThreshold(newThreshold, admins);
        _threshold = newThreshold;
        emit ThresholdChanged(newThreshold, admins);
    }

    /// @dev Roles go only to accounts of a member org (this contract holds DEFAULT_ADMIN_ROLE and nothing else);
    /// ADMIN grants keep the count of active admin orgs.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        if (_orgOf[account] == 0 && !(account == address(this) && role == DEFAULT_ADMIN_ROLE)) {
            revert ConsortiumUnknownAccount(account);
        }
        granted = super._grantRole(role, account);
        if (granted && role == ADMIN_ROLE) {
            uint32 org = _orgOf[account];
            if (_adminAccounts[org]++ == 0 && _orgs[org].active) _adminOrgCount++;
        }
    }

    /// @dev Revoking an active org's last ADMIN account may not leave fewer admin orgs than the threshold.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked && role == ADMIN_ROLE) {
            uint32 org = _orgOf[account];
            if (--_adminAccounts[org] == 0 && _orgs[org].active) {
                _adminOrgCount--;
                if (_adminOrgCount < _threshold) revert ConsortiumBadThreshold(_threshold, _adminOrgCount);
            }
        }
    }
}
