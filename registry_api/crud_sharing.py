"""Reads of the sharing mirror (requests, signed decisions, grants) and the two chain reads a decision needs.

A sharing request is visible to its requester org, the entry's owner org and auditors (AUDITOR role); to
anyone else it does not exist. Whether a grant has expired is judged by the time of the latest mirrored
block (the chain's clock, which tests and consortium chains may move differently from the wall clock).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from sqlalchemy import desc, func, or_
from sqlmodel import Session, col, select

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from indexer.models import (
    Account,
    AccountRole,
    CatalogEntry,
    CatalogEntryVersion,
    IndexerCheckpoint,
    Member,
    SharingApproval,
    SharingRequest,
)
from registry_api.auth import Principal
from registry_api.crud_catalog import org_codes
from registry_api.encoding import from_unix
from registry_api.schemas.sharing import SECONDS_PER_DAY, DecisionPublic, GrantPublic, SharingRequestPublic

__all__ = [
    "ChainClock",
    "RequestFilter",
    "approver_nonce",
    "can_see",
    "get_request",
    "has_approved",
    "is_owner_approver",
    "latest_block_time",
    "list_requests",
]

_NONCES_SELECTOR = function_signature_to_4byte_selector("nonces(address)")
REQUEST_STATUSES = ("pending", "granted", "refused", "revoked", "active", "expired")


# ---------------------------------------------------------------- chain time and nonces


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class ChainClock:
    """The time of the latest mirrored block: the checkpoint's block, its timestamp fetched once per block hash.

    The indexer's checkpoint holds the block's number and hash but not its time, so the first read after each
    new checkpoint asks the node once (eth_getBlockByHash); every other read is SQL and a dictionary lookup.
    If the node cannot be reached, the newest block time the mirror holds stands in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[str, int] = {}

    def now(self, session: Session, rpc: JsonRpcClient) -> int | None:
        checkpoint = session.exec(select(IndexerCheckpoint).order_by(desc(col(IndexerCheckpoint.block_number)))).first()
        if checkpoint is None:
            return None
        stored = getattr(checkpoint, "block_time", None)
        if stored:
            return int(stored)
        return self.block_time(session, rpc, checkpoint.block_hash)

    def block_time(self, session: Session, rpc: JsonRpcClient, block_hash: str) -> int | None:
        """The time of the mirrored block `block_hash` (asked of the node once per hash)."""
        with self._lock:
            known = self._by_hash.get(block_hash)
        if known is not None:
            return known
        try:
            block = rpc.call("eth_getBlockByHash", [block_hash, False])
        except (GatewayRPCError, RpcErrorAnswer):
            block = None
        if block is None:  # unreachable node, or the block was reorganised away before the indexer noticed
            return _newest_mirrored_time(session)
        seconds = _int(block["timestamp"])
        with self._lock:
            if len(self._by_hash) > 1_024:
                self._by_hash.clear()
            self._by_hash[block_hash] = seconds
        return seconds


def _newest_mirrored_time(session: Session) -> int | None:
    times = [
        session.exec(select(func.max(SharingApproval.block_time))).one(),
        session.exec(select(func.max(CatalogEntryVersion.block_time))).one(),
    ]
    known = [int(t) for t in times if t is not None]
    return max(known) if known else None


def latest_block_time(rpc: JsonRpcClient) -> int:
    """The chain's latest block time (for a signature deadline: a write-preparation read, not a mirror read)."""
    block = rpc.get_block("latest")
    if block is None:
        raise GatewayRPCError("the node returned no latest block", retryable=True)
    return _int(block["timestamp"])


def approver_nonce(rpc: JsonRpcClient, contract: str, approver: str) -> int:
    """SharingAgreements.nonces(approver) at the latest block: the nonce the approver's next signature must carry."""
    data = "0x" + (_NONCES_SELECTOR + abi_encode(["address"], [to_checksum_address(approver)])).hex()
    result = rpc.call("eth_call", [{"to": contract, "data": data}, "latest"])
    return _int(result)


# ---------------------------------------------------------------- visibility and roles


def can_see(principal: Principal, request: SharingRequest) -> bool:
    return principal.org_id in (request.requester_org_id, request.owner_org_id) or principal.has_role("AUDITOR")


def is_owner_approver(session: Session, approver: str, owner_org_id: int) -> bool:
    """True if `approver` is an account of the owner org holding APPROVER (as mirrored)."""
    account = session.get(Account, approver)
    if account is None or account.org_id != owner_org_id:
        return False
    return session.get(AccountRole, (approver, "APPROVER")) is not None


def has_approved(session: Session, request_id: int, approver: str) -> bool:
    found = session.exec(
        select(SharingApproval.id).where(
            SharingApproval.request_id == request_id,
            SharingApproval.approver == approver,
            SharingApproval.decision == "approve",
        )
    ).first()
    return found is not None


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestFilter:
    status: str | None = None  # pending | granted | refused | revoked | active | expired
    entry_id: int | None = None
    requester: str | None = None  # org code
    owner: str | None = None  # org code
    pending_for: int | None = None  # owner org id: pending requests awaiting its approvers
    grants_only: bool = False  # requests that were granted at some point


def _visible(query: Any, principal: Principal) -> Any:
    if principal.has_role("AUDITOR"):
        return query
    org = principal.org_id if principal.org_id is not None else -1
    return query.where(or_(col(SharingRequest.requester_org_id) == org, col(SharingRequest.owner_org_id) == org))


