"""The resolver: may this principal read or compute on this catalog entry now, and on what proof?

A decision is made on the mirror of the chain as of its last indexed block, read in ONE statement per
decision (checkpoint, entry, the principal org's grants with their approvals and spent epsilon, and for
compute the algorithm and the entry's admitted algorithms), so nothing outlives a block: a delisting, a
revocation or a revision counts from the first decision after it is indexed. Expiry is judged by the chain's
time at that block. A permit comes with an ES256 capability token (`registry_api.capability`) and writes a
usage receipt (`registry_api.receipts`); a deny names its reason.

Rules (the owner org of an entry may do everything on it: proof basis "owner"):

| action | needs an active grant of form | and |
|---|---|---|
| read_raw | raw | the entry still allows raw |
| read_desensitized | desensitized or raw | the entry still allows the grant's form |
| compute | result_only, desensitized or raw | the entry still allows the grant's form; the algorithm |
| | | listed AND admitted for the entry; remaining epsilon >= the epsilon asked (> 0 if none) |

"Active" is granted, not revoked and before `expires_at` by the chain's time. A grant counts only while the
entry still allows the grant's form (the owner may have revised it away). The entry must still be shareable
and published (a deprecated entry is served to no one but its owner). When several grants fit, the narrowest
form wins (least privilege), then the latest expiry, then the newest grant; for compute only grants with
enough budget compete. Deny reasons, in the order they are judged:

    NOT_SHAREABLE, ENTRY_NOT_PUBLISHED      the entry's share condition / status as it is now
    (a covering grant is active)            FORM_NOT_ALLOWED (entry revised), ALGORITHM_NOT_ADMITTED,
                                            BUDGET_EXHAUSTED
    (none active, one expired or revoked)   EXPIRED or REVOKED: the newest such covering grant's state
    (an active grant of a narrower form)    FORM_NOT_ALLOWED
    (nothing)                               NO_GRANT

An unknown entry (or another org's draft) is an error, ENTRY_NOT_FOUND; so is an unknown algorithm id,
ALGORITHM_NOT_FOUND.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eth_utils import keccak
from sqlalchemy import Engine, String, and_, bindparam, cast, func, literal, null, select
from sqlmodel import Session

from chain_gateway.rpc import JsonRpcClient
from indexer.models import (
    Algorithm,
    CatalogEntry,
    EntryAlgorithm,
    IndexerCheckpoint,
    SharingApproval,
    SharingRequest,
)
from indexer.store import CHECKPOINT_NAME
from registry_api.auth import Principal
from registry_api.capability import AUDIENCE, SigningKeys, new_jti, token_times
from registry_api.crud_sharing import ChainClock
from registry_api.models import PrivacyBudget
from registry_api.receipts import ZERO_HASH, ReceiptFields, append_receipt
from registry_api.zone.policy import PrivacyPolicy, policy_for

__all__ = [
    "ACTIONS",
    "DENY_REASONS",
    "Action",
    "AlgorithmFacts",
    "Decision",
    "EntryFacts",
    "Facts",
    "GrantFacts",
    "Issued",
    "Resolution",
    "ResolveRequest",
    "Resolver",
    "ResolverError",
    "decide",
    "micros",
]

Action = Literal["read_raw", "read_desensitized", "compute"]
ACTIONS: tuple[Action, ...] = ("read_raw", "read_desensitized", "compute")
# The form an action delivers, and the grant forms that cover it, narrowest first.
ACTION_FORM: dict[str, str] = {"read_raw": "raw", "read_desensitized": "desensitized", "compute": "result_only"}
COVERING_FORMS: dict[str, tuple[str, ...]] = {
    "read_raw": ("raw",),
    "read_desensitized": ("desensitized", "raw"),
    "compute": ("result_only", "desensitized", "raw"),
}
FORM_BITS = {"raw": 1, "desensitized": 2, "result_only": 4}  # DataCatalog's form bits
DENY_REASONS = (
    "NO_GRANT",
    "EXPIRED",
    "REVOKED",
    "FORM_NOT_ALLOWED",
    "ALGORITHM_NOT_ADMITTED",
    "BUDGET_EXHAUSTED",
    "NOT_SHAREABLE",
    "ENTRY_NOT_PUBLISHED",
)
LISTED = "listed"  # the algorithm status that counts (crud_algorithms.is_admitted: admitted AND listed)
MICROS = 1_000_000  # micro-epsilon per epsilon


def micros(epsilon: float) -> int:
    """Epsilon as integer micro-epsilon (budgets add and compare exactly)."""
    return round(epsilon * MICROS)


class ResolverError(Exception):
    """A request the resolver cannot decide on: `status`, stable `code`, `message` and the `field` at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ResolveRequest:
    entry_id: int
    action: Action
    algorithm_id: int | None = None
    epsilon: float | None = None  # compute: what the caller means to spend


