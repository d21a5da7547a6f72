"""Bearer-token authentication: tokens per org stored hashed, and the principal a request acts as.

A token maps to exactly one org and one on-chain account; every write is signed with that account, never
with one named in the request, so org A cannot act for org B. Roles come from the mirror of the chain
(`account_roles`), so granting or revoking a role on-chain takes effect here once indexed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from eth_utils import is_address, to_checksum_address
from sqlalchemy import Engine, select, update
from sqlmodel import Session, SQLModel

from indexer.models import Account, AccountRole, Member
from registry_api.models import ApiToken

__all__ = [
    "TOKEN_PREFIX",
    "Principal",
    "create_token_table",
    "hash_token",
    "issue_token",
    "list_tokens",
    "resolve_principal",
    "revoke_token",
]

TOKEN_PREFIX = "dct_"  # "directory chain token": recognisable in logs and secret scanners
TOKEN_BYTES = 32  # of randomness


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's org and account, and the account's roles on-chain (mirrored)."""

    org_code: str
    org_id: int | None  # None until the org is mirrored
    account: str
    roles: frozenset[str]
    org_active: bool
    token_label: str = ""

    def has_role(self, role: str) -> bool:
        return role in self.roles


def hash_token(token: str) -> str:
    """Hex sha256 of a plaintext token (what the table stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token_table(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine, tables=[ApiToken.__table__])  # type: ignore[list-item]


def issue_token(engine: Engine, org_code: str, account: str, label: str = "") -> str:
    """Create a token for `org_code` signing with `account`; the plaintext is returned once and never stored."""
    if not org_code:
        raise ValueError("org_code is required")
    if not is_address(account):
        raise ValueError(f"{account!r} is not an account address")
    create_token_table(engine)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with Session(engine) as session:
        session.add(
            ApiToken(token_hash=hash_token(token), org_code=org_code, account=to_checksum_address(account), label=label)
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
        return bool(result.rowcount)  # type: ignore[attr-defined]


def list_tokens(engine: Engine, org_code: str | None = None) -> list[ApiToken]:
    """Tokens (hashes, never plaintext), newest first."""
    with Session(engine) as session:
        query = select(ApiToken).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
        if org_code:
            query = query.where(ApiToken.org_code == org_code)
        return list(session.execute(query).scalars())


def resolve_principal(session: Session, token: str) -> Principal | None:
    """The principal of a plaintext token, or None if it is unknown or revoked."""
    digest = hash_token(token)
    row = session.get(ApiToken, digest)
    if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
        return None
    member = session.execute(select(Member).where(Member.code == row.org_code)).scalar_one_or_none()
    account = session.get(Account, row.account)
    roles: frozenset[str] = frozenset()
    # Roles count only while the account belongs to the token's org on-chain.
    if member is not None and account is not None and account.org_id == member.org_id:
        roles = frozenset(session.execute(select(AccountRole.role).where(AccountRole.address == row.account)).scalars())
    return Principal(
        org_code=row.org_code,
        org_id=member.org_id if member else None,
        account=row.account,
        roles=roles,
        org_active=bool(member and member.active),
        token_label=row.label,
    )
