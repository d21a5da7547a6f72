"""Sharing agreements as a state machine: requests, signed approvals, refusals, revocations, expiry, thresholds.

Hypothesis keeps a model of every request (entry, requester, approvals needed, distinct approvers so far, status,
expiry), of every signer's EIP-712 nonce and of the thresholds by grade, and predicts each attempt's outcome in
the contract's order of checks. Every decision is a real EIP-712 signature (chain_gateway.eip712) relayed by an
account outside the consortium. Hostile signatures are tried too: replayed, expired, signed by one key for
another approver, for another request, decision, chain or contract; none may count. After every step the chain
must agree with the model, and a request is granted exactly when its threshold of distinct owner approvers
signed (or at once for an unconditional entry); after a refusal or revocation nothing moves it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
)
from web3.types import TxReceipt

from chain_gateway.eip712 import Decision
from tests.contracts.stateful import (
    ANVIL_ONLY,
    ChainMachine,
    Outcome,
    machine_settings,
    read_all,
    run_machine,
    run_predicted,
)
from tests.contracts.support import ContractsChain, SignedDecision, entry_input
from tests.contracts.test_data_catalog import Condition
from tests.contracts.test_data_catalog import Status as EntryStatus
from tests.contracts.test_sharing_agreements import Status

ORG_IDS = {"BJ-PSB": 2, "BJ-CMC": 3, "BJ-EMB": 4, "BJ-CY": 5}
# name -> (owner org, grade, share condition); created in this order before the machine runs.
ENTRIES = {
    "psb-grade-1": ("BJ-PSB", 1, Condition.CONDITIONAL),
    "psb-grade-3": ("BJ-PSB", 3, Condition.CONDITIONAL),
    "psb-open": ("BJ-PSB", 2, Condition.UNCONDITIONAL),
    "cmc-grade-4": ("BJ-CMC", 4, Condition.CONDITIONAL),
}
SIGNERS = ("BJ-PSB/0", "BJ-PSB/1", "BJ-CMC/0", "BJ-CMC/1", "BJ-PSB/main", "stranger")
DEFAULT_THRESHOLDS = {1: 1, 2: 1, 3: 2, 4: 2}
FORM = 2  # desensitized: every entry here allows all forms
DURATIONS = (3_600, 86_400)  # seconds: the shortest a grant may be, and a day
# Time jumps (seconds) that never land a grant's expiry within the hour around the chain's clock.
TIME_JUMPS = (8_220, 111_600)
REASONS = {Decision.APPROVE: "", Decision.REFUSE: "not needed", Decision.REVOKE: "misuse"}
HOSTILE = ("replayed", "expired", "foreign key", "other request", "other decision", "other chain", "other contract")
MAX_REQUESTS = 5
REQUEST_FIELDS = ("entryId", "requesterOrg", "ownerOrg", "form", "status", "approvals", "approvalsNeeded")
REQUEST_FIELDS += ("duration", "requestedAt", "grantedAt", "expiresAt")
MACHINE_SETTINGS = machine_settings(max_examples=5, steps=25)


@dataclass
class Request:
    """What the machine expects of one request."""

    entry: str
    requester: str
    needed: int
    duration: int
    status: Status = Status.PENDING
    approvers: set[str] = field(default_factory=set)
    expires_at: int = 0


class SharingLifecycleMachine(ChainMachine):
    entry_ids: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        self.first_id = int(self.chain.sharing.functions.requestCount().call()) + 1
        self.model: dict[int, Request] = {}
        self.thresholds = dict(DEFAULT_THRESHOLDS)
        self.published = set(ENTRIES)
        self.addresses = {s: self.chain.address_of(self._key(s)) for s in SIGNERS}
        self.nonces = {s: int(self.chain.sharing.functions.nonces(self._address(s)).call()) for s in SIGNERS}
        self.used: list[tuple[int, Decision, SignedDecision]] = []  # every signature that counted

    # ------------------------------------------------------------ rules

    @initialize(duration=st.sampled_from(DURATIONS))
    def two_requests_of_two_approvals(self, duration: int) -> None:
        """Every walk starts with a request to each owner org that needs two approvals, so decisions meet them."""
        self.request("BJ-CY", "psb-grade-3", duration)
        self.request("BJ-EMB", "cmc-grade-4", duration)

    @precondition(lambda self: len(self.model) < MAX_REQUESTS)
    @rule(
        requester=st.sampled_from(sorted(ORG_IDS)),
        entry=st.sampled_from(sorted(ENTRIES)),
        duration=st.sampled_from(DURATIONS),
    )
    def request(self, requester: str, entry: str, duration: int) -> None:
        owner, grade, condition = ENTRIES[entry]
        expected: Outcome = None
        if entry not in self.published:
            expected = ("SharingEntryNotPublished", (self.entry_ids[entry],))
        elif owner == requester:
            expected = ("SharingOwnEntry", (self.entry_ids[entry],))
        fn = self.chain.sharing.functions.request(self.entry_ids[entry], FORM, "traffic study", duration)
        receipt = run_predicted(self.chain, fn, self.chain.key(requester), expected)
        if receipt is None:
            return
        needed = 0 if condition == Condition.UNCONDITIONAL else self.thresholds[grade]
        request_id = self.first_id + len(self.model)
        (event,) = self.chain.events(receipt, self.chain.sharing, "SharingRequested")
        assert (event["requestId"], event["approvalsNeeded"]) == (request_id, needed)
        self.model[request_id] = Request(entry, requester, needed, duration)
        if needed == 0:
            self._granted(request_id, receipt)

    @rule(data=st.data(), signer=st.sampled_from(SIGNERS), decision=st.sampled_from(list(Decision)))
    def decide(self, data: st.DataObject, signer: str, decision: Decision) -> None:
        """A signer signs a decision on a request with its next nonce; a stranger relays it."""
        request_id = data.draw(self._request_ids(), label="request")
        signed = self.chain.sign_decision(self._key(signer), request_id, decision, REASONS[decision])
        self._relay(request_id, decision, signed, signed_by=signer)

    @precondition(lambda self: any(self._owner_moves(i) for i in self.model))
    @rule(data=st.data())
    def owner_approver_moves_request_on(self, data: st.DataObject) -> None:
        """An approver of the owner org approves a pending request it has not approved yet, or revokes a grant.

        Random decisions mostly fail, so without this walks would seldom reach grants of two approvals and
        revocations.
        """
        request_id = data.draw(
            st.sampled_from([i for i in sorted(self.model) if self._owner_moves(i)]), label="request"
        )
        signer, decision = data.draw(st.sampled_from(self._owner_moves(request_id)), label="move")
        signed = self.chain.sign_decision(self._key(signer), request_id, decision, REASONS[decision])
        assert self._predict(request_id, decision, signer, signed.nonce, signed.deadline) is None
        self._relay(request_id, decision, signed, signed_by=signer)

    @rule(data=st.data(), kind=st.sampled_from(HOSTILE), signer=st.sampled_from(SIGNERS[:4]))
    def hostile_signature(self, data: st.DataObject, kind: str, signer: str) -> None:
        """A signature that must not count: the contract refuses it with the error the model predicts."""
        request_id = data.draw(self._request_ids(), label="request")
        decision = data.draw(st.sampled_from(list(Decision)), label="decision")
        key, claimed = self._key(signer), signer
        sign = self.chain.sign_decision
        reason = REASONS[decision]
        if kind == "replayed":
            if not self.used:
                return
            request_id, decision, signed = data.draw(st.sampled_from(self.used), label="replayed")
            claimed = next(s for s in SIGNERS if self._address(s) == signed.approver)
            self._relay(request_id, decision, signed, signed_by=claimed)
            return
        if kind == "expired":
            signed = sign(key, request_id, decision, reason, deadline=self.chain.latest_timestamp() - 1)
            self._relay(request_id, decision, signed, signed_by=signer)
            return
        if kind == "foreign key":  # signed by `signer`'s key, presented as another approver's (its nonce)
            claimed = data.draw(st.sampled_from([s for s in SIGNERS[:4] if s != signer]), label="claimed")
            real = sign(key, request_id, decision, reason, nonce=self.nonces[claimed])
            signed = SignedDecision(self._address(claimed), real.nonce, real.deadline, real.signature)
        elif kind == "other request":
            signed = sign(key, request_id + 1, decision, reason)
        elif kind == "other decision":
            other = Decision.REFUSE if decision == Decision.APPROVE else Decision.APPROVE
            signed = sign(key, request_id, other, REASONS[other])
        elif kind == "other chain":
            signed = sign(key, request_id, decision, reason, chain_id=self.chain.w3.eth.chain_id + 1)
        else:
            signed = sign(key, request_id, decision, reason, contract_address=self.chain.catalog.address)
        self._relay(request_id, decision, signed, signed_by=claimed, forged=True)

    @rule(seconds=st.sampled_from(TIME_JUMPS))
    def time_passes(self, seconds: int) -> None:
        self.chain.advance_time(seconds)

    @rule(grade=st.integers(1, 4), approvals=st.integers(1, 3))
    def consortium_sets_threshold(self, grade: int, approvals: int) -> None:
        """A passed proposal changes a grade's threshold: requests made from now on need that many approvals."""
        self.chain.govern([("SharingAgreements", "setApprovalThreshold", [grade, approvals])], "threshold")
        self.thresholds[grade] = approvals

    @precondition(lambda self: len(self.published) == len(ENTRIES))  # one per walk
    @rule(data=st.data())
    def owner_deprecates_entry(self, data: st.DataObject) -> None:
        """The owner deprecates an entry: its pending requests can no longer be approved, nor new ones made."""
        entry = data.draw(st.sampled_from(sorted(self.published)), label="entry")
        fn = self.chain.catalog.functions.setStatus(self.entry_ids[entry], EntryStatus.DEPRECATED)
        self.chain.transact(fn, self.chain.key(ENTRIES[entry][0]))
        self.published.discard(entry)

    # ------------------------------------------------------------ the model

    def _relay(
        self, request_id: int, decision: Decision, signed: SignedDecision, *, signed_by: str, forged: bool = False
    ) -> None:
        """Relays `signed` as `decision` on `request_id` from a stranger; checks the predicted outcome."""
        functions = self.chain.sharing.functions
        if decision == Decision.APPROVE:
            fn = functions.approve(request_id, *signed.args)
        else:
            fn = getattr(functions, decision.name.lower())(request_id, REASONS[decision], *signed.args)
        expected = self._predict(request_id, decision, signed_by, signed.nonce, signed.deadline, forged=forged)
        assert not forged or expected is not None, "a forged signature was predicted to count"
        receipt = run_predicted(self.chain, fn, self.chain.spare_key(0), expected)
        if receipt is None:
            return
        self.nonces[signed_by] += 1
        self.used.append((request_id, decision, signed))
        r = self.model[request_id]
        if decision == Decision.APPROVE:
            r.approvers.add(signed_by)
            if len(r.approvers) >= r.needed:
                self._granted(request_id, receipt)
        else:
            r.status = Status.REFUSED if decision == Decision.REFUSE else Status.REVOKED
            assert self.chain.events(receipt, self.chain.sharing, "SharingGranted") == []

    def _predict(
        self, request_id: int, decision: Decision, signer: str, nonce: int, deadline: int, forged: bool = False
    ) -> Outcome:
        """The contract's answer to `signer`'s `decision`, checks in the contract's order (approve/refuse/revoke)."""
        r = self.model.get(request_id)
        if r is None:
            return ("SharingUnknownRequest", (request_id,))
        if decision == Decision.REVOKE:
            if r.status != Status.GRANTED:
                return ("SharingNotGranted", (request_id, r.status))
        elif r.status != Status.PENDING:
            return ("SharingNotPending", (request_id, r.status))
        if decision == Decision.APPROVE and r.entry not in self.published:
            return ("SharingEntryNotPublished", (self.entry_ids[r.entry],))
        # the chain's clock is past `deadline` (signatures are made to expire an hour or more either side of it)
        if self.chain.latest_timestamp() >= deadline:
            return ("SharingSignatureExpired", (deadline,))
        address = self._address(signer)
        if nonce != self.nonces[signer]:
            return ("SharingNonceUsed", (address, nonce, self.nonces[signer]))
        if forged:
            return ("SharingInvalidSignature", (address,))
        owner = ENTRIES[r.entry][0]
        if not signer.startswith(f"{owner}/") or signer.endswith("/main"):
            return ("SharingNotOwnerApprover", (address, ORG_IDS[owner]))
        if decision == Decision.APPROVE and signer in r.approvers:
            return ("SharingAlreadyApproved", (request_id, address))
        return None

    def _granted(self, request_id: int, receipt: TxReceipt) -> None:
        r = self.model[request_id]
        (event,) = self.chain.events(receipt, self.chain.sharing, "SharingGranted")
        assert event["expiresAt"] == event["grantedAt"] + r.duration
        r.status, r.expires_at = Status.GRANTED, int(event["expiresAt"])

    def _owner_moves(self, request_id: int) -> list[tuple[str, Decision]]:
        """(signer, decision) pairs by the owner's approvers that must succeed on `request_id` now."""
        r = self.model[request_id]
        owner = ENTRIES[r.entry][0]
        approvers = (f"{owner}/0", f"{owner}/1")
        if r.status == Status.GRANTED:
            return [(s, Decision.REVOKE) for s in approvers]
        if r.status != Status.PENDING or r.entry not in self.published:
            return []
        return [(s, Decision.APPROVE) for s in approvers if s not in r.approvers]

    def _request_ids(self) -> st.SearchStrategy[int]:
        """A request of the model, or now and then the next id (no such request yet)."""
        return st.sampled_from([*sorted(self.model) * 3, self.first_id + len(self.model)])

    def _key(self, signer: str) -> str:
        if signer == "stranger":
            return self.chain.spare_key(1)
        org, which = signer.split("/")
        if which == "main":
            return self.chain.key(org)
        return self.chain.seeded.orgs[org].approvers[int(which)][1]

    def _address(self, signer: str) -> str:
        return self.addresses[signer]

    @invariant()
    def chain_matches_model(self) -> None:
        sharing = self.chain.sharing.functions
        now = self.chain.latest_timestamp()
        ids = sorted(self.model)
        approvers = {i: [f"{ENTRIES[self.model[i].entry][0]}/{n}" for n in (0, 1)] for i in ids}
        calls = [sharing.requestCount()]
        calls += [sharing.getRequest(i) for i in ids] + [sharing.isActive(i) for i in ids]
        calls += [sharing.hasApproved(i, self._address(s)) for i in ids for s in approvers[i]]
        calls += [sharing.nonces(self._address(s)) for s in SIGNERS]
        calls += [sharing.approvalThreshold(grade) for grade in sorted(self.thresholds)]
        results = iter(read_all(self.chain, calls))
        assert next(results) == self.first_id - 1 + len(self.model)
        stored = {i: dict(zip(REQUEST_FIELDS, next(results), strict=True)) for i in ids}
        for i in ids:
            r, got = self.model[i], stored[i]
            assert (got["status"], got["approvals"], got["approvalsNeeded"], got["expiresAt"]) == (
                r.status,
                len(r.approvers),
                r.needed,
                r.expires_at,
            ), i
            # a grant exists iff its threshold of distinct approvers signed (on the chain's own numbers)
            granted = got["status"] in (Status.GRANTED, Status.REVOKED)
            assert granted == (got["approvals"] >= got["approvalsNeeded"]) == (got["expiresAt"] != 0), i
        for i in ids:
            r = self.model[i]
            assert next(results) == (r.status == Status.GRANTED and now < r.expires_at), i
        for i in ids:
            for signer in approvers[i]:
                assert next(results) == (signer in self.model[i].approvers), (i, signer)
        for signer in SIGNERS:
            assert next(results) == self.nonces[signer], signer
        for grade in sorted(self.thresholds):
            assert next(results) == self.thresholds[grade], grade


@ANVIL_ONLY
def test_random_sharing_walks_grant_exactly_at_threshold_of_distinct_signed_approvals(net: ContractsChain) -> None:
    entry_ids = {}
    for name, (owner, grade, condition) in ENTRIES.items():
        entry_ids[name] = net.create_entry(owner, entry_input(name, grade=grade, share_condition=condition))
    run_machine(SharingLifecycleMachine, net, MACHINE_SETTINGS, entry_ids=entry_ids)