@dataclass(frozen=True)
class EntryFacts:
    entry_id: int
    owner_org_id: int
    status: str
    share_condition: str
    forms_mask: int
    version_hash: str
    grade: int
    schema: str
    classification: str

    def allows(self, form: str) -> bool:
        return bool(self.forms_mask & FORM_BITS[form])


@dataclass(frozen=True)
class GrantFacts:
    grant_id: int
    form: str
    status: str  # granted | revoked
    expires_at: int | None
    purpose: str
    request_tx_hash: str
    grant_tx_hash: str | None
    grant_block: int | None
    approval_tx_hashes: tuple[str, ...]
    spent_micros: int


@dataclass(frozen=True)
class AlgorithmFacts:
    algorithm_id: int
    code_hash: str
    status: str
    admitted: bool  # admitted for the entry AND listed


@dataclass(frozen=True)
class Facts:
    """What the mirror said, in one statement, at block (`block_number`, `block_hash`)."""

    block_number: int
    block_hash: str
    entry: EntryFacts | None
    grants: tuple[GrantFacts, ...]
    algorithm: AlgorithmFacts | None = None
    admitted_algorithms: tuple[int, ...] = ()


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str | None  # one of DENY_REASONS when denied
    message: str
    form: str  # the form the action delivers
    basis: str | None = None  # owner | grant (permits)
    grant: GrantFacts | None = None  # the grant used (permit) or judged (EXPIRED, REVOKED, BUDGET_EXHAUSTED, ...)
    policy: PrivacyPolicy | None = None  # compute
    remaining_micros: int | None = None  # compute under a grant: budget left before this decision's epsilon


@dataclass(frozen=True)
class Issued:
    """A capability token and the receipt of its issuance."""

    token: str
    jti: str
    kid: str
    issued_at: int
    expires_at: int
    receipt_id: int
    receipt_hash: str


@dataclass(frozen=True)
class Resolution:
    request: ResolveRequest
    principal: Principal
    facts: Facts
    entry: EntryFacts
    chain_time: int | None
    decision: Decision
    issued: Issued | None = None


# ---------------------------------------------------------------- the decision (pure)


def _active(grant: GrantFacts, now: int | None) -> bool:
    return grant.status == "granted" and (grant.expires_at is None or now is None or now < grant.expires_at)


def _deny(reason: str, message: str, form: str, **kwargs: Any) -> Decision:
    return Decision(False, reason, message, form, **kwargs)


@functools.lru_cache(maxsize=1_024)
def _policy(schema: str, grade: int) -> PrivacyPolicy:
    try:
        parsed = json.loads(schema) if schema else None
    except ValueError:
        parsed = None
    return policy_for(parsed if isinstance(parsed, dict) else None, grade)


