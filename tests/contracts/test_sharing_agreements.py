"""Behaviour of SharingAgreements: requests, approvals signed by the owner's approvers, grants, expiry, revocation.

Approvals are EIP-712 signatures made with chain_gateway.eip712 (as `dirchain approve` makes them) and relayed
by whoever sends the transaction: in these tests mostly a funded account outside the consortium.

The module builds one catalog per backend and every test starts from it (snapshot and revert). BJ-PSB (org 2)
owns every entry; BJ-CMC (org 3) and CO-ZHCS (org 6) request them. Default thresholds: 1, 1, 2, 2 approvals
for grades 1-4.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from web3.types import TxReceipt

from chain_gateway.eip712 import Decision, decision_typed_data, recover_signer
from tests.contracts.support import (
    Backend,
    ContractsChain,
    SignedDecision,
    device_code,
    device_input,
    entry_input,
    pass_proposal,
)

PSB, CMC, ZHCS = 2, 3, 6
RAW, DESENSITIZED, RESULT_ONLY = 1, 2, 4
HOUR, DAY, YEAR = 3_600, 86_400, 365 * 86_400
MIN_DURATION, MAX_DURATION = HOUR, 5 * YEAR
CAMERA = device_code(1)
PURPOSE = "拥堵治理 congestion study"


class Entry(IntEnum):
    """The module's catalog entries (all BJ-PSB's)."""

    GRADE_3 = 1  # conditional, all forms, published
    UNCONDITIONAL = 2  # grade 1, desensitized or result-only, published
    NOT_SHAREABLE = 3  # grade 2, published
    DRAFT = 4  # grade 3 conditional, not published
    RESULT_ONLY = 5  # grade 4 conditional, result-only, published
    GRADE_2 = 6  # conditional, all forms, published
    DEPRECATED = 7  # grade 3 conditional, deprecated


class Status(IntEnum):
    NONE = 0
    PENDING = 1
    GRANTED = 2
    REFUSED = 3
    REVOKED = 4


ENTRIES: dict[Entry, tuple[dict[str, Any], bool]] = {
    Entry.GRADE_3: ({"grade": 3, "device_codes": [CAMERA]}, True),
    Entry.UNCONDITIONAL: ({"grade": 1, "share_condition": 0, "forms": DESENSITIZED | RESULT_ONLY}, True),
    Entry.NOT_SHAREABLE: ({"grade": 2, "share_condition": 2}, True),
    Entry.DRAFT: ({"grade": 3}, False),
    Entry.RESULT_ONLY: ({"grade": 4, "forms": RESULT_ONLY}, True),
    Entry.GRADE_2: ({"grade": 2}, True),
    Entry.DEPRECATED: ({"grade": 3}, True),
}


@pytest.fixture(scope="module")
def sharing_chain(contracts_backend: Backend) -> Iterator[ContractsChain]:
    """The seeded consortium plus this module's catalog; undone when the module is done."""
    chain = contracts_backend.chain
    undo = chain.snapshot()
    chain.register("BJ-PSB", device_input(CAMERA))
    for entry, (fields, publish) in ENTRIES.items():
        assert chain.create_entry("BJ-PSB", entry_input(entry.name, **fields), publish) == entry
    chain.transact(chain.catalog.functions.setStatus(Entry.DEPRECATED, 3), chain.key("BJ-PSB"))
    yield chain
    undo()


@pytest.fixture
def sh(sharing_chain: ContractsChain) -> Iterator[ContractsChain]:
    """The module's catalog; whatever the test does is undone after it."""
    restore = sharing_chain.snapshot()
    yield sharing_chain
    restore()


def approver_key(chain: ContractsChain, org: str = "BJ-PSB", index: int = 0) -> str:
    return chain.seeded.orgs[org].approvers[index][1]


def relayer(chain: ContractsChain) -> str:
    """A funded account outside the consortium: relaying needs no role."""
    return chain.spare_key(0)


def approve(chain: ContractsChain, request_id: int, key: str, sender: str | None = None) -> TxReceipt:
    """`key` signs an approval of `request_id` with its next nonce; `sender` (a stranger by default) relays it."""
    signed = chain.sign_decision(key, request_id, Decision.APPROVE)
    return chain.transact(chain.sharing.functions.approve(request_id, *signed.args), sender or relayer(chain))


