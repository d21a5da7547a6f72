"""The mirror's `sharing_approvals` rows against the chain's decision logs, and the audit of a block range.

A row is keyed as the indexer writes it, by (block number, log index). Each row is compared field by field with
the row the chain's log at that place makes (the indexer's `_decision` handler: request, approver, owner org,
decision, approvals after, nonce, reason, block time, tx hash, relaying sender); a row without a decision log
at its place is a forged approval, a log without a row a missing one. Logs after the mirror's checkpoint are
`not_indexed`, not missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.models import SharingApproval
from indexer.store import Store
from registry_api.audit.approval_chain import ChainFacts, fetch_logs
from registry_api.audit.approval_errors import BadBlockRange
from registry_api.audit.approval_prover import DecisionProver
from registry_api.audit.approval_signature import DecisionEvent
from registry_api.schemas.audit_approvals import (
    ApprovalAuditEntry,
    ApprovalsAudit,
    CheckValue,
    FieldDifference,
    MirrorCheck,
    MirrorStatus,
)

__all__ = ["COMPARED_FIELDS", "audit_approvals", "expected_rows"]

COMPARED_FIELDS = (
    "request_id",
    "approver",
    "owner_org_id",
    "decision",
    "approvals_after",
    "nonce",
    "reason",
    "block_time",
    "tx_hash",
    "sender",
)
Key = tuple[int, int]  # (block number, log index)


def expected_rows(
    prover: DecisionProver, events: Sequence[DecisionEvent], to_block: int
) -> dict[Key, dict[str, CheckValue]]:
    """The `sharing_approvals` row each decision log makes, as the indexer's handler writes it.

    A refusal or revocation records the request's approval count at that point: its earlier SharingApproved logs
    are counted (read from the deployment on, whatever range is audited).
    """
    prover.facts.load(blocks={e.block_number for e in events}, txs={e.tx_hash for e in events})
    closing = sorted({e.request_id for e in events if e.approvals is None})
    approvals: dict[int, list[Key]] = defaultdict(list)
    for event in prover.decisions(prover.deployment["deploy_block"], to_block, closing) if closing else []:
        if event.approvals is not None:
            approvals[event.request_id].append(event.position)
    rows: dict[Key, dict[str, CheckValue]] = {}
    for e in events:
        after = e.approvals
        if after is None:
            after = sum(1 for p in approvals[e.request_id] if p < e.position)
        rows[e.position] = {
            "request_id": e.request_id,
            "approver": e.approver,
            "owner_org_id": e.owner_org_id,
            "decision": e.decision,
            "approvals_after": after,
            "nonce": str(e.nonce),
            "reason": e.reason,
            "block_time": prover.facts.block_time(e.block_number),
            "tx_hash": e.tx_hash,
            "sender": prover.facts.sender(e.tx_hash),
        }
    return rows


def _differences(row: SharingApproval, expected: dict[str, CheckValue]) -> list[FieldDifference]:
    return [
        FieldDifference(field=name, mirror=getattr(row, name), chain=expected[name])
        for name in COMPARED_FIELDS
        if getattr(row, name) != expected[name]
    ]


def _mirror_rows(engine: Engine, from_block: int, to_block: int, request_id: int | None) -> dict[Key, SharingApproval]:
    query = select(SharingApproval).where(
        col(SharingApproval.block_number) >= from_block, col(SharingApproval.block_number) <= to_block
    )
    if request_id is not None:
        query = query.where(SharingApproval.request_id == request_id)
    with Session(engine) as session:
        return {(r.block_number, r.log_index): r for r in session.exec(query).all()}


def _logs_at(prover: DecisionProver, keys: Sequence[Key]) -> dict[Key, DecisionEvent]:
    """The decision logs of the blocks of `keys`, whatever their request (a row may name another request than
    its log)."""
    found: dict[Key, DecisionEvent] = {}
    for block in sorted({b for b, _ in keys}):
        raw: list[dict[str, Any]] = fetch_logs(prover.rpc, prover.contract, [prover.decision_topics], block, block)
        found.update({e.position: e for e in prover.decode_logs(raw)})
    return {k: found[k] for k in keys if k in found}


def audit_approvals(
    rpc: JsonRpcClient,
    deployment: Deployment,
    engine: Engine,
    *,
    request_id: int | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> ApprovalsAudit:
    """Every decision of `from_block..to_block` (default: the deployment to the chain head; `to_block` is capped at
    the head), or of one request, with its provenance and its mirror row compared; `limit`/`offset` page the
    proved decisions.

    The mirror is compared over the whole range (cheap: one log query, batched blocks and transactions); the
    provenance (more reads per decision) is computed for the page only.
    """
    head = rpc.block_number()
    start = deployment["deploy_block"] if from_block is None else from_block
    end = head if to_block is None else min(to_block, head)  # nothing is logged past the head
    if start > end:
        raise BadBlockRange(f"from_block {start} is after to_block {end} (the chain head is {head})")
    prover = DecisionProver(rpc, deployment, ChainFacts(rpc))
    events = prover.decisions(start, end, None if request_id is None else [request_id])
    checkpoint = Store(engine).checkpoint()
    indexed_to = checkpoint.block_number if checkpoint else -1
    rows = _mirror_rows(engine, start, end, request_id)
    expected = expected_rows(prover, events, end)

    by_key: dict[Key, DecisionEvent] = {e.position: e for e in events}
    unmatched = [k for k in rows if k not in by_key]
    if request_id is not None and unmatched:  # the row may sit on another request's log: compare with that one
        elsewhere = _logs_at(prover, unmatched)
        expected.update(expected_rows(prover, list(elsewhere.values()), end))
        by_key.update(elsewhere)

    entries: list[tuple[Key, MirrorCheck, DecisionEvent | None, SharingApproval | None]] = []
    for key, event in by_key.items():
        row = rows.get(key)
        status: MirrorStatus
        if row is not None:
            differences = _differences(row, expected[key])
            status = "differs" if differences else "match"
        elif key[0] > indexed_to:
            status, differences = "not_indexed", []
        else:
            status, differences = "missing", []
        check = MirrorCheck(
            status=status,
            row_id=row.id if row is not None else None,
            block_number=key[0],
            log_index=key[1],
            tx_hash=event.tx_hash,
            request_id=event.request_id,
            differences=differences,
        )
        entries.append((key, check, event, row))
    for key in rows.keys() - by_key.keys():
        row = rows[key]
        check = MirrorCheck(
            status="extra",
            row_id=row.id,
            block_number=key[0],
            log_index=key[1],
            tx_hash=row.tx_hash,
            request_id=row.request_id,
        )
        entries.append((key, check, None, row))
    entries.sort(key=lambda entry: entry[0])

    page = entries[offset : None if limit is None else offset + limit]
    proofs = iter(prover.prove([event for _, _, event, _ in page if event is not None]))
    data: list[ApprovalAuditEntry] = []
    for key, check, event, row in page:
        proof = next(proofs) if event is not None else None
        source: Any = event if event is not None else row
        data.append(
            ApprovalAuditEntry(
                block_number=key[0],
                log_index=key[1],
                tx_hash=check.tx_hash,
                decision=source.decision,
                request_id=source.request_id,
                approver=source.approver,
                mirror=check,
                provenance=proof,
                ok=check.ok and (proof is None or proof.verified),
            )
        )
    findings = [check for _, check, _, _ in entries if not check.ok]
    failed = sum(1 for entry in data if entry.provenance is not None and not entry.provenance.verified)
    return ApprovalsAudit(
        chain_id=prover.facts.chain_id,
        contract=prover.contract,
        from_block=start,
        to_block=end,
        request_id=request_id,
        mirror_checkpoint=checkpoint.block_number if checkpoint else None,
        decisions_on_chain=len(events),
        mirror_rows=len(rows),
        count=len(entries),
        limit=limit,
        offset=offset,
        mirror_findings=findings,
        failed_provenance=failed,
        verified=not findings and failed == 0,
        data=data,
    )