def decide(org_id: int, request: ResolveRequest, entry: EntryFacts, facts: Facts, now: int | None) -> Decision:
    """The decision for org `org_id` on `request` given the mirror's `facts` and the chain time `now`."""
    action = request.action
    form = ACTION_FORM[action]
    policy = _policy(entry.schema, entry.grade) if action == "compute" else None
    if entry.owner_org_id == org_id:
        return Decision(True, None, "the owner org may do everything on its own entry", form, "owner", policy=policy)
    if entry.share_condition == "not_shareable":
        return _deny("NOT_SHAREABLE", f"catalog entry {entry.entry_id} is not shareable (不予共享)", form)
    if entry.status != "published":
        return _deny("ENTRY_NOT_PUBLISHED", f"catalog entry {entry.entry_id} is {entry.status}", form)
    rank = {f: i for i, f in enumerate(COVERING_FORMS[action])}
    covering = [g for g in facts.grants if g.form in rank]
    active = [g for g in covering if _active(g, now)]
    if active:
        allowed = [g for g in active if entry.allows(g.form)]
        if not allowed:
            newest = max(active, key=lambda g: g.grant_id)
            return _deny(
                "FORM_NOT_ALLOWED",
                f"catalog entry {entry.entry_id} no longer allows the {newest.form} form of grant {newest.grant_id}",
                form,
                grant=newest,
            )
        best = sorted(allowed, key=lambda g: (rank[g.form], -(g.expires_at or 0), -g.grant_id))
        if action != "compute":
            return Decision(True, None, f"grant {best[0].grant_id} ({best[0].form})", form, "grant", best[0])
        return _decide_compute(request, entry, facts, best, form, policy)
    inactive = [g for g in covering if g.status in ("granted", "revoked")]
    if inactive:
        newest = max(inactive, key=lambda g: g.grant_id)
        if newest.status == "revoked":
            return _deny("REVOKED", f"grant {newest.grant_id} was revoked", form, grant=newest)
        return _deny(
            "EXPIRED", f"grant {newest.grant_id} expired at chain time {newest.expires_at}", form, grant=newest
        )
    narrower = [g for g in facts.grants if _active(g, now)]
    if narrower:
        newest = max(narrower, key=lambda g: g.grant_id)
        return _deny(
            "FORM_NOT_ALLOWED",
            f"grant {newest.grant_id} is for the {newest.form} form, which does not cover {action}",
            form,
            grant=newest,
        )
    return _deny("NO_GRANT", f"no grant of catalog entry {entry.entry_id} to this organisation", form)


def _decide_compute(
    request: ResolveRequest,
    entry: EntryFacts,
    facts: Facts,
    candidates: Sequence[GrantFacts],
    form: str,
    policy: PrivacyPolicy | None,
) -> Decision:
    algorithm = facts.algorithm
    if algorithm is None or not algorithm.admitted:
        state = "not listed" if algorithm is not None and algorithm.status != LISTED else "not admitted"
        return _deny(
            "ALGORITHM_NOT_ADMITTED",
            f"algorithm {request.algorithm_id} is {state} for catalog entry {entry.entry_id}",
            form,
            grant=candidates[0],
            policy=policy,
        )
    budget = micros(policy.epsilon_budget) if policy is not None else 0
    wanted = micros(request.epsilon) if request.epsilon is not None else 1
    for grant in candidates:
        remaining = budget - grant.spent_micros
        if remaining >= wanted:
            message = f"grant {grant.grant_id} ({grant.form}), algorithm {algorithm.algorithm_id} admitted"
            return Decision(True, None, message, form, "grant", grant, policy, remaining)
    best = candidates[0]
    return _deny(
        "BUDGET_EXHAUSTED",
        f"grant {best.grant_id} has {max(0, budget - best.spent_micros) / MICROS:g} epsilon left"
        + (f", {request.epsilon:g} asked" if request.epsilon is not None else ""),
        form,
        grant=best,
        policy=policy,
        remaining_micros=max(0, budget - best.spent_micros),
    )


# ---------------------------------------------------------------- the facts (one statement)

_CP = IndexerCheckpoint.__table__  # type: ignore[attr-defined]
_E = CatalogEntry.__table__  # type: ignore[attr-defined]
_R = SharingRequest.__table__  # type: ignore[attr-defined]
_AP = SharingApproval.__table__  # type: ignore[attr-defined]
_B = PrivacyBudget.__table__  # type: ignore[attr-defined]
_ALG = Algorithm.__table__  # type: ignore[attr-defined]
_EA = EntryAlgorithm.__table__  # type: ignore[attr-defined]


