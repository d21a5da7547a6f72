"""The durable outbox: one `operations` row per accepted write, and the persisted per-account nonces.

Invariants (they are what makes "accepted once, on-chain exactly once" hold across crashes):
- a row is committed before `enqueue` returns; nothing is sent for a row that is not committed;
- nonce, raw_tx and tx_hash are committed together before the first broadcast, and never change afterwards
  unless the nonce is proven consumed by another transaction (then the raw tx can never be mined);
- resending a raw tx is idempotent: the node either knows it, has mined it, or takes it again.

Status: queued -> submitted -> mined -> confirmed, or -> failed (refused by the estimate, rejected by the
node, or reverted on-chain: then `error_code`/`error_args_json` hold the decoded custom error).
A mined row whose block leaves the canonical chain goes back to submitted.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Index, Table, UniqueConstraint, bindparam, create_engine, event, or_, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

__all__ = [
    "FAILED",
    "STATUSES",
    "CONFIRMED",
    "MINED",
    "QUEUED",
    "SUBMITTED",
    "AccountNonce",
    "Operation",
    "canonical_json",
    "create_outbox_engine",
    "request_hash",
    "update_rows",
]

QUEUED = "queued"
SUBMITTED = "submitted"
MINED = "mined"
CONFIRMED = "confirmed"
FAILED = "failed"
STATUSES = (QUEUED, SUBMITTED, MINED, CONFIRMED, FAILED)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (and equal hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(contract: str, function: str, args: Any) -> str:
    """sha256 of the canonical request body; tells an idempotency key's replay from its reuse."""
    body = canonical_json({"args": args, "contract": contract, "function": function})
    return "0x" + hashlib.sha256(body.encode()).hexdigest()


def _now() -> float:
    return time.time()


def _new_id() -> str:
    return uuid.uuid4().hex


class Operation(SQLModel, table=True):
    """One write accepted by the gateway and its way to the chain."""

    __tablename__ = "operations"
    __table_args__ = (
        UniqueConstraint("account", "idempotency_key", name="uq_operations_account_idempotency_key"),
        Index("ix_operations_status_created", "status", "created_at"),
        Index("ix_operations_account_nonce", "account", "nonce"),
    )

    id: str = Field(default_factory=_new_id, primary_key=True, max_length=32)
    idempotency_key: str | None = Field(default=None, max_length=255)
    org_code: str
    account: str = Field(max_length=42)  # checksum address that signs
    contract: str
    function: str
    args_json: str
    request_hash: str = Field(max_length=66)
    status: str = Field(default=QUEUED, max_length=16)
    nonce: int | None = None
    tx_hash: str | None = Field(default=None, max_length=66)
    raw_tx: str | None = None
    gas_limit: int | None = None
    block_number: int | None = None
    block_hash: str | None = Field(default=None, max_length=66)
    error_code: str | None = None
    error_args_json: str | None = None
    error_message: str | None = None
    broadcast_at: float | None = None  # unix seconds of the last eth_sendRawTransaction
    created_at: float = Field(default_factory=_now)
    updated_at: float = Field(default_factory=_now)

    @property
    def args(self) -> Any:
        return json.loads(self.args_json)

    @property
    def error_args(self) -> dict[str, Any] | None:
        return None if self.error_args_json is None else json.loads(self.error_args_json)

    def to_public(self) -> dict[str, Any]:
        """The operation as `GET /v1/operations/{id}` shows it (no raw tx)."""
        return {
            "id": self.id,
            "status": self.status,
            "org_code": self.org_code,
            "account": self.account,
            "contract": self.contract,
            "function": self.function,
            "idempotency_key": self.idempotency_key,
            "nonce": self.nonce,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "error": None
            if self.error_code is None
            else {"code": self.error_code, "args": self.error_args, "message": self.error_message},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class AccountNonce(SQLModel, table=True):
    """The next nonce the gateway will use for an account (never lower than the chain's pending count)."""

    __tablename__ = "account_nonces"

    account: str = Field(primary_key=True, max_length=42)
    next_nonce: int = 0
    updated_at: float = Field(default_factory=_now)


def update_rows(session: Session, changes: Sequence[dict[str, Any]], *, only_if: Sequence[str] = ()) -> None:
    """UPDATE operations by id in one executemany; every change has "id" and the same other keys.
    `only_if`: statuses a row must still have to change (another worker may have moved it on meanwhile).

    A Core statement: SQLAlchemy's ORM bulk update by primary key costs several times more per row.
    """
    if not changes:
        return
    table: Table = Operation.__table__  # type: ignore[assignment]
    columns = [key for key in changes[0] if key != "id"]
    statement = update(table).where(table.c.id == bindparam("row_id")).values({c: bindparam(c) for c in columns})
    if only_if:  # OR of equalities: an IN list cannot be expanded in an executemany
        statement = statement.where(or_(*(table.c.status == status for status in only_if)))
    session.execute(statement, [{**change, "row_id": change["id"]} for change in changes])


def create_outbox_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for the outbox. SQLite gets WAL, synchronous=FULL (a commit survives power loss) and
    `BEGIN IMMEDIATE`, so a transaction that reads then writes never loses its snapshot to another writer."""
    if database_url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
    engine = create_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
