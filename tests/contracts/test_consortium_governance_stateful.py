"""Consortium governance as a state machine: proposals and votes that admit orgs, attach accounts, grant and revoke
roles, suspend orgs, and change the threshold, a code rule or a sharing threshold.

Hypothesis keeps a model of the orgs, the accounts it tracks (the three ADMIN orgs' main accounts, a member
without ADMIN, two outsiders), their roles, the threshold, the code rules and sharing thresholds, and every
proposal's voters; it predicts each attempt in the contract's order of checks, including the error of a governed
call that fails when its proposal reaches the threshold (the vote then reverts whole). Besides, members try the
governed functions directly and renounce their own roles. After every step the chain must agree with the model:
members, roles, the count of active admin orgs (derived by the model, never read from the chain to predict it)
which never falls below the threshold, and each proposal executed exactly when its k-th distinct ADMIN org voted,
never twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain_gateway.devnet import DEMO_ORGS, DEMO_THRESHOLD
from chain_gateway.governance import GovernedCall, role_id
from tests.contracts.stateful import (
    ANVIL_ONLY,
    ChainMachine,
    Outcome,
    machine_settings,
    read_all,
    run_machine,
    run_predicted,
)
from tests.contracts.support import ContractsChain, pass_proposal

ROLES = ("ADMIN", "REGISTRAR", "APPROVER")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
DEPARTMENT = 1  # IConsortium.OrgKind
# Tracked accounts: demo orgs' main accounts (their roles as seeded) and two funded outsiders.
MEMBERS = ("BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB")
OUTSIDERS = ("spare-0", "spare-1")
ACCOUNTS = MEMBERS + OUTSIDERS
NEW_ORGS = ("NEW-A", "NEW-B")
CALL_KINDS = ("admit", "add account", "grant", "revoke", "threshold", "set active", "code rule", "sharing threshold")
RULE_TYPES = (9, 10)  # device types with no demo code rule
MAX_PROPOSALS = 6
MACHINE_SETTINGS = machine_settings(max_examples=5, steps=25)


@dataclass(frozen=True)
class Call:
    """A governed call a proposal makes: `kind` (one of CALL_KINDS) with its arguments."""

    kind: str
    args: tuple[Any, ...]


@dataclass
class Proposal:
    call: Call
    voters: set[str] = field(default_factory=set)  # org codes
    executed: bool = False


@dataclass
class Model:
    """The consortium as the machine expects it."""

    orgs: dict[str, tuple[int, bool]]  # code -> (id, active)
    account_org: dict[str, str]  # tracked account -> org code
    roles: set[tuple[str, str]]  # (role, tracked account)
    threshold: int
    code_rules: dict[int, int] = field(default_factory=dict)  # type id -> code length
    sharing_thresholds: dict[int, int] = field(default_factory=lambda: {1: 1, 2: 1, 3: 2, 4: 2})

    def admin_org_count(
        self, orgs: dict[str, tuple[int, bool]] | None = None, roles: set[tuple[str, str]] | None = None
    ) -> int:
        """Active orgs with an ADMIN account: the only ones that can vote."""
        orgs, roles = orgs or self.orgs, self.roles if roles is None else roles
        return len({self.account_org[a] for r, a in roles if r == "ADMIN" and orgs[self.account_org[a]][1]})


def _initial_model() -> Model:
    seeded = {o.code: o for o in DEMO_ORGS}
    return Model(
        orgs={o.code: (i + 1, True) for i, o in enumerate(DEMO_ORGS)},
        account_org={code: code for code in MEMBERS},
        roles={(r, code) for code in MEMBERS for r in seeded[code].roles if r in ROLES},
        threshold=DEMO_THRESHOLD,
    )


class ConsortiumGovernanceMachine(ChainMachine):
    def __init__(self) -> None:
        super().__init__()
        self.keys = {a: self.chain.key(a) for a in MEMBERS} | {
            a: self.chain.spare_key(i) for i, a in enumerate(OUTSIDERS)
        }
        self.addresses = {a: self.chain.address_of(k) for a, k in self.keys.items()}
        self.first_proposal = int(self.chain.consortium.functions.proposalCount().call())
        self.model = _initial_model()
        self.proposals: list[Proposal] = []

    # ------------------------------------------------------------ rules

    @precondition(lambda self: len(self.proposals) < MAX_PROPOSALS)
    @rule(data=st.data(), actor=st.sampled_from(ACCOUNTS + MEMBERS[:3]))  # the ADMIN orgs twice as likely
    def propose(self, data: st.DataObject, actor: str) -> None:
        """Any account proposes a governed call; its own org's vote is cast, which executes it at threshold 1."""
        call = data.draw(self._calls(), label="call")
        target, calldata = self.chain.encode_calls([self._governed(call)])
        fn = self.chain.consortium.functions.propose(target, calldata, call.kind)
        proposal = Proposal(call)
        expected = self._predict_voter(actor) or self._predict_vote(proposal, actor)
        receipt = run_predicted(self.chain, fn, self.keys[actor], expected)
        if receipt is None:
            return
        (created,) = self.chain.events(receipt, self.chain.consortium, "ProposalCreated")
        assert created["proposalId"] == self.first_proposal + len(self.proposals)
        self.proposals.append(proposal)
        self._apply_vote(proposal, actor, receipt)

    @precondition(lambda self: bool(self.proposals))
    @rule(data=st.data(), actor=st.sampled_from(ACCOUNTS + MEMBERS[:3]))
    def vote(self, data: st.DataObject, actor: str) -> None:
        """Any account votes for any proposal (or one that does not exist)."""
        index = data.draw(st.integers(0, len(self.proposals)), label="proposal")
        proposal_id = self.first_proposal + index
        fn = self.chain.consortium.functions.vote(proposal_id)
        expected = self._predict_voter(actor)
        if expected is None:
            if index == len(self.proposals):
                expected = ("ConsortiumUnknownProposal", (proposal_id,))
            else:
                expected = self._predict_vote(self.proposals[index], actor, proposal_id)
        receipt = run_predicted(self.chain, fn, self.keys[actor], expected)
        if receipt is not None:
            self._apply_vote(self.proposals[index], actor, receipt)

    @precondition(lambda self: bool(self._next_votes()))
    @rule(data=st.data())
    def admin_org_votes_for_open_proposal(self, data: st.DataObject) -> None:
        """An admin of an active org that has not voted yet votes for an open proposal.

        Random votes mostly fail, so without this few proposals would reach their threshold and execute.
        """
        index, actor = data.draw(st.sampled_from(self._next_votes()), label="vote")
        proposal_id = self.first_proposal + index
        expected = self._predict_vote(self.proposals[index], actor, proposal_id)
        receipt = run_predicted(
            self.chain, self.chain.consortium.functions.vote(proposal_id), self.keys[actor], expected
        )
        if receipt is not None:
            self._apply_vote(self.proposals[index], actor, receipt)

    @rule(actor=st.sampled_from(ACCOUNTS), which=st.sampled_from(("threshold", "grant", "admit", "rule", "sharing")))
    def governed_function_called_directly(self, actor: str, which: str) -> None:
        """Nobody, not even an ADMIN, calls a governed function but a passed proposal."""
        address = self.addresses[actor]
        members = self.chain.consortium.functions
        fn: ContractFunction
        expected: Outcome
        if which == "threshold":
            fn, expected = members.setThreshold(1), ("ConsortiumOnlySelf", (address,))
        elif which == "grant":
            fn = members.grantRole(role_id("ADMIN"), address)
            expected = ("AccessControlUnauthorizedAccount", (address, DEFAULT_ADMIN_ROLE))
        elif which == "admit":
            fn, expected = members.admitMember("NEW-A", "new", DEPARTMENT), ("ConsortiumOnlySelf", (address,))
        elif which == "rule":
            fn = self.chain.registry.functions.setCodeRule(9, "sensor.new", "BJ-NEW-", 12, 1)
            expected = ("DeviceRegistryOnlyConsortium", (address,))
        else:
            fn = self.chain.sharing.functions.setApprovalThreshold(4, 1)
            expected = ("SharingOnlyConsortium", (address,))
        assert run_predicted(self.chain, fn, self.keys[actor], expected) is None

    @rule(actor=st.sampled_from(ACCOUNTS), role=st.sampled_from(ROLES))
    def account_renounces_role(self, actor: str, role: str) -> None:
        """An account gives up its own role: allowed, unless it would leave fewer admin orgs than the threshold."""
        fn = self.chain.consortium.functions.renounceRole(role_id(role), self.addresses[actor])
        roles = self.model.roles - {(role, actor)}
        expected: Outcome = None
        after = self.model.admin_org_count(roles=roles)
        if after < self.model.threshold:
            expected = ("ConsortiumBadThreshold", (self.model.threshold, after))
        if run_predicted(self.chain, fn, self.keys[actor], expected) is not None:
            self.model.roles = roles

    # ------------------------------------------------------------ the model

    def _calls(self) -> st.SearchStrategy[Call]:
        orgs = sorted(self.model.orgs)
        by_kind = {
            "admit": st.tuples(st.sampled_from([*NEW_ORGS, "BJ-PSB"])),
            "add account": st.tuples(st.sampled_from([*orgs, *NEW_ORGS]), st.sampled_from(ACCOUNTS)),
            "grant": st.tuples(st.sampled_from(ROLES), st.sampled_from(ACCOUNTS)),
            "revoke": st.tuples(st.sampled_from(ROLES), st.sampled_from(ACCOUNTS)),
            "threshold": st.tuples(st.integers(0, 4)),
            "set active": st.tuples(st.sampled_from([*MEMBERS, *NEW_ORGS]), st.booleans()),
            "code rule": st.tuples(st.sampled_from(RULE_TYPES), st.sampled_from((12, 14, 7))),  # 7: not > prefix
            "sharing threshold": st.tuples(st.integers(1, 4), st.integers(0, 3)),
        }
        return st.sampled_from(CALL_KINDS).flatmap(lambda kind: by_kind[kind].map(lambda args: Call(kind, args)))

    def _governed(self, call: Call) -> GovernedCall:
        a = call.args
        if call.kind == "admit":
            return ("Consortium", "admitMember", [a[0], f"org {a[0]}", DEPARTMENT])
        if call.kind == "add account":
            return ("Consortium", "addAccount", [a[0], self.addresses[a[1]]])
        if call.kind in ("grant", "revoke"):
            return ("Consortium", f"{call.kind}Role", [role_id(a[0]), self.addresses[a[1]]])
        if call.kind == "threshold":
            return ("Consortium", "setThreshold", [a[0]])
        if call.kind == "set active":
            return ("Consortium", "setMemberActive", [a[0], a[1]])
        if call.kind == "code rule":
            return ("DeviceRegistry", "setCodeRule", [a[0], f"sensor.type-{a[0]}", "BJ-NEW-", a[1], 1])
        return ("SharingAgreements", "setApprovalThreshold", [a[0], a[1]])

    def _next_votes(self) -> list[tuple[int, str]]:
        """(proposal index, account) of every vote an ADMIN account may cast now on an open proposal."""
        votes = []
        for index, proposal in enumerate(self.proposals):
            for actor in ACCOUNTS:
                if not proposal.executed and self._predict_voter(actor) is None:
                    if self.model.account_org[actor] not in proposal.voters:
                        votes.append((index, actor))
        return votes

    def _standing(self, voters: set[str]) -> set[str]:
        """The voters that are active ADMIN orgs now: only their votes count towards the threshold."""
        admins = {self.model.account_org[a] for r, a in self.model.roles if r == "ADMIN"}
        return {org for org in voters if org in admins and self.model.orgs[org][1]}

    def _predict_voter(self, actor: str) -> Outcome:
        """The first failing check of requireRole(actor, ADMIN), or None."""
        address, org = self.addresses[actor], self.model.account_org.get(actor)
        if org is None:
            return ("ConsortiumUnknownAccount", (address,))
        org_id, active = self.model.orgs[org]
        if not active:
            return ("ConsortiumOrgInactive", (org_id,))
        if ("ADMIN", actor) not in self.model.roles:
            return ("ConsortiumMissingRole", (address, role_id("ADMIN")))
        return None

    def _predict_vote(self, proposal: Proposal, actor: str, proposal_id: int | None = None) -> Outcome:
        """The outcome of `actor`'s org voting for `proposal` (new when `proposal_id` is None)."""
        org = self.model.account_org[actor]
        if proposal_id is not None and proposal.executed:
            return ("ConsortiumProposalExecuted", (proposal_id,))
        if proposal_id is not None and org in proposal.voters:
            return ("ConsortiumAlreadyVoted", (proposal_id, self.model.orgs[org][0]))
        if len(self._standing(proposal.voters | {org})) >= self.model.threshold:
            return self._predict_call(proposal.call)  # the call's error reverts the whole vote
        return None

    def _predict_call(self, call: Call) -> Outcome:
        """The governed call's outcome on the model's state, checks in the contract's order."""
        m, a = self.model, call.args
        if call.kind == "admit":
            return ("ConsortiumOrgExists", (a[0],)) if a[0] in m.orgs else None
        if call.kind == "add account":
            org, account = a[0], a[1]
            if org not in m.orgs:
                return ("ConsortiumUnknownOrg", (org,))
            if account in m.account_org:
                return ("ConsortiumAccountTaken", (self.addresses[account], m.orgs[m.account_org[account]][0]))
            return None
        if call.kind == "grant":
            account = a[1]
            return None if account in m.account_org else ("ConsortiumUnknownAccount", (self.addresses[account],))
        if call.kind == "revoke":
            after = m.admin_org_count(roles=m.roles - {(a[0], a[1])})
            return ("ConsortiumBadThreshold", (m.threshold, after)) if after < m.threshold else None
        if call.kind == "threshold":
            admins = m.admin_org_count()
            return ("ConsortiumBadThreshold", (a[0], admins)) if a[0] == 0 or a[0] > admins else None
        if call.kind == "set active":
            code, active = a[0], a[1]
            if code not in m.orgs:
                return ("ConsortiumUnknownOrg", (code,))
            after = m.admin_org_count(orgs=m.orgs | {code: (m.orgs[code][0], active)})
            return ("ConsortiumBadThreshold", (m.threshold, after)) if after < m.threshold else None
        if call.kind == "code rule":
            return ("DeviceRegistryBadCodeRule", (a[0],)) if a[1] == 7 else None
        return ("SharingBadThreshold", (a[0], a[1])) if a[1] == 0 else None

    def _apply_call(self, call: Call) -> None:
        m, a = self.model, call.args
        if call.kind == "admit":
            m.orgs[a[0]] = (len(m.orgs) + 1, True)
        elif call.kind == "add account":
            m.account_org[a[1]] = a[0]
        elif call.kind == "grant":
            m.roles.add((a[0], a[1]))
        elif call.kind == "revoke":
            m.roles.discard((a[0], a[1]))
        elif call.kind == "threshold":
            m.threshold = a[0]
        elif call.kind == "set active":
            m.orgs[a[0]] = (m.orgs[a[0]][0], a[1])
        elif call.kind == "code rule":
            m.code_rules[a[0]] = a[1]
        else:
            m.sharing_thresholds[a[0]] = a[1]

    def _apply_vote(self, proposal: Proposal, actor: str, receipt: TxReceipt) -> None:
        """Records a successful vote; the proposal executes exactly when its votes reach the threshold."""
        proposal.voters.add(self.model.account_org[actor])
        executes = len(self._standing(proposal.voters)) >= self.model.threshold
        (voted,) = self.chain.events(receipt, self.chain.consortium, "ProposalVoted")
        executed = self.chain.events(receipt, self.chain.consortium, "ProposalExecuted")
        assert voted["votes"] == len(proposal.voters)
        assert len(executed) == int(executes)
        if executes:
            proposal.executed = True
            self._apply_call(proposal.call)

    @invariant()
    def chain_matches_model(self) -> None:
        m, members = self.model, self.chain.consortium.functions
        voter_orgs = sorted(code for code in m.orgs if code in MEMBERS[:3] or code in NEW_ORGS)
        proposal_ids = range(self.first_proposal, self.first_proposal + len(self.proposals))
        calls = [members.threshold(), members.adminOrgCount(), members.orgCount(), members.proposalCount()]
        calls += [members.getOrg(org_id) for org_id, _ in m.orgs.values()]
        calls += [members.orgOf(self.addresses[a]) for a in ACCOUNTS]
        calls += [members.hasRole(role_id(r), self.addresses[a]) for a in ACCOUNTS for r in ROLES]
        calls += [members.getProposal(p) for p in proposal_ids]
        calls += [members.hasVoted(p, m.orgs[code][0]) for p in proposal_ids for code in voter_orgs]
        calls += [self.chain.registry.functions.getCodeRule(t) for t in sorted(m.code_rules)]
        calls += [self.chain.sharing.functions.approvalThreshold(g) for g in sorted(m.sharing_thresholds)]
        got = iter(read_all(self.chain, calls))

        threshold, admin_orgs, org_count, proposal_count = (next(got) for _ in range(4))
        assert (threshold, admin_orgs) == (m.threshold, m.admin_org_count())
        assert 1 <= threshold <= admin_orgs  # a proposal can always pass
        assert (org_count, proposal_count) == (len(m.orgs), self.first_proposal + len(self.proposals))
        for code, (org_id, active) in m.orgs.items():
            stored_id, _, stored_active, stored_code, _ = next(got)
            assert (stored_id, stored_active, stored_code) == (org_id, active, code)
        for account in ACCOUNTS:
            org = m.account_org.get(account)
            assert next(got) == (m.orgs[org][0] if org else 0), account
        for account in ACCOUNTS:
            for role in ROLES:
                assert next(got) == ((role, account) in m.roles), (role, account)
        for proposal in self.proposals:
            _, executed, votes, _ = next(got)
            assert (executed, votes) == (proposal.executed, len(proposal.voters))
        for proposal in self.proposals:
            for code in voter_orgs:
                assert next(got) == (code in proposal.voters), code
        for type_id in sorted(m.code_rules):
            assert next(got)[2] == m.code_rules[type_id], type_id
        for grade in sorted(m.sharing_thresholds):
            assert next(got) == m.sharing_thresholds[grade], grade