def _facts_statement(compute: bool) -> Any:
    entry, org, alg = bindparam("entry"), bindparam("org"), bindparam("alg")
    if compute:
        admitted: Any = (
            select(func.aggregate_strings(cast(_EA.c.algorithm_id, String), ","))
            .select_from(_EA.join(_ALG, _ALG.c.algorithm_id == _EA.c.algorithm_id))
            .where(_EA.c.entry_id == entry, _ALG.c.status == LISTED)
            .scalar_subquery()
        )
        alg_hash: Any = select(_ALG.c.code_hash).where(_ALG.c.algorithm_id == alg).scalar_subquery()
        alg_status: Any = select(_ALG.c.status).where(_ALG.c.algorithm_id == alg).scalar_subquery()
    else:
        admitted, alg_hash, alg_status = null(), null(), null()
    joined = (
        _CP.outerjoin(_E, _E.c.entry_id == entry)
        .outerjoin(
            _R,
            and_(
                _R.c.entry_id == _E.c.entry_id,
                _R.c.requester_org_id == org,
                _R.c.status.in_(("granted", "revoked")),
            ),
        )
        .outerjoin(_B, _B.c.grant_id == _R.c.request_id)
        .outerjoin(_AP, and_(_AP.c.request_id == _R.c.request_id, _AP.c.decision == literal("approve")))
    )
    return (
        select(
            _CP.c.block_number,
            _CP.c.block_hash,
            _E.c.entry_id,
            _E.c.owner_org_id,
            _E.c.status,
            _E.c.share_condition,
            _E.c.forms_mask,
            _E.c.version_hash,
            _E.c.grade,
            _E.c.schema,
            _E.c.classification,
            _R.c.request_id,
            _R.c.form,
            _R.c.status.label("grant_status"),
            _R.c.expires_at,
            _R.c.purpose,
            _R.c.request_tx_hash,
            _R.c.grant_tx_hash,
            _R.c.grant_block,
            _B.c.spent_micros,
            _AP.c.tx_hash.label("approval_tx_hash"),
            admitted.label("admitted"),
            alg_hash.label("alg_hash"),
            alg_status.label("alg_status"),
        )
        .select_from(joined)
        .where(_CP.c.name == CHECKPOINT_NAME)
        .order_by(_R.c.request_id, _AP.c.block_number, _AP.c.log_index)
    )


_FACTS = {False: _facts_statement(False), True: _facts_statement(True)}


def _facts(rows: Sequence[Any], request: ResolveRequest) -> Facts:
    first = rows[0]
    entry = None
    if first.entry_id is not None:
        entry = EntryFacts(
            int(first.entry_id),
            int(first.owner_org_id),
            first.status,
            first.share_condition,
            int(first.forms_mask),
            first.version_hash,
            int(first.grade),
            first.schema or "",
            first.classification,
        )
    grants: list[GrantFacts] = []
    approvals: dict[int, list[str]] = {}
    for row in rows:
        if row.request_id is None:
            continue
        grant_id = int(row.request_id)
        if grant_id not in approvals:
            approvals[grant_id] = []
            grants.append(
                GrantFacts(
                    grant_id,
                    row.form,
                    row.grant_status,
                    row.expires_at,
                    row.purpose,
                    row.request_tx_hash,
                    row.grant_tx_hash,
                    row.grant_block,
                    (),
                    int(row.spent_micros or 0),
                )
            )
        if row.approval_tx_hash is not None:
            approvals[grant_id].append(row.approval_tx_hash)
    grants = [dataclasses.replace(g, approval_tx_hashes=tuple(approvals[g.grant_id])) for g in grants]
    admitted = tuple(sorted(int(a) for a in (first.admitted or "").split(",") if a))
    algorithm = None
    if request.action == "compute" and first.alg_hash is not None and request.algorithm_id is not None:
        algorithm = AlgorithmFacts(
            request.algorithm_id, first.alg_hash, first.alg_status, request.algorithm_id in admitted
        )
    return Facts(int(first.block_number), first.block_hash, entry, tuple(grants), algorithm, admitted)


# ---------------------------------------------------------------- the resolver


