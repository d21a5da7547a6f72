"""Behaviour of the Consortium: bootstrap, k-of-n governance, membership, accounts and roles.

The seeded demo consortium has three ADMIN orgs (BJ-EIB id 1, BJ-PSB id 2, BJ-CMC id 3) and threshold 2.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

from chain_gateway.deployments import FounderOrg, deploy_contracts
from chain_gateway.governance import contract, role_id
from tests.contracts.support import ContractsChain, pass_proposal

ADMIN = role_id("ADMIN")
REGISTRAR = role_id("REGISTRAR")
APPROVER = role_id("APPROVER")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
DEPARTMENT, DISTRICT, COMPANY, AUDITOR = 1, 2, 3, 4
EIB, PSB, CMC, EMB = 1, 2, 3, 4  # demo org ids, in admission order
NEXT_ORG_ID = 8  # seven demo orgs


class TestConsortium:
    # ------------------------------------------------------------ bootstrap

    def test_founder_bootstraps_as_sole_admin_with_threshold_one(self, net: ContractsChain) -> None:
        founder_key = net.spare_key(0)
        founder = net.address_of(founder_key)
        deployment = deploy_contracts(
            net.w3, net.spare_key(1), FounderOrg(code="F-1", name="Founder", kind="district", admin=founder)
        )
        fresh = contract(net.w3, deployment, "Consortium")
        receipt = net.w3.eth.get_transaction_receipt(deployment["contracts"]["Consortium"]["tx_hash"])

        assert net.events(receipt, fresh, "MemberAdmitted") == [
            {"orgId": 1, "code": "F-1", "name": "Founder", "kind": DISTRICT}
        ]
        assert net.events(receipt, fresh, "AccountAdded") == [{"account": founder, "orgId": 1}]
        assert net.events(receipt, fresh, "ThresholdChanged") == [{"threshold": 1, "adminOrgs": 0}]
        assert fresh.functions.getOrg(1).call() == (1, DISTRICT, True, "F-1", "Founder")
        assert fresh.functions.orgCount().call() == 1
        assert fresh.functions.threshold().call() == 1
        assert fresh.functions.adminOrgCount().call() == 1
        assert fresh.functions.hasRole(ADMIN, founder).call()
        assert fresh.functions.hasRole(DEFAULT_ADMIN_ROLE, fresh.address).call()
        assert not fresh.functions.hasRole(DEFAULT_ADMIN_ROLE, founder).call()
        assert fresh.functions.requireRole(founder, ADMIN).call() == 1

        # With threshold 1 the founder's proposal executes at once.
        data = fresh.encode_abi("admitMember", args=["M-2", "Member", COMPANY])
        receipt = net.transact(fresh.functions.propose(fresh.address, data, "first member"), founder_key)
        assert net.events(receipt, fresh, "ProposalExecuted") == [{"proposalId": 0}]
        assert net.events(receipt, fresh, "MemberAdmitted") == [
            {"orgId": 2, "code": "M-2", "name": "Member", "kind": COMPANY}
        ]

    # ------------------------------------------------------------ governed functions only through proposals

    @pytest.mark.parametrize(
        ("function", "args"),
        [
            ("admitMember", ["X-1", "X", DEPARTMENT]),
            ("addAccount", ["BJ-EIB", "0x000000000000000000000000000000000000dEaD"]),
            ("setMemberActive", ["BJ-PSB", False]),
            ("setThreshold", [1]),
        ],
    )
    def test_governed_function_called_directly_reverts_only_self(
        self, net: ContractsChain, function: str, args: list[Any]
    ) -> None:
        fn = getattr(net.consortium.functions, function)(*args)
        net.assert_reverts(fn, net.key("BJ-EIB"), "ConsortiumOnlySelf", net.account("BJ-EIB"))
        # multicall delegates to itself: the caller stays the admin, not the contract.
        calls = [net.consortium.encode_abi(function, args=args)]
        net.assert_reverts(
            net.consortium.functions.multicall(calls), net.key("BJ-EIB"), "ConsortiumOnlySelf", net.account("BJ-EIB")
        )

    @pytest.mark.parametrize("function", ["grantRole", "revokeRole"])
    def test_admin_cannot_grant_or_revoke_roles_directly(self, net: ContractsChain, function: str) -> None:
        fn = getattr(net.consortium.functions, function)(REGISTRAR, net.account("BJ-EMB"))
        net.assert_reverts(
            fn, net.key("BJ-EIB"), "AccessControlUnauthorizedAccount", net.account("BJ-EIB"), DEFAULT_ADMIN_ROLE
        )

    # ------------------------------------------------------------ k-of-n voting

    def test_proposal_executes_only_at_second_distinct_admin_org_vote(self, net: ContractsChain) -> None:
        assert net.consortium.functions.threshold().call() == 2
        data = net.consortium.encode_abi("admitMember", args=["BJ-NEW", "New bureau", DEPARTMENT])
        proposal_id = net.consortium.functions.proposalCount().call()

        receipt = net.transact(
            net.consortium.functions.propose(net.consortium.address, data, "admit BJ-NEW"), net.key("BJ-EIB")
        )
        assert net.events(receipt, net.consortium, "ProposalCreated") == [
            {
                "proposalId": proposal_id,
                "proposer": net.account("BJ-EIB"),
                "proposerOrg": EIB,
                "target": net.consortium.address,
                "data": bytes.fromhex(data[2:]),
                "description": "admit BJ-NEW",
            }
        ]
        assert net.events(receipt, net.consortium, "ProposalVoted") == [
            {"proposalId": proposal_id, "voter": net.account("BJ-EIB"), "voterOrg": EIB, "votes": 1}
        ]
        assert net.events(receipt, net.consortium, "ProposalExecuted") == []
        assert net.consortium.functions.getProposal(proposal_id).call() == (
            net.consortium.address,
            False,
            1,
            bytes.fromhex(data[2:]),
        )
        assert net.consortium.functions.hasVoted(proposal_id, EIB).call()
        assert not net.consortium.functions.hasVoted(proposal_id, PSB).call()
        net.assert_reverts(
            net.consortium.functions.orgIdByCode("BJ-NEW"), net.key("BJ-EIB"), "ConsortiumUnknownOrg", "BJ-NEW"
        )

        receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"))
        assert net.events(receipt, net.consortium, "ProposalVoted") == [
            {"proposalId": proposal_id, "voter": net.account("BJ-PSB"), "voterOrg": PSB, "votes": 2}
        ]
        assert net.events(receipt, net.consortium, "ProposalExecuted") == [{"proposalId": proposal_id}]
        assert net.events(receipt, net.consortium, "MemberAdmitted") == [
            {"orgId": NEXT_ORG_ID, "code": "BJ-NEW", "name": "New bureau", "kind": DEPARTMENT}
        ]
        assert net.consortium.functions.getProposal(proposal_id).call()[1] is True
        assert net.consortium.functions.orgIdByCode("BJ-NEW").call() == NEXT_ORG_ID

    def test_same_org_cannot_vote_twice_even_from_another_admin_account(self, net: ContractsChain) -> None:
        second_admin = net.spare_key(0)
        net.add_member_account("BJ-EIB", second_admin, ["ADMIN"])
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [3])])

        vote = net.consortium.functions.vote(proposal_id)
        net.assert_reverts(vote, net.key("BJ-EIB"), "ConsortiumAlreadyVoted", proposal_id, EIB)
        net.assert_reverts(vote, second_admin, "ConsortiumAlreadyVoted", proposal_id, EIB)
        assert net.consortium.functions.adminOrgCount().call() == 3  # two EIB admins are still one admin org

    def test_non_admin_cannot_propose_or_vote(self, net: ContractsChain) -> None:
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [3])])
        propose = net.consortium.functions.propose(net.consortium.address, b"", "x")
        vote = net.consortium.functions.vote(proposal_id)
        for fn in (propose, vote):
            # BJ-EMB is a member with REGISTRAR but no ADMIN; an account outside every org is unknown.
            net.assert_reverts(fn, net.key("BJ-EMB"), "ConsortiumMissingRole", net.account("BJ-EMB"), ADMIN)
            stranger = net.spare_key(0)
            net.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", net.address_of(stranger))

    def test_executed_proposal_cannot_be_voted_again(self, net: ContractsChain) -> None:
        proposal_id, _ = pass_proposal(net, [("Consortium", "admitMember", ["BJ-NEW", "New", DEPARTMENT])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-CMC"), "ConsortiumProposalExecuted", proposal_id
        )

    def test_unknown_proposal_cannot_be_voted_or_read(self, net: ContractsChain) -> None:
        unknown = net.consortium.functions.proposalCount().call()
        net.assert_reverts(
            net.consortium.functions.vote(unknown), net.key("BJ-PSB"), "ConsortiumUnknownProposal", unknown
        )
        net.assert_reverts(
            net.consortium.functions.getProposal(unknown), net.key("BJ-PSB"), "ConsortiumUnknownProposal", unknown
        )

    def test_proposal_whose_call_reverts_stays_open(self, net: ContractsChain) -> None:
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "admitMember", ["BJ-EIB", "dup", 1])])
        net.transact_reverting(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"))
        assert net.consortium.functions.getProposal(proposal_id).call()[1:3] == (False, 1)  # (executed, votes)
        assert not net.consortium.functions.hasVoted(proposal_id, PSB).call()

    def test_multicall_proposal_is_all_or_none(self, net: ContractsChain) -> None:
        stranger = net.address_of(net.spare_key(0))
        proposal_id, _ = net.propose(
            net.key("BJ-EIB"),
            [
                ("Consortium", "admitMember", ["BJ-NEW", "New", DEPARTMENT]),
                ("Consortium", "addAccount", ["NO-SUCH-ORG", stranger]),
            ],
        )
        vote = net.consortium.functions.vote(proposal_id)
        net.assert_reverts(vote, net.key("BJ-PSB"), "ConsortiumUnknownOrg", "NO-SUCH-ORG")
        net.transact_reverting(vote, net.key("BJ-PSB"))
        net.assert_reverts(
            net.consortium.functions.orgIdByCode("BJ-NEW"), net.key("BJ-EIB"), "ConsortiumUnknownOrg", "BJ-NEW"
        )
        assert net.consortium.functions.orgOf(stranger).call() == 0

    # ------------------------------------------------------------ threshold

    @pytest.mark.parametrize("threshold", [0, 4])
    def test_threshold_must_be_between_one_and_admin_org_count(self, net: ContractsChain, threshold: int) -> None:
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [threshold])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumBadThreshold", threshold, 3
        )

    def test_threshold_can_rise_to_admin_org_count(self, net: ContractsChain) -> None:
        _, receipt = pass_proposal(net, [("Consortium", "setThreshold", [3])])
        assert net.events(receipt, net.consortium, "ThresholdChanged") == [{"threshold": 3, "adminOrgs": 3}]
        assert net.consortium.functions.threshold().call() == 3

        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [2])])
        receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"))
        assert net.events(receipt, net.consortium, "ProposalExecuted") == []  # now 3 of 3 are needed
        receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-CMC"))
        assert net.events(receipt, net.consortium, "ProposalExecuted") == [{"proposalId": proposal_id}]

    def test_revoking_last_admin_of_an_org_below_threshold_reverts(self, net: ContractsChain) -> None:
        _, receipt = pass_proposal(net, [("Consortium", "revokeRole", [ADMIN, net.account("BJ-CMC")])])
        assert net.events(receipt, net.consortium, "RoleRevoked") == [
            {"role": ADMIN, "account": net.account("BJ-CMC"), "sender": net.consortium.address}
        ]
        assert net.consortium.functions.adminOrgCount().call() == 2

        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "revokeRole", [ADMIN, net.account("BJ-PSB")])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumBadThreshold", 2, 1
        )

    def test_revoking_one_of_two_admin_accounts_keeps_the_admin_org(self, net: ContractsChain) -> None:
        second_admin = net.add_member_account("BJ-CMC", net.spare_key(0), ["ADMIN"])
        pass_proposal(net, [("Consortium", "revokeRole", [ADMIN, net.account("BJ-CMC")])])
        assert net.consortium.functions.adminOrgCount().call() == 3
        assert net.consortium.functions.requireRole(second_admin, ADMIN).call() == CMC

    def test_renouncing_last_admin_role_cannot_leave_fewer_admin_orgs_than_threshold(self, net: ContractsChain) -> None:
        net.transact(net.consortium.functions.renounceRole(ADMIN, net.account("BJ-CMC")), net.key("BJ-CMC"))
        assert net.consortium.functions.adminOrgCount().call() == 2
        net.assert_reverts(
            net.consortium.functions.renounceRole(ADMIN, net.account("BJ-PSB")),
            net.key("BJ-PSB"),
            "ConsortiumBadThreshold",
            2,
            1,
        )

    # ------------------------------------------------------------ members, accounts, roles

    def test_admission_event_and_record_carry_the_full_member(self, net: ContractsChain) -> None:
        account = net.address_of(net.spare_key(0))
        _, receipt = pass_proposal(
            net,
            [
                ("Consortium", "admitMember", ["HD", "北京市海淀区人民政府", DISTRICT]),
                ("Consortium", "addAccount", ["HD", account]),
                ("Consortium", "grantRole", [REGISTRAR, account]),
            ],
        )
        assert net.events(receipt, net.consortium, "MemberAdmitted") == [
            {"orgId": NEXT_ORG_ID, "code": "HD", "name": "北京市海淀区人民政府", "kind": DISTRICT}
        ]
        assert net.events(receipt, net.consortium, "AccountAdded") == [{"account": account, "orgId": NEXT_ORG_ID}]
        assert net.events(receipt, net.consortium, "RoleGranted") == [
            {"role": REGISTRAR, "account": account, "sender": net.consortium.address}
        ]
        assert net.consortium.functions.getOrg(NEXT_ORG_ID).call() == (
            NEXT_ORG_ID,
            DISTRICT,
            True,
            "HD",
            "北京市海淀区人民政府",
        )
        assert net.consortium.functions.orgCount().call() == NEXT_ORG_ID
        assert net.consortium.functions.orgOf(account).call() == NEXT_ORG_ID
        assert net.consortium.functions.requireRole(account, REGISTRAR).call() == NEXT_ORG_ID

    @pytest.mark.parametrize(
        ("code", "kind", "error"),
        [
            ("BJ-PSB", DEPARTMENT, "ConsortiumOrgExists"),
            ("", DEPARTMENT, "ConsortiumBadOrg"),
            ("X" * 33, DEPARTMENT, "ConsortiumBadOrg"),
            ("BJ-NEW", 0, "ConsortiumBadOrg"),  # OrgKind.None
        ],
    )
    def test_admission_rejects_duplicate_or_malformed_org(
        self, net: ContractsChain, code: str, kind: int, error: str
    ) -> None:
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "admitMember", [code, "name", kind])])
        net.assert_reverts(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), error, code)

    def test_org_code_of_32_bytes_is_admitted(self, net: ContractsChain) -> None:
        pass_proposal(net, [("Consortium", "admitMember", ["X" * 32, "long", COMPANY])])
        assert net.consortium.functions.orgIdByCode("X" * 32).call() == NEXT_ORG_ID

    def test_account_belongs_to_exactly_one_org(self, net: ContractsChain) -> None:
        taken = net.account("BJ-EMB")
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "addAccount", ["BJ-PSB", taken])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumAccountTaken", taken, EMB
        )

    def test_account_cannot_join_unknown_org(self, net: ContractsChain) -> None:
        stranger = net.address_of(net.spare_key(0))
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "addAccount", ["NOPE", stranger])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumUnknownOrg", "NOPE"
        )

    @pytest.mark.parametrize("role", ["REGISTRAR", "ADMIN"])
    def test_roles_go_only_to_accounts_of_member_orgs(self, net: ContractsChain, role: str) -> None:
        stranger = net.address_of(net.spare_key(0))
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "grantRole", [role_id(role), stranger])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumUnknownAccount", stranger
        )
        assert not net.consortium.functions.hasRole(role_id(role), stranger).call()

    def test_require_role_names_the_missing_piece(self, net: ContractsChain) -> None:
        require = net.consortium.functions.requireRole
        assert require(net.account("BJ-PSB"), REGISTRAR).call() == PSB
        approver = net.seeded.orgs["BJ-PSB"].approvers[0][0]
        assert require(approver, APPROVER).call() == PSB
        sender = net.key("BJ-EIB")
        net.assert_reverts(require(approver, REGISTRAR), sender, "ConsortiumMissingRole", approver, REGISTRAR)
        stranger = net.address_of(net.spare_key(0))
        net.assert_reverts(require(stranger, REGISTRAR), sender, "ConsortiumUnknownAccount", stranger)

    def test_suspended_org_accounts_lose_their_usable_roles(self, net: ContractsChain) -> None:
        psb = net.account("BJ-PSB")
        _, receipt = pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-PSB", False])], voter="BJ-CMC")
        assert net.events(receipt, net.consortium, "MemberStatusChanged") == [
            {"orgId": PSB, "code": "BJ-PSB", "active": False}
        ]
        assert net.consortium.functions.getOrg(PSB).call()[2] is False
        assert net.consortium.functions.hasRole(REGISTRAR, psb).call()  # held, but not usable
        for role in (REGISTRAR, ADMIN):
            net.assert_reverts(net.consortium.functions.requireRole(psb, role), psb, "ConsortiumOrgInactive", PSB)
        # Its admin can no longer vote and its registrar can no longer write.
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [3])])
        net.assert_reverts(net.consortium.functions.vote(proposal_id), psb, "ConsortiumOrgInactive", PSB)
        device = ("BJ-CAMR-110105000001", 1, 1, 110105, 39_900_000, 116_400_000, 1_700_000_000, "{}")
        net.assert_reverts(net.registry.functions.registerDevice(device), psb, "ConsortiumOrgInactive", PSB)

        _, receipt = pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-PSB", True])], voter="BJ-CMC")
        assert net.events(receipt, net.consortium, "MemberStatusChanged") == [
            {"orgId": PSB, "code": "BJ-PSB", "active": True}
        ]
        assert net.consortium.functions.requireRole(psb, REGISTRAR).call() == PSB

    def test_suspending_unknown_org_reverts(self, net: ContractsChain) -> None:
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setMemberActive", ["NOPE", False])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumUnknownOrg", "NOPE"
        )

    def test_role_ids_are_keccak_of_role_names(self, net: ContractsChain) -> None:
        for name in ("ADMIN", "REGISTRAR", "REVIEWER", "APPROVER", "AUDITOR", "RELAYER"):
            assert getattr(net.consortium.functions, f"{name}_ROLE")().call() == keccak(text=name)

    # ------------------------------------------------------------ governance stays live

    def test_suspending_admin_orgs_cannot_leave_fewer_active_admin_orgs_than_threshold(
        self, net: ContractsChain
    ) -> None:
        """Otherwise two suspensions at 2-of-3 leave one admin org that can never pass a proposal again."""
        _, receipt = pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-CMC", False])])
        assert net.consortium.functions.adminOrgCount().call() == 2
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setMemberActive", ["BJ-PSB", False])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumBadThreshold", 2, 1
        )

    def test_threshold_counts_only_active_admin_orgs(self, net: ContractsChain) -> None:
        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-CMC", False])])
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "setThreshold", [3])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumBadThreshold", 3, 2
        )

        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-CMC", True])])
        assert net.consortium.functions.adminOrgCount().call() == 3
        _, receipt = pass_proposal(net, [("Consortium", "setThreshold", [3])])
        assert net.events(receipt, net.consortium, "ThresholdChanged") == [{"threshold": 3, "adminOrgs": 3}]

    def test_admin_granted_in_suspended_org_counts_once_reinstated(self, net: ContractsChain) -> None:
        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-EMB", False])])
        pass_proposal(net, [("Consortium", "grantRole", [ADMIN, net.account("BJ-EMB")])])
        assert net.consortium.functions.adminOrgCount().call() == 3
        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-EMB", True])])
        assert net.consortium.functions.adminOrgCount().call() == 4
        # Suspending twice or reinstating twice changes nothing.
        pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-EMB", True])])
        assert net.consortium.functions.adminOrgCount().call() == 4

    @pytest.mark.parametrize("role", ["ADMIN", "REGISTRAR"])
    def test_consortium_itself_cannot_take_a_member_role(self, net: ContractsChain, role: str) -> None:
        """The contract holds DEFAULT_ADMIN_ROLE only: as an ADMIN it would count as an admin org that never votes."""
        this = net.consortium.address
        proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "grantRole", [role_id(role), this])])
        net.assert_reverts(
            net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"), "ConsortiumUnknownAccount", this
        )
        assert net.consortium.functions.adminOrgCount().call() == 3
