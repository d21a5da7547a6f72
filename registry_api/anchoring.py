"""Anchoring usage receipts on-chain: a Merkle root per batch, through the gateway's outbox, exactly once.

A run (`ReceiptAnchorer.run_once`, every `receipt_anchor_interval_seconds` on the API's APScheduler, or
`dirchain zone anchor`) does, with the anchoring lock row held so that two runners never interleave:

1. follow the batch in flight, if any: its operation confirmed -> `anchored`; failed -> `failed` (its receipts
   are taken again by the next batch); still on its way -> stop (one batch in flight: the contract wants
   `firstReceipt` = the last anchored id + 1, which only holds once the previous batch is on-chain);
2. take the receipts after the last anchored (or queued) one, in id order, at most `batch_max`; the mirror's
   `receipt_batches` of the operator org count too, should the chain know of more than this database;
3. record the batch (range, root, a fresh idempotency key) and commit, BEFORE queueing it.

Then, outside the lock, `SharingAgreements.anchorReceipts(root, first, last)` is queued with that key, signed
by a RELAYER account of the zone operator org, and the operation id stored. A crash after step 3 leaves a
recorded batch without operation: the next run queues it with the same key, which the outbox answers with the
operation it may already hold, never a second one. Receipt ids are gapless and committed in order
(`registry_api.receipts`), so "after the last anchored id" never skips a receipt, and the contract refuses
any range that does not start right after the last anchored one, so none is anchored twice.
"""

from __future__ import annotations

import bisect
import logging
import time
import uuid
from dataclasses import dataclass

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from chain_gateway.errors import ContractRevert, GatewayConfigError, GatewayRPCError
from chain_gateway.gateway import Gateway
from chain_gateway.outbox import CONFIRMED, FAILED, Operation
from indexer.models import Account, AccountRole, Member, ReceiptBatch
from registry_api.models import ReceiptAnchor, UsageReceipt
from registry_api.receipts import MerkleTree, leaf_hash, lock_anchoring, tree_for_range

__all__ = [
    "ANCHOR_JOB_ID",
    "AnchorResult",
    "AnchoringError",
    "ReceiptAnchorer",
    "ReceiptInclusion",
    "receipt_inclusion",
]

log = logging.getLogger(__name__)

ANCHOR_JOB_ID = "dirchain-receipt-anchoring"
CONTRACT = "SharingAgreements"
RECORDED, QUEUED, ANCHORED, FAILED_ANCHOR = "recorded", "queued", "anchored", "failed"


class AnchoringError(Exception):
    """The zone operator cannot anchor: no member org by that code, or no RELAYER account with a key here."""


@dataclass(frozen=True)
class AnchorResult:
    """What a run did with one batch: `status` recorded | queued | anchored | failed, and why (`note`)."""

    anchor_id: int
    first_receipt: int
    last_receipt: int
    merkle_root: str
    operation_id: str | None
    status: str
    note: str


def _result(anchor: ReceiptAnchor, note: str) -> AnchorResult:
    return AnchorResult(
        int(anchor.anchor_id or 0),
        anchor.first_receipt,
        anchor.last_receipt,
        anchor.merkle_root,
        anchor.operation_id,
        anchor.status,
        note,
    )