class Resolver:
    """Decisions on the mirror, capability tokens for permits, and the receipt of every token issued."""

    def __init__(
        self,
        engine: Engine,
        keys: SigningKeys,
        rpc: JsonRpcClient,
        *,
        issuer: str,
        ttl_seconds: int,
        clock: ChainClock | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.rpc = rpc
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.clock = clock or ChainClock()
        self._wall: Callable[[], float] = wall_clock or time.time
        self._time_lock = threading.Lock()
        self._last_block: tuple[str, int | None] = ("", None)

    def _chain_time(self, block_hash: str) -> int | None:
        with self._time_lock:
            known_hash, known_time = self._last_block
        if known_hash == block_hash:
            return known_time
        with Session(self.engine) as session:
            seconds = self.clock.block_time(session, self.rpc, block_hash)
        with self._time_lock:
            self._last_block = (block_hash, seconds)
        return seconds

    def facts(self, principal: Principal, request: ResolveRequest) -> Facts:
        """The mirror's facts for the request, read in one statement."""
        params = {"entry": request.entry_id, "org": principal.org_id, "alg": request.algorithm_id or 0}
        with self.engine.connect() as conn:
            rows = conn.execute(_FACTS[request.action == "compute"], params).all()
        if not rows:
            raise ResolverError(503, "MIRROR_NOT_READY", "the mirror has not indexed any block yet")
        return _facts(rows, request)

    def decide(self, principal: Principal, request: ResolveRequest) -> Resolution:
        """The decision on `request` for `principal`, without a token (the data zone's jobs use this)."""
        if principal.org_id is None:
            raise ResolverError(403, "ORG_UNKNOWN", f"organisation {principal.org_code} is not a consortium member")
        facts = self.facts(principal, request)
        entry = facts.entry
        if entry is None or (entry.status == "draft" and entry.owner_org_id != principal.org_id):
            raise ResolverError(404, "ENTRY_NOT_FOUND", f"no catalog entry {request.entry_id}", "entry_id")
        if request.action == "compute" and facts.algorithm is None:
            raise ResolverError(404, "ALGORITHM_NOT_FOUND", f"no algorithm {request.algorithm_id}", "algorithm_id")
        now = self._chain_time(facts.block_hash)
        decision = decide(principal.org_id, request, entry, facts, now)
        return Resolution(request, principal, facts, entry, now, decision)

    def resolve(self, principal: Principal, request: ResolveRequest) -> Resolution:
        """Decide; for a permit sign a capability token and store the receipt of its issuance."""
        resolution = self.decide(principal, request)
        if not resolution.decision.permit:
            return resolution
        return dataclasses.replace(resolution, issued=self.issue(resolution))

    def issue(self, resolution: Resolution) -> Issued:
        """Sign the permit's capability token, then store the receipt of its issuance (its own transaction)."""
        decision, entry, facts = resolution.decision, resolution.entry, resolution.facts
        request, principal = resolution.request, resolution.principal
        grant = decision.grant
        iat, exp = token_times(self._wall(), self.ttl_seconds, grant.expires_at if grant else None)
        jti = new_jti()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": principal.org_code,
            "aud": AUDIENCE,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": jti,
            "entry_id": entry.entry_id,
            "entry_version": entry.version_hash,
            "action": request.action,
            "form": decision.form,
            "grant_id": grant.grant_id if grant else 0,
            "block_number": facts.block_number,
        }
        algorithm_hash = ZERO_HASH
        if request.action == "compute" and facts.algorithm is not None:
            algorithm_hash = facts.algorithm.code_hash
            claims.update(algorithm_id=facts.algorithm.algorithm_id, algorithm_hash=algorithm_hash)
            if request.epsilon is not None:
                claims["epsilon"] = request.epsilon
        token = self.keys.sign(claims)
        fields = ReceiptFields(
            kind="token",
            account=principal.account,
            org_code=principal.org_code,
            entry_id=entry.entry_id,
            entry_version_hash=entry.version_hash,
            action=request.action,
            form=claims["form"],
            grant_id=claims["grant_id"],
            algorithm_code_hash=algorithm_hash,
            result_hash="0x" + keccak(token.encode()).hex(),
            epsilon_micros=0,
            decided_block=facts.block_number,
            issued_at=iat,
            ref=jti,
        )
        with self.engine.begin() as conn:
            stored = append_receipt(conn, fields)
        return Issued(token, jti, self.keys.current.kid, iat, exp, stored.receipt_id, stored.receipt_hash)