def _where(query: Any, f: RequestFilter, now: int | None, session: Session) -> Any:
    clock = now if now is not None else 0
    if f.status in ("pending", "granted", "refused", "revoked"):
        query = query.where(SharingRequest.status == f.status)
    elif f.status == "active":
        query = query.where(SharingRequest.status == "granted", col(SharingRequest.expires_at) > clock)
    elif f.status == "expired":
        query = query.where(SharingRequest.status == "granted", col(SharingRequest.expires_at) <= clock)
    if f.entry_id is not None:
        query = query.where(SharingRequest.entry_id == f.entry_id)
    if f.requester is not None:
        org_id = select(Member.org_id).where(Member.code == f.requester).scalar_subquery()
        query = query.where(col(SharingRequest.requester_org_id) == org_id)
    if f.owner is not None:
        org_id = select(Member.org_id).where(Member.code == f.owner).scalar_subquery()
        query = query.where(col(SharingRequest.owner_org_id) == org_id)
    if f.pending_for is not None:
        query = query.where(SharingRequest.status == "pending", SharingRequest.owner_org_id == f.pending_for)
    if f.grants_only:
        query = query.where(col(SharingRequest.grant_tx_hash).is_not(None))
    return query


def _decisions(session: Session, ids: list[int]) -> dict[int, list[SharingApproval]]:
    found: dict[int, list[SharingApproval]] = defaultdict(list)
    if ids:
        rows = session.exec(
            select(SharingApproval)
            .where(col(SharingApproval.request_id).in_(ids))
            .order_by(col(SharingApproval.block_number), col(SharingApproval.log_index))
        ).all()
        for row in rows:
            found[row.request_id].append(row)
    return found


def _public(
    r: SharingRequest,
    now: int | None,
    orgs: dict[int, str],
    titles: dict[int, str],
    decisions: list[SharingApproval],
    grant: bool,
) -> SharingRequestPublic:
    granted = r.status == "granted"
    expired = granted and r.expires_at is not None and now is not None and now >= r.expires_at
    body: dict[str, Any] = {
        "id": r.request_id,
        "entry_id": r.entry_id,
        "entry_title": titles.get(r.entry_id),
        "requester_org": orgs.get(r.requester_org_id),
        "owner_org": orgs.get(r.owner_org_id),
        "requester": r.requester,
        "form": r.form,
        "purpose": r.purpose,
        "duration_days": round(r.duration / SECONDS_PER_DAY, 4),
        "status": r.status,
        "approvals": r.approvals,
        "approvals_needed": r.approvals_needed,
        "requested_at": from_unix(r.requested_at),
        "granted_at": from_unix(r.granted_at) if r.granted_at else None,
        "expires_at": from_unix(r.expires_at) if r.expires_at else None,
        "expired": expired,
        "active": granted and not expired,
        "refusal_reason": r.refusal_reason,
        "revocation_reason": r.revocation_reason,
        "tx_hash": r.request_tx_hash,
        "block_number": r.request_block,
        "grant_tx_hash": r.grant_tx_hash,
        "grant_block": r.grant_block,
        "decisions": [
            DecisionPublic(
                approver=d.approver,
                decision=d.decision,
                nonce=d.nonce,
                reason=d.reason,
                tx_hash=d.tx_hash,
                block_number=d.block_number,
                time=from_unix(d.block_time),
                relayed_by=d.sender,
            )
            for d in decisions
        ],
    }
    if not grant:
        return SharingRequestPublic(**body)
    approvals = [d for d in decisions if d.decision == "approve"]
    return GrantPublic(
        **body, approvers=[d.approver for d in approvals], approval_tx_hashes=[d.tx_hash for d in approvals]
    )


def _publics(session: Session, rows: list[SharingRequest], now: int | None, grant: bool) -> list[Any]:
    orgs = org_codes(session, {r.requester_org_id for r in rows} | {r.owner_org_id for r in rows})
    entry_ids = sorted({r.entry_id for r in rows})
    titles: dict[int, str] = {}
    if entry_ids:
        titles = {
            int(i): t
            for i, t in session.exec(
                select(CatalogEntry.entry_id, CatalogEntry.title).where(col(CatalogEntry.entry_id).in_(entry_ids))
            ).all()
        }
    decisions = _decisions(session, [r.request_id for r in rows])
    return [_public(r, now, orgs, titles, decisions.get(r.request_id, []), grant) for r in rows]


def list_requests(
    session: Session, principal: Principal, f: RequestFilter, now: int | None, limit: int, offset: int, grant: bool
) -> tuple[list[Any], int]:
    """One page of the requests `principal` may see that match `f`, newest first, and how many match in all."""
    counter = _where(_visible(select(func.count()).select_from(SharingRequest), principal), f, now, session)
    total = session.exec(counter).one()
    rows = session.exec(
        _where(_visible(select(SharingRequest), principal), f, now, session)
        .order_by(desc(col(SharingRequest.request_id)))
        .offset(offset)
        .limit(limit)
    ).all()
    return _publics(session, list(rows), now, grant), int(total)


def get_request(
    session: Session, principal: Principal, request_id: int, now: int | None, grant: bool = False
) -> tuple[SharingRequest, Any] | None:
    """The mirrored request and its public form, or None if there is none the principal may see."""
    row = session.get(SharingRequest, request_id)
    if row is None or not can_see(principal, row):
        return None
    return row, _publics(session, [row], now, grant)[0]
