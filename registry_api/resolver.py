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

import contextlib
import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from eth_utils import keccak
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlmodel import Session

from chain_gateway.rpc import JsonRpcClient
from indexer.service import create_mirror_engine
from indexer.store import CHECKPOINT_NAME
from registry_api.auth import Principal
from registry_api.capability import AUDIENCE, SigningKeys, new_jti, token_times
from registry_api.crud_sharing import ChainClock
from registry_api.receipts import ZERO_HASH, ReceiptFields, append_receipt, dbapi_sql
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
    "create_resolver_engine",
    "create_resolver_indexes",
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
T = TypeVar("T")


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


def _newest(grants: Sequence[GrantFacts]) -> GrantFacts:
    return max(grants, key=lambda g: g.grant_id)


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
            newest = _newest(active)
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
        newest = _newest(inactive)
        if newest.status == "revoked":
            return _deny("REVOKED", f"grant {newest.grant_id} was revoked", form, grant=newest)
        return _deny(
            "EXPIRED", f"grant {newest.grant_id} expired at chain time {newest.expires_at}", form, grant=newest
        )
    narrower = [g for g in facts.grants if _active(g, now)]
    if narrower:
        newest = _newest(narrower)
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

# The decision's one statement, over the indexer's tables (indexer.models) and the budgets (registry_api.models).
# Written out and run on the DBAPI connection because it is on every decision's path: SQLAlchemy's statement
# and result layers cost three times the query itself here. `{admitted}` etc. are NULL for reads.
_FACTS_SQL = """
SELECT cp.block_number, cp.block_hash,
       e.entry_id, e.owner_org_id, e.status, e.share_condition, e.forms_mask, e.version_hash, e.grade, e.schema,
       e.classification,
       r.request_id, r.form, r.status, r.expires_at, r.purpose, r.request_tx_hash, r.grant_tx_hash, r.grant_block,
       b.spent_micros, ap.tx_hash,
       {admitted}, {alg_hash}, {alg_status}
FROM indexer_checkpoints AS cp
LEFT JOIN catalog_entries AS e ON e.entry_id = :entry
LEFT JOIN sharing_requests AS r
       ON r.entry_id = e.entry_id AND r.requester_org_id = :org AND r.status IN ('granted', 'revoked')
LEFT JOIN privacy_budgets AS b ON b.grant_id = r.request_id
LEFT JOIN sharing_approvals AS ap ON ap.request_id = r.request_id AND ap.decision = 'approve'
WHERE cp.name = '{checkpoint}'
ORDER BY r.request_id, ap.block_number, ap.log_index
"""
# The same rule as crud_algorithms.is_admitted: admitted for the entry AND listed.
_ADMITTED_SQL = (
    "(SELECT {aggregate} FROM entry_algorithms AS ea JOIN algorithms AS a ON a.algorithm_id = ea.algorithm_id "
    f"WHERE ea.entry_id = :entry AND a.status = '{LISTED}')"
)
_AGGREGATE = {
    "sqlite": "group_concat(ea.algorithm_id, ',')",
    "postgresql": "string_agg(CAST(ea.algorithm_id AS TEXT), ',')",
}


def create_resolver_indexes(engine: Engine) -> None:
    """The index the decision's statement needs on the mirror: a principal's grants of one entry.

    The mirror's own indexes are single-column; SQLite, without statistics, would take the requester's grants
    over all entries. An extra index on a mirror table changes no row of it, so replays compare equal.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_sharing_requests_entry_requester "
            "ON sharing_requests (entry_id, requester_org_id)"
        )


@functools.cache
def _facts_sql(dialect: str, compute: bool) -> str:
    if compute:
        parts = {
            "admitted": _ADMITTED_SQL.format(aggregate=_AGGREGATE.get(dialect, _AGGREGATE["postgresql"])),
            "alg_hash": "(SELECT code_hash FROM algorithms WHERE algorithm_id = :alg)",
            "alg_status": "(SELECT status FROM algorithms WHERE algorithm_id = :alg)",
        }
    else:
        parts = dict.fromkeys(("admitted", "alg_hash", "alg_status"), "NULL")
    return dbapi_sql(_FACTS_SQL.format(checkpoint=CHECKPOINT_NAME, **parts), dialect)


def _facts(rows: Sequence[Sequence[Any]], request: ResolveRequest) -> Facts:
    first = rows[0]
    entry = None
    if first[2] is not None:
        entry = EntryFacts(
            int(first[2]), int(first[3]), first[4], first[5], int(first[6]), first[7], int(first[8]), first[9] or "",
            first[10],
        )  # fmt: skip
    by_grant: dict[int, Sequence[Any]] = {}
    approvals: dict[int, list[str]] = {}
    for row in rows:
        if row[11] is None:
            continue
        grant_id = int(row[11])
        if grant_id not in by_grant:
            by_grant[grant_id] = row
            approvals[grant_id] = []
        if row[20] is not None:
            approvals[grant_id].append(row[20])  # in chain order (ORDER BY)
    grants = [
        GrantFacts(
            grant_id,
            row[12],
            row[13],
            row[14],
            row[15],
            row[16],
            row[17],
            row[18],
            tuple(approvals[grant_id]),
            int(row[19] or 0),
        )
        for grant_id, row in by_grant.items()
    ]
    admitted = tuple(sorted(int(a) for a in (first[21] or "").split(",") if a))
    algorithm = None
    if request.action == "compute" and first[22] is not None and request.algorithm_id is not None:
        algorithm = AlgorithmFacts(request.algorithm_id, first[22], first[23], request.algorithm_id in admitted)
    return Facts(int(first[0]), first[1], entry, tuple(grants), algorithm, admitted)


# ---------------------------------------------------------------- the resolver


RESOLVER_POOL = {"pool_size": 8, "max_overflow": 24}  # PostgreSQL: the API's worker threads, at most


def create_resolver_engine(database_url: str) -> Engine:
    """The resolver's own engine: autocommit, and no ping on checkout (a stale connection is retried instead).

    Autocommit makes the facts' read one round trip with its own snapshot, and a receipt's one statement its
    own transaction; returning a connection to the pool then costs nothing. The mirror's engine pings every
    checkout (a round trip on PostgreSQL), which the decisions cannot afford.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return create_mirror_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 30}, isolation_level="AUTOCOMMIT"
        )
    return create_engine(database_url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, **RESOLVER_POOL)