class ReceiptAnchorer:
    """Anchors the usage receipts of this database as the zone operator org (see the module docstring)."""

    def __init__(self, engine: Engine, gateway: Gateway, operator_org: str, batch_max: int = 10_000) -> None:
        self.engine = engine
        self.gateway = gateway
        self.operator_org = operator_org
        self.batch_max = batch_max

    # ------------------------------------------------------------ one run

    def run_once(self) -> AnchorResult | None:
        """Follow the batch in flight or start the next one; None when there is nothing to do."""
        with Session(self.engine, expire_on_commit=False) as session:
            lock_anchoring(session.connection())
            anchor, note = self._next(session)
            session.commit()
        if anchor is None or anchor.status != RECORDED:
            return None if anchor is None else _result(anchor, note)
        return self._queue(anchor)

    def _next(self, session: Session) -> tuple[ReceiptAnchor | None, str]:
        pending = session.exec(
            select(ReceiptAnchor)
            .where(col(ReceiptAnchor.status).in_((RECORDED, QUEUED)))
            .order_by(col(ReceiptAnchor.anchor_id).desc())
        ).first()
        if pending is not None:
            if pending.status == RECORDED:
                return pending, "recorded earlier, not queued yet"
            op = session.get(Operation, pending.operation_id) if pending.operation_id else None
            if op is None or op.status not in (CONFIRMED, FAILED):
                return pending, f"operation {pending.operation_id} is {op.status if op else 'unknown'}"
            pending.status = ANCHORED if op.status == CONFIRMED else FAILED_ANCHOR
            pending.error = None if op.status == CONFIRMED else f"{op.error_code}: {op.error_message or ''}".strip()
            pending.updated_at = time.time()
            session.add(pending)
            if pending.status == FAILED_ANCHOR:
                log.error(
                    "anchoring receipts %d..%d failed: %s", pending.first_receipt, pending.last_receipt, pending.error
                )
        first = self._first_unanchored(session)
        rows = session.exec(
            select(UsageReceipt.receipt_id, UsageReceipt.receipt_hash)  # type: ignore[call-overload]
            .where(col(UsageReceipt.receipt_id) >= first)
            .order_by(col(UsageReceipt.receipt_id))
            .limit(self.batch_max)
        ).all()
        if not rows:
            return (pending, "anchored; no receipts since") if pending is not None else (None, "")
        last = int(rows[-1][0])
        tree = MerkleTree([leaf_hash(int(r[0]), r[1]) for r in rows])
        anchor = ReceiptAnchor(
            first_receipt=first,
            last_receipt=last,
            merkle_root=tree.root,
            idempotency_key=f"receipt-anchor:{uuid.uuid4().hex}",
        )
        session.add(anchor)
        session.flush()
        return anchor, f"{len(rows)} receipts recorded"

    def _first_unanchored(self, session: Session) -> int:
        local = session.exec(
            select(func.max(ReceiptAnchor.last_receipt)).where(col(ReceiptAnchor.status).in_((QUEUED, ANCHORED)))
        ).one()
        on_chain = session.exec(
            select(func.max(ReceiptBatch.last_receipt))
            .join(Member, col(Member.org_id) == col(ReceiptBatch.relayer_org_id))
            .where(Member.code == self.operator_org)
        ).one()
        return max(int(local or 0), int(on_chain or 0)) + 1

    def _queue(self, anchor: ReceiptAnchor) -> AnchorResult:
        """Queue the recorded batch with its own idempotency key, then store the operation (or the refusal)."""
        account = self.relayer_account()
        try:
            op = self.gateway.enqueue(
                org_code=self.operator_org,
                account=account,
                contract=CONTRACT,
                function="anchorReceipts",
                args=[anchor.merkle_root, anchor.first_receipt, anchor.last_receipt],
                idempotency_key=anchor.idempotency_key,
            )
        except ContractRevert as exc:  # refused by the simulation: take the receipts again next time
            anchor.status, anchor.error = FAILED_ANCHOR, f"{exc.name}: {exc.args_dict}"
            log.error("anchoring receipts %d..%d refused: %s", anchor.first_receipt, anchor.last_receipt, anchor.error)
        else:
            anchor.status, anchor.operation_id = QUEUED, op.id
        anchor.updated_at = time.time()
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(anchor)
            session.commit()
        return _result(anchor, "queued" if anchor.status == QUEUED else "refused by the contract")

    def relayer_account(self) -> str:
        """A RELAYER account of the operator org (as mirrored) whose key this gateway holds."""
        with Session(self.engine) as session:
            accounts = session.exec(
                select(Account.address)
                .join(Member, col(Member.org_id) == col(Account.org_id))
                .join(AccountRole, col(AccountRole.address) == col(Account.address))
                .where(Member.code == self.operator_org, AccountRole.role == "RELAYER")
                .order_by(col(Account.address))
            ).all()
        for address in accounts:
            if self.gateway.keystore.has(address):
                return address
        raise AnchoringError(
            f"no RELAYER account of {self.operator_org} with a key in the gateway's keystore "
            f"(mirrored RELAYER accounts: {', '.join(accounts) or 'none'})"
        )

    # ------------------------------------------------------------ scheduling

    def schedule(self, scheduler: BaseScheduler, interval_seconds: float) -> None:
        """Run `run_once` every `interval_seconds` (one at a time, missed runs coalesced); errors are logged."""

        def job() -> None:
            try:
                result = self.run_once()
            except (GatewayRPCError, GatewayConfigError, AnchoringError) as exc:
                log.warning("receipt anchoring skipped, retrying next interval: %s", exc)
                return
            if result is not None:
                log.info(
                    "receipts %d..%d: %s (%s)", result.first_receipt, result.last_receipt, result.status, result.note
                )

        scheduler.add_job(
            job,
            "interval",
            seconds=interval_seconds,
            id=ANCHOR_JOB_ID,
            max_instances=1,
            coalesce=True,
            replace_existing=True,  # the first run after one interval, not while the API is still starting
        )


# ---------------------------------------------------------------- a receipt and its proof


@dataclass(frozen=True)
class ReceiptInclusion:
    """A receipt, and once its batch is on-chain (as mirrored) the batch, root and Merkle proof."""

    receipt: UsageReceipt
    batch: ReceiptBatch | None
    proof: list[str] | None
    local_root: str | None  # the root this database computes for the batch's range
    pending: ReceiptAnchor | None  # the local batch on its way, before it is mirrored


def receipt_inclusion(session: Session, receipt_id: int, operator_org: str) -> ReceiptInclusion | None:
    """The receipt `receipt_id` with its inclusion proof in the mirrored batch that anchors it (None: no receipt)."""
    receipt = session.get(UsageReceipt, receipt_id)
    if receipt is None:
        return None
    batch = session.exec(
        select(ReceiptBatch)
        .join(Member, col(Member.org_id) == col(ReceiptBatch.relayer_org_id))
        .where(
            Member.code == operator_org,
            col(ReceiptBatch.first_receipt) <= receipt_id,
            col(ReceiptBatch.last_receipt) >= receipt_id,
        )
    ).first()
    if batch is None:
        pending = session.exec(
            select(ReceiptAnchor).where(
                col(ReceiptAnchor.first_receipt) <= receipt_id,
                col(ReceiptAnchor.last_receipt) >= receipt_id,
                col(ReceiptAnchor.status).in_((RECORDED, QUEUED, ANCHORED)),
            )
        ).first()
        return ReceiptInclusion(receipt, None, None, None, pending)
    built = tree_for_range(session, batch.first_receipt, batch.last_receipt)
    if built is None:
        return ReceiptInclusion(receipt, batch, None, None, None)
    ids, tree = built
    return ReceiptInclusion(receipt, batch, tree.proof(bisect.bisect_left(ids, receipt_id)), tree.root, None)