def decide(chain: ContractsChain, decision: Decision, request_id: int, reason: str, key: str) -> TxReceipt:
    """`key` signs a refusal or revocation of `request_id`, relayed by a stranger."""
    signed = chain.sign_decision(key, request_id, decision, reason)
    fn = getattr(chain.sharing.functions, decision.name.lower())
    return chain.transact(fn(request_id, reason, *signed.args), relayer(chain))


def approve_fn(chain: ContractsChain, request_id: int, signed: SignedDecision) -> Any:
    return chain.sharing.functions.approve(request_id, *signed.args)


def request_of(chain: ContractsChain, request_id: int) -> dict[str, Any]:
    fields = (
        "entryId",
        "requesterOrg",
        "ownerOrg",
        "form",
        "status",
        "approvals",
        "approvalsNeeded",
        "duration",
        "requestedAt",
        "grantedAt",
        "expiresAt",
    )
    return dict(zip(fields, chain.sharing.functions.getRequest(request_id).call(), strict=True))


def block_time(chain: ContractsChain, receipt: TxReceipt) -> int:
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


class TestSharingRequests:
    def test_unconditional_entry_is_granted_at_request(self, sh: ContractsChain) -> None:
        fn = sh.sharing.functions.request(Entry.UNCONDITIONAL, DESENSITIZED, PURPOSE, 30 * DAY)
        receipt = sh.transact(fn, sh.key("BJ-CMC"))
        now = block_time(sh, receipt)

        assert sh.events(receipt, sh.sharing, "SharingRequested") == [
            {
                "requestId": 1,
                "entryId": Entry.UNCONDITIONAL,
                "requesterOrg": CMC,
                "ownerOrg": PSB,
                "requester": sh.account("BJ-CMC"),
                "form": DESENSITIZED,
                "purpose": PURPOSE,
                "duration": 30 * DAY,
                "approvalsNeeded": 0,
            }
        ]
        assert sh.events(receipt, sh.sharing, "SharingGranted") == [
            {
                "requestId": 1,
                "entryId": Entry.UNCONDITIONAL,
                "requesterOrg": CMC,
                "form": DESENSITIZED,
                "grantedAt": now,
                "expiresAt": now + 30 * DAY,
            }
        ]
        assert request_of(sh, 1) == {
            "entryId": Entry.UNCONDITIONAL,
            "requesterOrg": CMC,
            "ownerOrg": PSB,
            "form": DESENSITIZED,
            "status": Status.GRANTED,
            "approvals": 0,
            "approvalsNeeded": 0,
            "duration": 30 * DAY,
            "requestedAt": now,
            "grantedAt": now,
            "expiresAt": now + 30 * DAY,
        }
        assert sh.sharing.functions.isActive(1).call()
        assert sh.sharing.functions.requestCount().call() == 1

    def test_conditional_request_waits_for_the_grade_threshold(self, sh: ContractsChain) -> None:
        fn = sh.sharing.functions.request(Entry.GRADE_3, RAW, PURPOSE, DAY)
        receipt = sh.transact(fn, sh.key("CO-ZHCS"))  # a member without any role may request
        [event] = sh.events(receipt, sh.sharing, "SharingRequested")
        assert (event["requesterOrg"], event["ownerOrg"], event["approvalsNeeded"]) == (ZHCS, PSB, 2)
        assert sh.events(receipt, sh.sharing, "SharingGranted") == []
        now = block_time(sh, receipt)
        request = request_of(sh, 1)
        assert request["status"] == Status.PENDING
        assert (request["approvals"], request["approvalsNeeded"]) == (0, 2)
        assert (request["requestedAt"], request["grantedAt"], request["expiresAt"]) == (now, 0, 0)
        assert not sh.sharing.functions.isActive(1).call()

    @pytest.mark.parametrize(
        ("entry", "form", "purpose", "duration", "error", "args"),
        [
            pytest.param(Entry.DRAFT, RAW, PURPOSE, DAY, "SharingEntryNotPublished", (Entry.DRAFT,), id="draft"),
            pytest.param(
                Entry.DEPRECATED, RAW, PURPOSE, DAY, "SharingEntryNotPublished", (Entry.DEPRECATED,), id="deprecated"
            ),
            pytest.param(
                Entry.NOT_SHAREABLE,
                RAW,
                PURPOSE,
                DAY,
                "SharingNotShareable",
                (Entry.NOT_SHAREABLE,),
                id="not-shareable",
            ),
            pytest.param(Entry.GRADE_3, 0, PURPOSE, DAY, "SharingBadForm", (0,), id="form-0"),
            pytest.param(Entry.GRADE_3, RAW | DESENSITIZED, PURPOSE, DAY, "SharingBadForm", (3,), id="two-forms"),
            pytest.param(Entry.GRADE_3, 8, PURPOSE, DAY, "SharingBadForm", (8,), id="form-8"),
            pytest.param(
                Entry.RESULT_ONLY,
                RAW,
                PURPOSE,
                DAY,
                "SharingFormNotAllowed",
                (Entry.RESULT_ONLY, RAW, RESULT_ONLY),
                id="raw-of-result-only",
            ),
            pytest.param(
                Entry.UNCONDITIONAL,
                RAW,
                PURPOSE,
                DAY,
                "SharingFormNotAllowed",
                (Entry.UNCONDITIONAL, RAW, 6),
                id="raw-of-unconditional",
            ),
            pytest.param(Entry.GRADE_3, RAW, "", DAY, "SharingEmptyPurpose", (), id="empty-purpose"),
            pytest.param(Entry.GRADE_3, RAW, PURPOSE, 0, "SharingBadDuration", (0,), id="duration-0"),
            pytest.param(
                Entry.GRADE_3,
                RAW,
                PURPOSE,
                MIN_DURATION - 1,
                "SharingBadDuration",
                (MIN_DURATION - 1,),
                id="duration-too-short",
            ),
            pytest.param(
                Entry.GRADE_3,
                RAW,
                PURPOSE,
                MAX_DURATION + 1,
                "SharingBadDuration",
                (MAX_DURATION + 1,),
                id="duration-too-long",
            ),
            pytest.param(99, RAW, PURPOSE, DAY, "CatalogUnknownEntry", (99,), id="unknown-entry"),
        ],
    )
    def test_bad_request_is_refused(
        self, sh: ContractsChain, entry: int, form: int, purpose: str, duration: int, error: str, args: tuple[Any, ...]
    ) -> None:
        fn = sh.sharing.functions.request(entry, form, purpose, duration)
        sh.assert_reverts(fn, sh.key("BJ-CMC"), error, *args)

    def test_owner_cannot_request_its_own_entry(self, sh: ContractsChain) -> None:
        fn = sh.sharing.functions.request(Entry.GRADE_3, RAW, PURPOSE, DAY)
        sh.assert_reverts(fn, sh.key("BJ-PSB"), "SharingOwnEntry", Entry.GRADE_3)
        approver = approver_key(sh)  # nor can any other account of the owner org
        sh.assert_reverts(fn, approver, "SharingOwnEntry", Entry.GRADE_3)

    def test_account_outside_the_consortium_cannot_request(self, sh: ContractsChain) -> None:
        fn = sh.sharing.functions.request(Entry.UNCONDITIONAL, DESENSITIZED, PURPOSE, DAY)
        stranger = relayer(sh)
        sh.assert_reverts(fn, stranger, "ConsortiumUnknownAccount", sh.address_of(stranger))

    def test_suspended_member_cannot_request(self, sh: ContractsChain) -> None:
        pass_proposal(sh, [("Consortium", "setMemberActive", ["CO-ZHCS", False])])
        fn = sh.sharing.functions.request(Entry.UNCONDITIONAL, DESENSITIZED, PURPOSE, DAY)
        sh.assert_reverts(fn, sh.key("CO-ZHCS"), "ConsortiumOrgInactive", ZHCS)

    @pytest.mark.parametrize("duration", [MIN_DURATION, MAX_DURATION])
    def test_durations_on_the_limits_are_accepted(self, sh: ContractsChain, duration: int) -> None:
        request_id = sh.request("BJ-CMC", Entry.UNCONDITIONAL, DESENSITIZED, duration=duration)
        request = request_of(sh, request_id)
        assert request["expiresAt"] - request["grantedAt"] == duration

    def test_unknown_request_cannot_be_read(self, sh: ContractsChain) -> None:
        for request_id in (0, 1):
            for fn in (sh.sharing.functions.getRequest(request_id), sh.sharing.functions.isActive(request_id)):
                sh.assert_reverts(fn, sh.key("BJ-CMC"), "SharingUnknownRequest", request_id)


