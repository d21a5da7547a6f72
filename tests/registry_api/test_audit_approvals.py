"""Approval provenance against the real anvil, SQLite and PostgreSQL: each sharing decision's signer recovered from
its EIP-712 signature and shown to hold the owner org's APPROVER role at that block; the mirror's rows compared
with the logs, forged and edited rows reported exactly; the route, its error codes and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from sqlmodel import Session, select
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.eip712 import Decision, decision_typed_data, sign_typed_data
from chain_gateway.governance import contract, govern, role_id
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings, get_settings
from indexer.abi import DecodedLog, EventDecoder
from indexer.models import SharingApproval
from registry_api.audit.approval_roles import APPROVER_ROLE, MembershipHistory, Standing, standings_on_node
from registry_api.audit.approval_signature import (
    DECISION_EVENTS,
    DecisionCall,
    DecisionEvent,
    decision_digest,
    recover_signer,
    signature_checks,
)
from registry_api.audit.approvals import (
    DecisionNotFound,
    DecisionProver,
    NotADecision,
    audit_approvals,
    decision_provenance,
)
from registry_api.cli import app as cli
from registry_api.schemas.audit_approvals import DecisionProvenance
from tests.indexer.support import (
    REGISTRAR_ORG,
    open_indexer,
    relay_approval,
    relay_refusal,
    relay_revocation,
    request_sharing,
    sign_decision,
)
from tests.indexer.test_catalog_sharing import publish_conditional_entry
from tests.registry_api.audit_support import cli_env
from tests.registry_api.catalog_support import approver, create_entry, entry, request_grant, signed
from tests.registry_api.support import Api

SHARING = "SharingAgreements"
CHECKS = [
    "call",
    "request_id",
    "decision",
    "approver",
    "nonce",
    "reason_hash",
    "signature",
    "signer",
    "owner_org",
    "signer_org",
    "org_active",
    "approver_role",
    "node_state",
    "deadline",
    "nonce_sequence",
]


def decision_log(w3: Web3, chain: SeededConsortium, receipt: Any) -> tuple[str, int]:
    """(tx hash, log index) of the one sharing decision a receipt logged."""
    decoder = EventDecoder(chain.deployment, [SHARING])
    topics = {decoder.by_key[key].topic0 for key in DECISION_EVENTS}
    address = chain.deployment["contracts"][SHARING]["address"].lower()
    logs = [
        log
        for log in receipt["logs"]
        if log["address"].lower() == address and "0x" + bytes(log["topics"][0]).hex() in topics
    ]
    assert len(logs) == 1, logs
    return "0x" + bytes(receipt["transactionHash"]).hex(), int(logs[0]["logIndex"])


def decide(w3: Web3, chain: SeededConsortium) -> dict[str, Any]:
    """A grade-3 request granted by both BJ-PSB approvers then revoked by the second; another refused by the first."""
    entry_id = publish_conditional_entry(w3, chain, grade=3)
    granted = request_sharing(w3, chain, entry_id)
    first = relay_approval(w3, chain, granted, sign_decision(w3, chain, granted, 0))
    second = relay_approval(w3, chain, granted, sign_decision(w3, chain, granted, 1))
    refused = request_sharing(w3, chain, entry_id)
    reason = "用途不明确"
    refusal = relay_refusal(w3, chain, refused, sign_decision(w3, chain, refused, 0, Decision.REFUSE, reason), reason)
    revoked = "合同到期"
    revocation = relay_revocation(
        w3, chain, granted, sign_decision(w3, chain, granted, 1, Decision.REVOKE, revoked), revoked
    )
    return {"approve_1": first, "approve_2": second, "refuse": refusal, "revoke": revocation}


def failed(proof: DecisionProvenance) -> list[tuple[str, Any, Any]]:
    return [(c.name, c.expected, c.actual) for c in proof.checks if c.ok is not True]


# ---------------------------------------------------------------- one decision, from the chain


def test_genuine_approvals_refusal_and_revocation_verify(chain: SeededConsortium, w3: Web3, anvil: AnvilNode) -> None:
    receipts = decide(w3, chain)
    approvers = [a for a, _ in chain.orgs[REGISTRAR_ORG].approvers]
    sharing = contract(w3, chain.deployment, SHARING)
    with JsonRpcClient([anvil.url]) as rpc:
        proofs = {
            name: decision_provenance(rpc, chain.deployment, *decision_log(w3, chain, receipt))
            for name, receipt in receipts.items()
        }

    assert [(p.decision, p.signer, p.nonce, p.reason) for p in proofs.values()] == [
        ("approve", approvers[0], "0", ""),
        ("approve", approvers[1], "0", ""),
        ("refuse", approvers[0], "1", "用途不明确"),
        ("revoke", approvers[1], "1", "合同到期"),
    ]
    relayer = Account.from_key(chain.deployer_key).address
    for name, proof in proofs.items():
        assert [c.name for c in proof.checks] == CHECKS
        assert failed(proof) == [], name
        assert proof.verified and proof.call_path == "direct" and proof.relayer == relayer
        assert proof.signer == proof.approver
        # the digest rebuilt off-chain is the one the contract computes for the same fields at that block
        on_chain = sharing.functions.decisionDigest(
            proof.request_id, int(Decision[proof.decision.upper()]), proof.reason, int(proof.nonce), proof.deadline
        ).call(block_identifier=proof.block_number)
        assert proof.digest == "0x" + bytes(on_chain).hex()
        assert proof.block_time == w3.eth.get_block(proof.block_number)["timestamp"]
        assert proof.block_time <= proof.deadline
    owner = int(contract(w3, chain.deployment, "Consortium").functions.orgOf(approvers[0]).call())
    assert {p.owner_org_id for p in proofs.values()} == {owner}
    standing = {c.name: c.actual for c in proofs["revoke"].checks}
    assert (standing["signer_org"], standing["org_active"], standing["approver_role"]) == (owner, True, True)


def test_approver_whose_role_is_revoked_after_approving_still_verifies(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode
) -> None:
    entry_id = publish_conditional_entry(w3, chain, grade=3)
    request_id = request_sharing(w3, chain, entry_id)
    approval = relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 0))
    first = chain.orgs[REGISTRAR_ORG].approvers[0][0]
    consortium = contract(w3, chain.deployment, "Consortium")
    govern(w3, chain.deployment, chain.admin_keys(), [("Consortium", "revokeRole", [role_id("APPROVER"), first])], "r")
    assert not consortium.functions.hasRole(role_id("APPROVER"), first).call()

    with JsonRpcClient([anvil.url]) as rpc:
        proof = decision_provenance(rpc, chain.deployment, *decision_log(w3, chain, approval))
    assert proof.verified and failed(proof) == []
    checks = {c.name: c for c in proof.checks}
    assert checks["approver_role"].actual is True  # the role at that block, not now
    assert checks["node_state"].ok and "holds APPROVER" in str(checks["node_state"].actual)
    assert consortium.functions.hasRole(role_id("APPROVER"), first).call(block_identifier=proof.block_number)


def test_approval_relayed_through_a_consortium_proposal_is_found_inside_the_transaction(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode
) -> None:
    entry_id = publish_conditional_entry(w3, chain, grade=3)
    request_id = request_sharing(w3, chain, entry_id)
    start = w3.eth.block_number
    s = sign_decision(w3, chain, request_id, 1)
    call = (SHARING, "approve", [request_id, s.approver, s.nonce, s.deadline, s.signature])
    govern(w3, chain.deployment, chain.admin_keys(), [call], "relay an approval through the consortium")

    with JsonRpcClient([anvil.url]) as rpc:
        prover = DecisionProver(rpc, chain.deployment)
        events = prover.decisions(start, w3.eth.block_number, [request_id])
        [proof] = prover.prove(events)
    assert proof.call_path == "internal" and proof.verified and failed(proof) == []
    assert proof.signer == s.approver
    assert proof.relayer in {Account.from_key(k).address for k in chain.admin_keys()}


def test_unknown_transactions_logs_and_other_events_are_not_decisions(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode
) -> None:
    publish_conditional_entry(w3, chain, grade=3)  # a DataCatalog transaction: its logs are no decisions
    catalog_tx = "0x" + bytes(w3.eth.get_block("latest")["transactions"][0]).hex()
    with JsonRpcClient([anvil.url]) as rpc:
        with pytest.raises(DecisionNotFound, match="no transaction"):
            decision_provenance(rpc, chain.deployment, "0x" + "ab" * 32, 0)
        with pytest.raises(DecisionNotFound, match="has no log 99"):
            decision_provenance(rpc, chain.deployment, catalog_tx, 99)
        with pytest.raises(NotADecision, match="not a sharing decision"):
            decision_provenance(rpc, chain.deployment, catalog_tx, 0)


# ---------------------------------------------------------------- signatures, unit level

CHAIN_ID = 31_337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = "0x" + keccak(text="approver under test").hex()
APPROVER = Account.from_key(KEY).address


def _event(request_id: int = 7, nonce: int = 3, decision: str = "approve", reason: str = "") -> DecisionEvent:
    return DecisionEvent(
        event="SharingApproved",
        decision=decision,
        request_id=request_id,
        approver=APPROVER,
        owner_org_id=2,
        nonce=nonce,
        reason=reason,
        approvals=1,
        block_number=10,
        block_hash="0x" + "00" * 32,
        tx_hash="0x" + "11" * 32,
        log_index=0,
    )


def _signed_call(signed_request: int, called_request: int = 7, nonce: int = 3) -> DecisionCall:
    """An approve call for `called_request` carrying a signature over `signed_request`."""
    typed = decision_typed_data(
        chain_id=CHAIN_ID,
        contract=CONTRACT,
        request_id=signed_request,
        decision=Decision.APPROVE,
        reason="",
        nonce=nonce,
        deadline=2_000_000_000,
    )
    signature = bytes.fromhex(sign_typed_data(KEY, typed)[2:])
    return DecisionCall("approve", called_request, "", APPROVER, nonce, 2_000_000_000, signature)


def test_rebuilt_digest_is_the_eip712_hash_wallets_sign() -> None:
    call = _signed_call(7)
    typed = decision_typed_data(
        chain_id=CHAIN_ID, contract=CONTRACT, request_id=7, decision=Decision.APPROVE, reason="", nonce=3,
        deadline=2_000_000_000,
    )  # fmt: skip
    message = encode_typed_data(full_message=typed)
    assert decision_digest(CHAIN_ID, CONTRACT, call) == keccak(
        b"\x19" + message.version + message.header + message.body
    )
    findings = signature_checks(_event(), call, CHAIN_ID, CONTRACT)
    assert findings.signer == APPROVER and all(c.ok for c in findings.checks)


def test_signature_over_other_fields_recovers_another_signer_and_fails() -> None:
    findings = signature_checks(_event(request_id=7), _signed_call(signed_request=8), CHAIN_ID, CONTRACT)
    checks = {c.name: c for c in findings.checks}
    assert checks["request_id"].ok  # the call names the logged request...
    assert checks["signature"].ok  # ...with a well-formed signature...
    assert not checks["signer"].ok  # ...made over another request: someone else "signed" this one
    assert checks["signer"].expected == APPROVER and checks["signer"].actual not in (None, APPROVER)
    # a signature in another domain (another chain) does not recover the approver either
    assert signature_checks(_event(), _signed_call(7), CHAIN_ID + 1, CONTRACT).signer != APPROVER


def test_call_fields_that_differ_from_the_event_fail_their_checks() -> None:
    checks = {
        c.name: c for c in signature_checks(_event(nonce=4, reason="x"), _signed_call(7), CHAIN_ID, CONTRACT).checks
    }
    assert (checks["nonce"].ok, checks["nonce"].expected, checks["nonce"].actual) == (False, "4", "3")
    assert not checks["reason_hash"].ok and checks["reason_hash"].actual == "0x" + keccak(text="").hex()
    assert checks["signer"].ok  # the signature itself is the approver's, over what the call says


def test_malleable_and_malformed_signatures_are_refused_as_the_contract_refuses_them() -> None:
    call = _signed_call(7)
    digest = decision_digest(CHAIN_ID, CONTRACT, call)
    sig = call.signature
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig[:32] + (order - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
    assert recover_signer(digest, sig) == (APPROVER, "")
    assert recover_signer(digest, high_s)[0] is None and "upper half" in recover_signer(digest, high_s)[1]
    assert recover_signer(digest, sig[:64])[0] is None
    assert recover_signer(digest, sig[:64] + b"\x01")[1] == "v is 1, not 27 or 28"
    bad = DecisionCall("approve", 7, "", APPROVER, 3, 2_000_000_000, high_s)
    checks = {c.name: c for c in signature_checks(_event(), bad, CHAIN_ID, CONTRACT).checks}
    assert checks["signature"].ok is False and checks["signer"].ok is False


def _consortium_log(event: str, position: tuple[int, int], **args: Any) -> DecodedLog:
    return DecodedLog(f"Consortium:{event}", args, position[0], "0x" + "00" * 32, "0x" + "22" * 32, position[1])


def test_standing_is_replayed_to_the_exact_log_position() -> None:
    account, org = APPROVER, 3
    history = MembershipHistory(
        [
            _consortium_log("MemberAdmitted", (5, 0), orgId=org, code="BJ-X", name="x", kind=1),
            _consortium_log("AccountAdded", (5, 1), account=account, orgId=org),
            _consortium_log("RoleGranted", (5, 2), role=APPROVER_ROLE, account=account, sender=CONTRACT),
            _consortium_log(
                "RoleGranted", (6, 0), role="0x" + keccak(text="ADMIN").hex(), account=account, sender=CONTRACT
            ),
            _consortium_log("MemberStatusChanged", (7, 4), orgId=org, code="BJ-X", active=False),
            _consortium_log("MemberStatusChanged", (8, 0), orgId=org, code="BJ-X", active=True),
            _consortium_log("RoleRevoked", (8, 3), role=APPROVER_ROLE, account=account, sender=CONTRACT),
        ]
    )
    assert history.standing(account, (5, 1)) == Standing(0, False, False)  # before it joined
    assert history.standing(account, (5, 3)) == Standing(org, True, True)
    assert history.standing(account, (7, 4)) == Standing(org, True, True)  # the suspension is this very log
    assert history.standing(account, (7, 5)) == Standing(org, False, True)
    assert history.standing(account, (8, 3)) == Standing(org, True, True)  # revoked by the log at (8, 3) itself
    assert history.standing(account, (8, 4)) == Standing(org, True, False)
    assert Standing(org, False, True).describe() == "org 3 (suspended), holds APPROVER"
    with pytest.raises(ValueError, match="runs to block 8"):
        history.standing(account, (10, 0))


def test_node_without_the_state_of_a_block_leaves_the_cross_check_unchecked(
    chain: SeededConsortium, anvil: AnvilNode
) -> None:
    approver_account = chain.orgs[REGISTRAR_ORG].approvers[0][0]
    with JsonRpcClient([anvil.url]) as rpc:
        head = rpc.block_number()
        now, beyond = standings_on_node(
            rpc, chain.deployment, [(approver_account, head), (approver_account, head + 10)]
        )
    assert now.standing is not None and now.standing.has_role and now.standing.org_active
    assert beyond.standing is None and f"no state at block {head + 10}" in beyond.problem


# ---------------------------------------------------------------- the mirror


def test_untampered_mirror_verifies_and_edited_forged_and_missing_rows_are_reported(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    receipts = decide(w3, chain)
    approvers = [a for a, _ in chain.orgs[REGISTRAR_ORG].approvers]
    places = {name: decision_log(w3, chain, r) for name, r in receipts.items()}
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer, JsonRpcClient([anvil.url]) as rpc:
        indexer.sync_once()
        clean = audit_approvals(rpc, chain.deployment, indexer.engine)
        assert clean.verified and clean.mirror_findings == [] and clean.count == clean.decisions_on_chain == 4
        assert [(e.tx_hash, e.log_index) for e in clean.data] == list(places.values())
        assert all(e.mirror.status == "match" and e.provenance and e.provenance.verified for e in clean.data)

        block = {name: r["blockNumber"] for name, r in receipts.items()}
        at = {name: (block[name], places[name][1]) for name in receipts}
        with Session(indexer.engine) as session:
            rows = {(r.block_number, r.log_index): r for r in session.exec(select(SharingApproval)).all()}
            edited = rows[at["approve_1"]]
            edited.approver = approvers[1]  # the first approval claimed for the other approver
            renamed = rows[at["approve_2"]]
            renamed.decision = "refuse"
            session.delete(rows[at["refuse"]])
            forged = SharingApproval(  # an approval no transaction ever logged, in a block with no decision
                request_id=edited.request_id,
                approver=approvers[1],
                owner_org_id=edited.owner_org_id,
                decision="approve",
                approvals_after=2,
                nonce="5",
                reason="",
                block_number=block["approve_1"] - 1,
                block_time=edited.block_time,
                tx_hash="0x" + "ee" * 32,
                log_index=0,
            )
            session.add(forged)
            session.commit()
            edited_id, renamed_id, forged_id = edited.id, renamed.id, forged.id
            granted, refused = edited.request_id, edited.request_id + 1

        audit = audit_approvals(rpc, chain.deployment, indexer.engine)
        assert not audit.verified and audit.failed_provenance == 0  # the chain is untouched: only the mirror lies
        assert [
            (f.status, f.row_id, f.block_number, f.log_index, [(d.field, d.mirror, d.chain) for d in f.differences])
            for f in audit.mirror_findings
        ] == [
            ("extra", forged_id, block["approve_1"] - 1, 0, []),
            ("differs", edited_id, *at["approve_1"], [("approver", approvers[1], approvers[0])]),
            ("differs", renamed_id, *at["approve_2"], [("decision", "refuse", "approve")]),
            ("missing", None, *at["refuse"], []),
        ]  # fmt: skip
        assert audit.count == 5 and [e.ok for e in audit.data] == [False, False, False, False, True]
        assert audit.data[0].provenance is None and audit.data[0].tx_hash == "0x" + "ee" * 32

        # one page: the decisions of the page are proved, the findings cover the whole range
        page = audit_approvals(rpc, chain.deployment, indexer.engine, limit=2, offset=3)
        assert [(e.mirror.status, e.decision) for e in page.data] == [("missing", "refuse"), ("match", "revoke")]
        assert len(page.mirror_findings) == 4 and page.count == 5

        # one request: a row moved onto it from another request's log is compared with that log
        with Session(indexer.engine) as session:
            moved = session.get(SharingApproval, renamed_id)
            assert moved is not None and moved.request_id == granted
            moved.request_id = refused
            session.commit()
        one = audit_approvals(rpc, chain.deployment, indexer.engine, request_id=refused)
        assert [(f.status, f.row_id, sorted(d.field for d in f.differences)) for f in one.mirror_findings] == [
            ("differs", renamed_id, ["decision", "request_id"]),
            ("missing", None, []),
        ]


def test_logs_past_the_mirror_checkpoint_are_not_indexed_rather_than_missing(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str
) -> None:
    entry_id = publish_conditional_entry(w3, chain, grade=3)
    request_id = request_sharing(w3, chain, entry_id)
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer, JsonRpcClient([anvil.url]) as rpc:
        indexer.sync_once()
        relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 0))
        audit = audit_approvals(rpc, chain.deployment, indexer.engine, request_id=request_id)
    assert audit.verified and [e.mirror.status for e in audit.data] == ["not_indexed"]
    assert audit.mirror_checkpoint is not None and audit.data[0].block_number > audit.mirror_checkpoint


# ---------------------------------------------------------------- the API and the CLI


def _relay(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(path, body)
    assert answer.status_code == 202, answer.text
    op = api.settle(answer.json()["operation_id"])
    assert op["status"] == "confirmed", op
    return op


def test_gateway_relayed_approvals_verify_through_the_api_and_the_cli(
    api: Api, api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry_id = create_entry(api, entry())
    request_id = request_grant(api, entry_id)
    path = f"/v1/sharing-requests/{request_id}/approvals"
    ops = [_relay(api, path, signed(api, request_id, approver(api, index=i))) for i in (0, 1)]

    answer = api.get("/v1/audit/approvals", "BJ-CMC", params={"request_id": request_id})
    assert answer.status_code == 200, answer.text
    audit = answer.json()
    assert audit["verified"] and audit["count"] == 2 and audit["mirror_findings"] == []
    assert [e["tx_hash"] for e in audit["data"]] == [op["tx_hash"] for op in ops]
    for e in audit["data"]:
        assert e["provenance"]["call_path"] == "direct" and e["provenance"]["verified"]
        assert e["provenance"]["relayer"] == api.chain.orgs["BJ-PSB"].account  # the gateway relayed, it did not sign
    first = audit["data"][0]
    one = api.get(f"/v1/audit/approvals/{first['tx_hash']}/{first['log_index']}", "AU-BJ")
    assert one.status_code == 200 and one.json()["verified"] and one.json()["signer"] == approver(api, index=0)[0]
    paged = api.get("/v1/audit/approvals", params={"request_id": request_id, "limit": 1, "offset": 1}).json()
    assert [e["tx_hash"] for e in paged["data"]] == [ops[1]["tx_hash"]] and paged["count"] == 2
    far = api.get("/v1/audit/approvals", params={"request_id": request_id, "to_block": 10**12}).json()
    assert far["count"] == 2 and far["to_block"] == api.w3.eth.block_number  # capped at the head

    runner = CliRunner()
    env = cli_env(api_settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        shown = runner.invoke(cli, ["audit", "approvals", "--request", str(request_id), "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["verified"] and json.loads(shown.output)["count"] == 2
        single = runner.invoke(cli, ["audit", "approval", first["tx_hash"], str(first["log_index"])])
        assert single.exit_code == 0 and "VERIFIED" in single.output, single.output

        with Session(api.app.state.engine) as session:  # a forged approval in the mirror
            row = session.exec(select(SharingApproval).where(SharingApproval.tx_hash == ops[1]["tx_hash"])).one()
            row.approver = approver(api, "BJ-CMC", 0)[0]
            session.commit()
            row_id = row.id
        table = runner.invoke(cli, ["audit", "approvals", "--request", str(request_id)])
        assert table.exit_code == 1 and "FAILED" in table.output, table.output
        assert "differs" in table.output and "approver:" in table.output
        tampered = api.get("/v1/audit/approvals", params={"request_id": request_id}).json()
        assert not tampered["verified"]
        assert [(f["status"], f["row_id"]) for f in tampered["mirror_findings"]] == [("differs", row_id)]
        bad = runner.invoke(cli, ["audit", "approval", "0x12", "0"])
        assert bad.exit_code == 2
        unknown = runner.invoke(cli, ["audit", "approval", "0x" + "ab" * 32, "0"])
        assert unknown.exit_code == 2 and "no transaction" in unknown.output
    finally:
        get_settings.cache_clear()


def test_bad_audit_requests_answer_stable_codes(api: Api) -> None:
    bad_hash = api.get("/v1/audit/approvals/0x1234/0")
    assert (bad_hash.status_code, bad_hash.json()["code"], bad_hash.json()["field"]) == (
        422,
        "VALIDATION_ERROR",
        "tx_hash",
    )
    negative = api.get(f"/v1/audit/approvals/0x{'ab' * 32}/-1")
    assert (negative.status_code, negative.json()["field"]) == (422, "log_index")
    unknown = api.get(f"/v1/audit/approvals/0x{'ab' * 32}/0")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "DECISION_NOT_FOUND")
    entry_id = create_entry(api, entry())
    request = api.get(f"/v1/sharing-requests/{request_grant(api, entry_id)}", "BJ-CMC").json()
    other = api.get(f"/v1/audit/approvals/{request['tx_hash']}/0")
    assert (other.status_code, other.json()["code"]) == (404, "NOT_A_DECISION")
    backwards = api.get("/v1/audit/approvals", params={"from_block": 9, "to_block": 3})
    assert (backwards.status_code, backwards.json()["code"], backwards.json()["field"]) == (
        422,
        "BAD_BLOCK_RANGE",
        "from_block",
    )
    future = api.get("/v1/audit/approvals", params={"from_block": 10**9})
    assert (future.status_code, future.json()["code"]) == (422, "BAD_BLOCK_RANGE")
    no_request = api.get("/v1/audit/approvals", params={"request_id": 0})
    assert (no_request.status_code, no_request.json()["field"]) == (422, "request_id")
    assert api.client.get("/v1/audit/approvals").status_code == 401
