"""Bearer-token authentication: tokens per org stored hashed, and the principal a request acts as.

A token maps to exactly one org and one on-chain account; every write is signed with that account, never
with one named in the request, so org A cannot act for org B. Roles come from the mirror of the chain
(`account_roles`), so granting or revoking a role on-chain takes effect here once indexed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import weakref
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address
from sqlalchemy import Engine, bindparam, inspect, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from indexer.models import Account, AccountRole, Member
from registry_api.models import ApiToken

__all__ = [
    "PRINCIPAL_CACHE_SECONDS",
    "TOKEN_PREFIX",
    "Principal",
    "PrincipalCache",
    "create_token_table",
    "hash_token",
    "issue_token",
    "list_tokens",
    "parse_lifetime",
    "resolve_principal",
    "revoke_token",
]

TOKEN_PREFIX = "dct_"  # "directory chain token": recognisable in logs and secret scanners
TOKEN_BYTES = 32  # of randomness
PRINCIPAL_CACHE_SECONDS = 2.0  # how long a read route trusts a resolved token (revocations elsewhere: this late)
PRINCIPAL_CACHE_SIZE = 10_000  # tokens
_caches: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()  # every cache of this process, told of revocations


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's org and account, and the account's roles on-chain (mirrored)."""

    org_code: str
    org_id: int | None  # None until the org is mirrored
    account: str
    roles: frozenset[str]
    org_active: bool
    token_label: str = ""
    expires_at: float | None = None  # unix seconds; None: never
    account_in_org: bool = False  # the account belongs to the token's org on-chain (else it has no roles either)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def has_role(self, role: str) -> bool:
        return role in self.roles


def hash_token(token: str) -> str:
    """Hex sha256 of a plaintext token (what the table stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token_table(engine: Engine) -> None:
    """The token table, with the columns added since it was first made (no migration tool yet)."""
    SQLModel.metadata.create_all(engine, tables=[ApiToken.__table__])  # type: ignore[list-item]
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """`expires_at` on a table made before tokens could expire (nullable: its tokens stay non-expiring)."""
    table = ApiToken.__table__  # type: ignore[attr-defined]
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for column in (c for c in table.columns if c.name not in present):
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        except DBAPIError:  # another process added it first (the CLI beside a starting API)
            if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                raise


_LIFETIME = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_LIFETIME_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}  # seconds


def parse_lifetime(text: str) -> float:
    """Seconds of a token lifetime written as `90d`, `12h`, `30m` or `3600s` (ValueError otherwise)."""
    match = _LIFETIME.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _LIFETIME_UNITS[match[2]] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a lifetime such as 90d, 12h, 30m or 3600s")
    return seconds


def issue_token(
    engine: Engine, org_code: str, account: str, label: str = "", expires_in_seconds: float | None = None
) -> str:
    """Create a token for `org_code` signing with `account`, valid for `expires_in_seconds` (None: until revoked);
    the plaintext is returned once and never stored."""
    if not org_code:
        raise ValueError("org_code is required")
    if not is_address(account):
        raise ValueError(f"{account!r} is not an account address")
    if expires_in_seconds is not None and expires_in_seconds <= 0:
        raise ValueError("a token's lifetime must be positive")
    create_token_table(engine)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    now = time.time()
    with Session(engine) as session:
        session.add(
            ApiToken(
                token_hash=hash_token(token),
                org_code=org_code,
                account=to_checksum_address(account),
                label=label,
                created_at=now,
                expires_at=None if expires_in_seconds is None else now + expires_in_seconds,
            )
        )
        session.commit()
    return token


def revoke_token(engine: Engine, token_or_hash: str) -> bool:
    """Revoke a token given in plaintext or as its hash; False if there is no such token."""
    digest = token_or_hash if len(token_or_hash) == 64 and not token_or_hash.startswith(TOKEN_PREFIX) else None
    digest = digest or hash_token(token_or_hash)
    with Session(engine) as session:
        result = session.execute(update(ApiToken).where(ApiToken.token_hash == digest).values(revoked=True))
        session.commit()
        revoked = bool(result.rowcount)  # type: ignore[attr-defined]
    for cache in list(_caches):
        cache.forget(digest)
    return revoked


def list_tokens(engine: Engine, org_code: str | None = None) -> list[ApiToken]:
    """Tokens (hashes, never plaintext), newest first."""
    with Session(engine) as session:
        query = select(ApiToken).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
        if org_code:
            query = query.where(ApiToken.org_code == org_code)
        return list(session.execute(query).scalars())


# One statement (token, org, account and its roles), built once: every authenticated request runs it.
_PRINCIPAL = (
    select(
        ApiToken.token_hash,
        ApiToken.org_code,
        ApiToken.account,
        ApiToken.label,
        ApiToken.revoked,
        ApiToken.expires_at,
        Member.org_id,
        Member.active,
        Account.org_id,
        AccountRole.role,
    )
    .outerjoin(Member, Member.code == ApiToken.org_code)  # type: ignore[arg-type]
    .outerjoin(Account, Account.address == ApiToken.account)  # type: ignore[arg-type]
    .outerjoin(AccountRole, AccountRole.address == ApiToken.account)  # type: ignore[arg-type]
    .where(ApiToken.token_hash == bindparam("digest"))
)


def resolve_principal(session: Session, token: str) -> Principal | None:
    """The principal of a plaintext token, or None if it is unknown, revoked or expired."""
    digest = hash_token(token)
    rows = session.execute(_PRINCIPAL, {"digest": digest}).all()
    if not rows or rows[0][4] or not hmac.compare_digest(rows[0][0], digest):
        return None
    _, org_code, account, label, _, expires_at, org_id, active, account_org = rows[0][:9]
    # Roles count only while the account belongs to the token's org on-chain.
    member_account = org_id is not None and account_org == org_id
    roles = frozenset(r[9] for r in rows if r[9] is not None) if member_account else frozenset()
    principal = Principal(
        org_code=org_code,
        org_id=org_id,
        account=account,
        roles=roles,
        org_active=bool(org_id is not None and active),
        token_label=label,
        expires_at=expires_at,
        account_in_org=member_account,
    )
    return None if principal.expired(time.time()) else principal


class PrincipalCache:
    """Resolved tokens kept for `seconds`: read routes skip the token query for a token seen just before.

    Every request of a client carries the same token, so under load nearly all lookups hit. A revocation in this
    process (`revoke_token`) takes effect at once; one made elsewhere (the CLI, another worker) or a role change
    on-chain within `seconds`. Unknown tokens are not kept (a miss costs one query, as without the cache).
    """

    def __init__(self, seconds: float = PRINCIPAL_CACHE_SECONDS, size: int = PRINCIPAL_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        _caches.add(self)

    def resolve(self, engine: Engine, token: str) -> Principal | None:
        """The principal of `token` from the cache, or resolved (and kept) if missing or older than `seconds`;
        None once the token has expired, cached or not."""
        digest = hash_token(token)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            if not entry[1].expired(time.time()):
                return entry[1]
            self.forget(digest)  # expired while cached: refused at once, not `seconds` later
            return None
        with Session(engine) as session:
            principal = resolve_principal(session, token)
        with self._lock:
            if principal is None:
                self._entries.pop(digest, None)
                return None
            if len(self._entries) >= self.size:
                self._entries.clear()  # rare (more live tokens than `size`): start again rather than track age
            self._entries[digest] = (now + self.seconds, principal)
        return principal

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)