@ANVIL_ONLY
def test_random_governance_walks_change_members_roles_and_rules_only_by_k_of_n_admin_votes(
    net: ContractsChain,
) -> None:
    run_machine(ConsortiumGovernanceMachine, net, MACHINE_SETTINGS)


# Found by the machine: a vote stayed counted after its org stopped being an active ADMIN org, so a proposal
# could execute with fewer than k current ADMIN orgs behind it (e.g. a compromised admin's proposal, its org
# suspended, passed by one more vote). Votes now count only while their org is an active ADMIN org.


@ANVIL_ONLY
def test_vote_of_org_that_renounced_admin_no_longer_counts(net: ContractsChain) -> None:
    proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "admitMember", ["NEW-A", "new", DEPARTMENT])])
    net.transact(net.consortium.functions.renounceRole(role_id("ADMIN"), net.account("BJ-EIB")), net.key("BJ-EIB"))
    receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"))
    assert net.events(receipt, net.consortium, "ProposalExecuted") == []
    assert net.consortium.functions.getProposal(proposal_id).call()[1] is False
    receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-CMC"))
    assert net.events(receipt, net.consortium, "ProposalExecuted") == [{"proposalId": proposal_id}]


@ANVIL_ONLY
def test_vote_of_suspended_org_no_longer_counts(net: ContractsChain) -> None:
    proposal_id, _ = net.propose(net.key("BJ-EIB"), [("Consortium", "admitMember", ["NEW-A", "new", DEPARTMENT])])
    pass_proposal(net, [("Consortium", "setMemberActive", ["BJ-EIB", False])], proposer="BJ-PSB", voter="BJ-CMC")
    receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-PSB"))
    assert net.events(receipt, net.consortium, "ProposalExecuted") == []
    receipt = net.transact(net.consortium.functions.vote(proposal_id), net.key("BJ-CMC"))
    assert net.events(receipt, net.consortium, "ProposalExecuted") == [{"proposalId": proposal_id}]
