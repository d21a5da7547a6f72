"""Per-account nonces, persisted in `account_nonces` and handed out in contiguous blocks.

The next nonce is max(chain pending count, highest nonce in the outbox + 1, the persisted counter): the
chain floor covers transactions sent outside the gateway, the outbox floor covers a lost counter row.
One UPDATE ... RETURNING reserves a block atomically on SQLite and PostgreSQL, and its row lock
serialises concurrent workers until their transaction commits (or rolls back and gives the block back).
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from chain_gateway.outbox import AccountNonce, Operation

__all__ = ["NonceManager"]

_RESERVE = text(
    "UPDATE account_nonces SET next_nonce = "
    "CASE WHEN next_nonce > :floor THEN next_nonce ELSE :floor END + :count, updated_at = :now "
    "WHERE account = :account RETURNING next_nonce"
)


class NonceManager:
    """Reserves nonces inside the caller's transaction, so they are used if and only if it commits."""

    def reserve(self, session: Session, account: str, count: int, chain_pending: int) -> int:
        """Reserve `count` consecutive nonces for `account` and return the first one."""
        if count < 1:
            raise ValueError("count must be at least 1")
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(AccountNonce)
            .values(account=account, next_nonce=0, updated_at=time.time())
            .on_conflict_do_nothing(index_elements=["account"])
        )
        highest = session.execute(select(func.max(Operation.nonce)).where(Operation.account == account)).scalar()
        floor = max(chain_pending, -1 if highest is None else highest + 1)
        end = session.execute(
            _RESERVE, {"floor": floor, "count": count, "now": time.time(), "account": account}
        ).scalar_one()
        return int(end) - count

    def peek(self, session: Session, account: str) -> int | None:
        """The persisted next nonce of `account`, or None if the gateway never used it."""
        row = session.get(AccountNonce, account)
        return None if row is None else row.next_nonce