class TestSharingApprovals:
    def test_grade_3_request_is_pending_after_one_approval_and_granted_after_the_second(
        self, sh: ContractsChain
    ) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW, duration=7 * DAY)
        first, second = (sh.address_of(approver_key(sh, index=i)) for i in (0, 1))

        receipt = approve(sh, request_id, approver_key(sh, index=0))  # relayed by a stranger
        assert sh.events(receipt, sh.sharing, "SharingApproved") == [
            {"requestId": request_id, "approver": first, "ownerOrg": PSB, "approvals": 1, "nonce": 0}
        ]
        assert sh.events(receipt, sh.sharing, "SharingGranted") == []
        assert request_of(sh, request_id)["status"] == Status.PENDING
        assert request_of(sh, request_id)["approvals"] == 1
        assert not sh.sharing.functions.isActive(request_id).call()
        assert sh.sharing.functions.hasApproved(request_id, first).call()
        assert not sh.sharing.functions.hasApproved(request_id, second).call()
        assert sh.sharing.functions.nonces(first).call() == 1
        assert sh.sharing.functions.nonces(second).call() == 0  # nonces are per approver

        receipt = approve(sh, request_id, approver_key(sh, index=1), sender=sh.key("BJ-CMC"))  # the requester relays
        now = block_time(sh, receipt)
        assert sh.events(receipt, sh.sharing, "SharingApproved") == [
            {"requestId": request_id, "approver": second, "ownerOrg": PSB, "approvals": 2, "nonce": 0}
        ]
        assert sh.events(receipt, sh.sharing, "SharingGranted") == [
            {
                "requestId": request_id,
                "entryId": Entry.GRADE_3,
                "requesterOrg": CMC,
                "form": RAW,
                "grantedAt": now,
                "expiresAt": now + 7 * DAY,
            }
        ]
        request = request_of(sh, request_id)
        assert (request["status"], request["approvals"], request["approvalsNeeded"]) == (Status.GRANTED, 2, 2)
        assert (request["grantedAt"], request["expiresAt"]) == (now, now + 7 * DAY)
        assert sh.sharing.functions.isActive(request_id).call()

    def test_grade_2_conditional_request_is_granted_on_one_approval(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_2, DESENSITIZED)
        assert request_of(sh, request_id)["approvalsNeeded"] == 1
        receipt = approve(sh, request_id, approver_key(sh))
        assert len(sh.events(receipt, sh.sharing, "SharingGranted")) == 1
        assert sh.sharing.functions.isActive(request_id).call()

    @pytest.mark.parametrize(
        ("org", "index"),
        [
            ("BJ-PSB", None),  # the owner's main account: ADMIN and REGISTRAR, not APPROVER
            ("BJ-CMC", 0),  # an approver of another org (the requester's)
            ("BJ-EIB", 0),  # an approver of a third org
            ("AU-BJ", None),  # the auditor
            (None, None),  # an account outside the consortium
        ],
        ids=["owner-non-approver", "requester-approver", "other-approver", "auditor", "stranger"],
    )
    def test_only_an_approver_of_the_owner_org_may_approve(
        self, sh: ContractsChain, org: str | None, index: int | None
    ) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        if org is None:
            key = sh.spare_key(1)
        else:
            key = sh.key(org) if index is None else approver_key(sh, org, index)
        signed = sh.sign_decision(key, request_id)
        fn = approve_fn(sh, request_id, signed)
        sh.assert_reverts(fn, relayer(sh), "SharingNotOwnerApprover", signed.approver, PSB)
        refuse = sh.sharing.functions.refuse(request_id, "", *sh.sign_decision(key, request_id, Decision.REFUSE).args)
        sh.assert_reverts(refuse, relayer(sh), "SharingNotOwnerApprover", signed.approver, PSB)

    def test_approver_of_a_suspended_owner_org_cannot_approve(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        pass_proposal(sh, [("Consortium", "setMemberActive", ["BJ-PSB", False])], voter="BJ-CMC")
        signed = sh.sign_decision(approver_key(sh), request_id)
        sh.assert_reverts(
            approve_fn(sh, request_id, signed), relayer(sh), "SharingNotOwnerApprover", signed.approver, PSB
        )

    def test_signature_by_someone_else_than_the_approver_is_refused(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        named = sh.address_of(approver_key(sh, index=1))
        for signer in (approver_key(sh, index=0), approver_key(sh, "BJ-CMC"), sh.spare_key(1)):
            signed = sh.sign_decision(signer, request_id)
            forged = SignedDecision(named, signed.nonce, signed.deadline, signed.signature)
            sh.assert_reverts(approve_fn(sh, request_id, forged), relayer(sh), "SharingInvalidSignature", named)

    def test_malformed_or_malleated_signature_is_refused(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        signed = sh.sign_decision(approver_key(sh), request_id)
        sig = signed.signature
        # secp256k1 order: (r, n - s, v ^ 1) recovers the same signer; OpenZeppelin's ECDSA refuses high s
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        high_s = sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([sig[64] ^ 1])
        for bad in (b"", sig[:64], sig + b"\x00", b"\x00" * 65, sig[:64] + b"\x05", high_s):
            forged = SignedDecision(signed.approver, signed.nonce, signed.deadline, bad)
            fn = approve_fn(sh, request_id, forged)
            sh.assert_reverts(fn, relayer(sh), "SharingInvalidSignature", signed.approver)

    def test_signature_counts_only_for_what_was_signed(self, sh: ContractsChain) -> None:
        """A signature binds request, decision, reason, nonce, deadline, chain and contract."""
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        other_id = sh.request("BJ-CMC", Entry.GRADE_3, DESENSITIZED)
        key = approver_key(sh)
        approver = sh.address_of(key)
        deadline = sh.latest_timestamp() + 600
        wrong = [
            sh.sign_decision(key, other_id, deadline=deadline),  # another request
            sh.sign_decision(key, request_id, Decision.REFUSE, deadline=deadline),  # another decision
            sh.sign_decision(key, request_id, reason="ok", deadline=deadline),  # another reason
            sh.sign_decision(key, request_id, deadline=deadline - 1),  # another deadline
            sh.sign_decision(key, request_id, deadline=deadline, contract_address=sh.catalog.address),  # contract
            sh.sign_decision(key, request_id, deadline=deadline, chain_id=sh.w3.eth.chain_id + 1),  # chain
        ]
        for signed in wrong:
            relayed = SignedDecision(approver, 0, deadline, signed.signature)
            sh.assert_reverts(approve_fn(sh, request_id, relayed), relayer(sh), "SharingInvalidSignature", approver)
        signed = sh.sign_decision(key, request_id, deadline=deadline)
        sh.transact(approve_fn(sh, request_id, signed), relayer(sh))

    def test_replayed_signature_is_refused(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        signed = sh.sign_decision(approver_key(sh), request_id)
        fn = approve_fn(sh, request_id, signed)
        sh.transact(fn, relayer(sh))
        sh.assert_reverts(fn, relayer(sh), "SharingNonceUsed", signed.approver, 0, 1)
        sh.assert_reverts(fn, sh.key("BJ-CMC"), "SharingNonceUsed", signed.approver, 0, 1)  # whoever relays it

    def test_approval_of_one_request_cannot_be_replayed_on_another(self, sh: ContractsChain) -> None:
        first = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        second = sh.request("BJ-CMC", Entry.GRADE_3, DESENSITIZED)
        signed = sh.sign_decision(approver_key(sh), first)
        # before it is used: the nonce is right but the digest names the other request
        sh.assert_reverts(approve_fn(sh, second, signed), relayer(sh), "SharingInvalidSignature", signed.approver)
        sh.transact(approve_fn(sh, first, signed), relayer(sh))
        sh.assert_reverts(approve_fn(sh, second, signed), relayer(sh), "SharingNonceUsed", signed.approver, 0, 1)
        assert not sh.sharing.functions.hasApproved(second, signed.approver).call()

    def test_nonces_are_used_in_order(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        signed = sh.sign_decision(approver_key(sh), request_id, nonce=1)
        sh.assert_reverts(approve_fn(sh, request_id, signed), relayer(sh), "SharingNonceUsed", signed.approver, 1, 0)

    def test_signature_past_its_deadline_is_refused(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        deadline = sh.latest_timestamp() + 60
        signed = sh.sign_decision(approver_key(sh), request_id, deadline=deadline)
        sh.advance_time(61)
        fn = approve_fn(sh, request_id, signed)
        sh.assert_reverts(fn, relayer(sh), "SharingSignatureExpired", deadline)
        receipt = sh.transact_reverting(fn, relayer(sh))  # a mined transaction fails the same way
        assert receipt["status"] == 0
        assert sh.sharing.functions.nonces(signed.approver).call() == 0

    def test_same_approver_cannot_approve_twice(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        approve(sh, request_id, approver_key(sh))
        signed = sh.sign_decision(approver_key(sh), request_id)  # a fresh signature with the next nonce
        assert signed.nonce == 1
        fn = approve_fn(sh, request_id, signed)
        sh.assert_reverts(fn, relayer(sh), "SharingAlreadyApproved", request_id, signed.approver)

    def test_granted_request_takes_no_more_approvals(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_2, RAW)
        approve(sh, request_id, approver_key(sh, index=0))
        signed = sh.sign_decision(approver_key(sh, index=1), request_id)
        fn = approve_fn(sh, request_id, signed)
        sh.assert_reverts(fn, relayer(sh), "SharingNotPending", request_id, Status.GRANTED)

    def test_unknown_request_cannot_be_approved(self, sh: ContractsChain) -> None:
        signed = sh.sign_decision(approver_key(sh), 7)
        sh.assert_reverts(approve_fn(sh, 7, signed), relayer(sh), "SharingUnknownRequest", 7)

    @pytest.mark.parametrize("change", ["deprecated", "form-dropped", "not-shareable"])
    def test_request_cannot_be_granted_once_the_entry_no_longer_allows_it(
        self, sh: ContractsChain, change: str
    ) -> None:
        """The entry is checked again at approval: a form the entry does not allow is never granted."""
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        approve(sh, request_id, approver_key(sh, index=0))
        owner = sh.key("BJ-PSB")
        if change == "deprecated":
            sh.transact(sh.catalog.functions.setStatus(Entry.GRADE_3, 3), owner)
            expected: tuple[Any, ...] = ("SharingEntryNotPublished", Entry.GRADE_3)
        elif change == "form-dropped":
            revised = entry_input("GRADE_3", grade=3, forms=DESENSITIZED | RESULT_ONLY)
            sh.transact(sh.catalog.functions.reviseEntry(Entry.GRADE_3, revised, True), owner)
            expected = ("SharingFormNotAllowed", Entry.GRADE_3, RAW, DESENSITIZED | RESULT_ONLY)
        else:
            revised = entry_input("GRADE_3", grade=3, share_condition=2)
            sh.transact(sh.catalog.functions.reviseEntry(Entry.GRADE_3, revised, True), owner)
            expected = ("SharingNotShareable", Entry.GRADE_3)
        signed = sh.sign_decision(approver_key(sh, index=1), request_id)
        sh.assert_reverts(approve_fn(sh, request_id, signed), relayer(sh), *expected)
        # the owner's approvers can still close it
        decide(sh, Decision.REFUSE, request_id, "entry changed", approver_key(sh, index=1))
        assert request_of(sh, request_id)["status"] == Status.REFUSED


class TestSharingRefusalRevocationExpiry:
    def test_refusal_with_reason_closes_the_request(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        approve(sh, request_id, approver_key(sh, index=0))  # one approval does not prevent a refusal
        reason = "原始数据不予提供 raw data withheld"
        key = approver_key(sh, index=1)
        receipt = decide(sh, Decision.REFUSE, request_id, reason, key)
        assert sh.events(receipt, sh.sharing, "SharingRefused") == [
            {"requestId": request_id, "approver": sh.address_of(key), "ownerOrg": PSB, "reason": reason, "nonce": 0}
        ]
        assert request_of(sh, request_id)["status"] == Status.REFUSED
        assert not sh.sharing.functions.isActive(request_id).call()
        assert sh.sharing.functions.nonces(sh.address_of(key)).call() == 1
        signed = sh.sign_decision(key, request_id)
        sh.assert_reverts(approve_fn(sh, request_id, signed), relayer(sh), "SharingNotPending", request_id, 3)

    def test_refusal_signature_binds_its_reason(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        signed = sh.sign_decision(approver_key(sh), request_id, Decision.REFUSE, "too broad")
        fn = sh.sharing.functions.refuse(request_id, "something else", *signed.args)
        sh.assert_reverts(fn, relayer(sh), "SharingInvalidSignature", signed.approver)
        approval = sh.sign_decision(approver_key(sh), request_id)  # an approval is not a refusal
        fn = sh.sharing.functions.refuse(request_id, "", *approval.args)
        sh.assert_reverts(fn, relayer(sh), "SharingInvalidSignature", approval.approver)

    def test_granted_request_cannot_be_refused(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.UNCONDITIONAL, DESENSITIZED)
        signed = sh.sign_decision(approver_key(sh), request_id, Decision.REFUSE, "late")
        fn = sh.sharing.functions.refuse(request_id, "late", *signed.args)
        sh.assert_reverts(fn, relayer(sh), "SharingNotPending", request_id, Status.GRANTED)

    def test_revoked_grant_is_no_longer_active(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.UNCONDITIONAL, DESENSITIZED)
        assert sh.sharing.functions.isActive(request_id).call()
        key = approver_key(sh, index=1)
        receipt = decide(sh, Decision.REVOKE, request_id, "purpose fulfilled", key)
        assert sh.events(receipt, sh.sharing, "SharingRevoked") == [
            {
                "requestId": request_id,
                "approver": sh.address_of(key),
                "ownerOrg": PSB,
                "reason": "purpose fulfilled",
                "nonce": 0,
            }
        ]
        assert request_of(sh, request_id)["status"] == Status.REVOKED
        assert not sh.sharing.functions.isActive(request_id).call()
        signed = sh.sign_decision(key, request_id, Decision.REVOKE, "again")
        fn = sh.sharing.functions.revoke(request_id, "again", *signed.args)
        sh.assert_reverts(fn, relayer(sh), "SharingNotGranted", request_id, Status.REVOKED)

    @pytest.mark.parametrize("status", [Status.PENDING, Status.REFUSED])
    def test_only_a_granted_request_can_be_revoked(self, sh: ContractsChain, status: Status) -> None:
        request_id = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        if status == Status.REFUSED:
            decide(sh, Decision.REFUSE, request_id, "no", approver_key(sh))
        signed = sh.sign_decision(approver_key(sh, index=1), request_id, Decision.REVOKE, "stop")
        fn = sh.sharing.functions.revoke(request_id, "stop", *signed.args)
        sh.assert_reverts(fn, relayer(sh), "SharingNotGranted", request_id, status)

    def test_revocation_needs_an_owner_approvers_revoke_signature(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.UNCONDITIONAL, DESENSITIZED)
        outsider = sh.sign_decision(approver_key(sh, "BJ-CMC"), request_id, Decision.REVOKE, "stop")
        fn = sh.sharing.functions.revoke(request_id, "stop", *outsider.args)
        sh.assert_reverts(fn, relayer(sh), "SharingNotOwnerApprover", outsider.approver, PSB)
        approval = sh.sign_decision(approver_key(sh), request_id, Decision.APPROVE, "stop")
        fn = sh.sharing.functions.revoke(request_id, "stop", *approval.args)
        sh.assert_reverts(fn, relayer(sh), "SharingInvalidSignature", approval.approver)

    def test_grant_expires_by_the_chains_block_time(self, sh: ContractsChain) -> None:
        request_id = sh.request("BJ-CMC", Entry.UNCONDITIONAL, DESENSITIZED, duration=MIN_DURATION)
        expires_at = request_of(sh, request_id)["expiresAt"]
        sh.advance_time(expires_at - 2 - sh.latest_timestamp())
        assert sh.sharing.functions.isActive(request_id).call()
        sh.advance_time(2 + DAY)
        assert sh.latest_timestamp() > expires_at
        assert not sh.sharing.functions.isActive(request_id).call()
        assert request_of(sh, request_id)["status"] == Status.GRANTED  # expiry is a matter of time, not of state


class TestSharingThresholdsAndDomain:
    def test_default_thresholds_per_grade(self, sh: ContractsChain) -> None:
        assert [sh.sharing.functions.approvalThreshold(g).call() for g in (1, 2, 3, 4)] == [1, 1, 2, 2]

    @pytest.mark.parametrize("org", ["BJ-EIB", "BJ-PSB", None])  # admins act only through a proposal
    def test_threshold_cannot_be_set_directly(self, sh: ContractsChain, org: str | None) -> None:
        key = sh.key(org) if org else relayer(sh)
        fn = sh.sharing.functions.setApprovalThreshold(3, 1)
        sh.assert_reverts(fn, key, "SharingOnlyConsortium", sh.address_of(key))

    def test_threshold_set_by_proposal_applies_to_new_requests(self, sh: ContractsChain) -> None:
        before = sh.request("BJ-CMC", Entry.GRADE_3, RAW)
        _, receipt = pass_proposal(sh, [("SharingAgreements", "setApprovalThreshold", [3, 1])])
        assert sh.events(receipt, sh.sharing, "ApprovalThresholdSet") == [{"grade": 3, "approvals": 1}]
        assert sh.sharing.functions.approvalThreshold(3).call() == 1

        after = sh.request("BJ-CMC", Entry.GRADE_3, DESENSITIZED)
        assert request_of(sh, after)["approvalsNeeded"] == 1
        approve(sh, after, approver_key(sh, index=0))
        assert sh.sharing.functions.isActive(after).call()

        approve(sh, before, approver_key(sh, index=1))  # the older request keeps its threshold of 2
        assert request_of(sh, before)["status"] == Status.PENDING
        assert request_of(sh, before)["approvalsNeeded"] == 2

    def test_raised_threshold_needs_more_approvers(self, sh: ContractsChain) -> None:
        third = sh.spare_key(2)
        sh.add_member_account("BJ-PSB", third, ["APPROVER"])
        pass_proposal(sh, [("SharingAgreements", "setApprovalThreshold", [4, 3])])
        request_id = sh.request("BJ-CMC", Entry.RESULT_ONLY, RESULT_ONLY)
        for key in (approver_key(sh, index=0), approver_key(sh, index=1)):
            approve(sh, request_id, key)
        assert request_of(sh, request_id)["status"] == Status.PENDING
        receipt = approve(sh, request_id, third)
        assert sh.events(receipt, sh.sharing, "SharingApproved")[0]["approvals"] == 3
        assert sh.sharing.functions.isActive(request_id).call()

    @pytest.mark.parametrize(("grade", "approvals"), [(0, 1), (5, 1), (3, 0), (3, 11)])
    def test_bad_threshold_proposal_fails_to_execute(self, sh: ContractsChain, grade: int, approvals: int) -> None:
        proposal_id, _ = sh.propose(
            sh.key("BJ-EIB"), [("SharingAgreements", "setApprovalThreshold", [grade, approvals])]
        )
        vote = sh.consortium.functions.vote(proposal_id)
        sh.assert_reverts(vote, sh.key("BJ-PSB"), "SharingBadThreshold", grade, approvals)

    def test_domain_and_digest_match_the_gateways_typed_data(self, sh: ContractsChain) -> None:
        assert sh.sharing.functions.DECISION_TYPEHASH().call() == keccak(
            text="Decision(uint256 requestId,uint8 decision,bytes32 reasonHash,uint256 nonce,uint256 deadline)"
        )
        key = approver_key(sh)
        for decision, reason in ((Decision.APPROVE, ""), (Decision.REFUSE, "不予共享"), (Decision.REVOKE, "done")):
            typed = decision_typed_data(
                chain_id=sh.w3.eth.chain_id,
                contract=sh.sharing.address,
                request_id=12,
                decision=decision,
                reason=reason,
                nonce=3,
                deadline=2**40,
            )
            message = encode_typed_data(full_message=typed)
            assert sh.sharing.functions.domainSeparator().call() == message.header
            digest = sh.sharing.functions.decisionDigest(12, decision, reason, 3, 2**40).call()
            assert digest == keccak(b"\x19" + message.version + message.header + message.body)
            signed = sh.sign_decision(key, 12, decision, reason, nonce=3, deadline=2**40)
            assert recover_signer(typed, "0x" + signed.signature.hex()) == signed.approver