class Resolver:
    """Decisions on the mirror, capability tokens for permits, and the receipt of every token issued.

    `engine` should come from `create_resolver_engine` (autocommit: each receipt commits with its statement).
    """

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
        self._dialect = engine.dialect.name
        # SQLite takes one writer at a time and makes the others sleep (1 ms at least) until it is free: this
        # process's own receipt writers queue on a lock instead. PostgreSQL locks the counter row itself.
        self._receipt_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._dialect == "sqlite" else contextlib.nullcontext()
        )

    def _run(self, work: Callable[[Any], T]) -> T:
        """`work(cursor)` on a pooled DBAPI connection; a connection found dead (the database restarted) is
        dropped and the work done once more on a fresh one, or 503 DATABASE_UNAVAILABLE.

        Should the connection die after a receipt committed, the retry issues a second token with its own
        receipt: a receipt may then stand for a token never delivered, but no token goes out without one."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        for attempt in range(2):
            conn = self.engine.raw_connection()
            try:
                return work(conn.cursor())
            except dbapi_error as exc:
                if not self.engine.dialect.is_disconnect(exc, conn.dbapi_connection, None):
                    raise
                conn.invalidate(exc)
                if attempt == 1:
                    raise ResolverError(503, "DATABASE_UNAVAILABLE", "the database cannot be reached") from exc
            finally:
                conn.close()
        raise AssertionError("unreachable")

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
        return self._run(lambda cursor: self._read(cursor, principal, request))

    def _read(self, cursor: Any, principal: Principal, request: ResolveRequest) -> Facts:
        params = {"entry": request.entry_id, "org": principal.org_id, "alg": request.algorithm_id or 0}
        cursor.execute(_facts_sql(self._dialect, request.action == "compute"), params)
        rows = cursor.fetchall()
        if not rows:
            raise ResolverError(503, "MIRROR_NOT_READY", "the mirror has not indexed any block yet")
        return _facts(rows, request)

    def _decide(self, cursor: Any, principal: Principal, request: ResolveRequest) -> Resolution:
        if principal.org_id is None:
            raise ResolverError(403, "ORG_UNKNOWN", f"organisation {principal.org_code} is not a consortium member")
        facts = self._read(cursor, principal, request)
        entry = facts.entry
        if entry is None or (entry.status == "draft" and entry.owner_org_id != principal.org_id):
            raise ResolverError(404, "ENTRY_NOT_FOUND", f"no catalog entry {request.entry_id}", "entry_id")
        if request.action == "compute" and facts.algorithm is None:
            raise ResolverError(404, "ALGORITHM_NOT_FOUND", f"no algorithm {request.algorithm_id}", "algorithm_id")
        now = self._chain_time(facts.block_hash)
        decision = decide(principal.org_id, request, entry, facts, now)
        return Resolution(request, principal, facts, entry, now, decision)

    def decide(self, principal: Principal, request: ResolveRequest) -> Resolution:
        """The decision on `request` for `principal`, without a token (the data zone's jobs use this)."""
        return self._run(lambda cursor: self._decide(cursor, principal, request))

    def resolve(self, principal: Principal, request: ResolveRequest) -> Resolution:
        """Decide; for a permit sign a capability token and store the receipt of its issuance.

        Two statements on one pooled connection: the facts' read, then (permits) the receipt, committed before
        the token is returned.
        """

        def work(cursor: Any) -> Resolution:
            resolution = self._decide(cursor, principal, request)
            if not resolution.decision.permit:
                return resolution
            return dataclasses.replace(resolution, issued=self._issue(cursor, resolution))

        return self._run(work)

    def _issue(self, cursor: Any, resolution: Resolution) -> Issued:
        """Sign the permit's capability token, then store the receipt of its issuance (autocommit: at once)."""
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
            form=decision.form,
            grant_id=claims["grant_id"],
            algorithm_code_hash=algorithm_hash,
            result_hash="0x" + keccak(token.encode()).hex(),
            epsilon_micros=0,
            decided_block=facts.block_number,
            issued_at=iat,
            ref=jti,
        )
        with self._receipt_lock:
            stored = append_receipt(cursor, self._dialect, fields)
        return Issued(token, jti, self.keys.current.kid, iat, exp, stored.receipt_id, stored.receipt_hash)
