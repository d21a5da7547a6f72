"""Exceptions of the indexer, split by whether trying again may help.

    IndexerError
    ├── IndexerRetryableError (+ ConnectionError)   try the same sync again later
    │   └── ChainMovedError                          the chain changed under a range being fetched
    └── IndexerFatalError (+ RuntimeError)          retrying cannot help; an operator must act
        ├── ReorgTooDeepError                        no stored block hash matches the chain any more
        ├── LogDecodeError (+ ValueError)            a log of a known event does not decode
        └── HandlerError (+ ValueError)              a handler cannot apply a log to the mirror

RPC failures stay `chain_gateway.errors.GatewayRPCError` (its `retryable` flag decides); `is_retryable`
folds both trees and SQL connection failures (`is_database_lost`) into one answer for the retry loops.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError

from chain_gateway.errors import GatewayRPCError

__all__ = [
    "ChainMovedError",
    "HandlerError",
    "IndexerError",
    "IndexerFatalError",
    "IndexerRetryableError",
    "LogDecodeError",
    "ReorgTooDeepError",
    "is_database_lost",
    "is_retryable",
]

# SQLSTATE classes of a database out of reach: 08 connection exception, 57P operator intervention (57P01 admin
# shutdown, 57P02 crash shutdown, 57P03 cannot connect now, as while PostgreSQL restarts)
_LOST_SQLSTATES = ("08", "57P")


class IndexerError(Exception):
    """Root of every error raised by the indexer."""


class IndexerRetryableError(IndexerError, ConnectionError):
    """A transient failure: the same sync may succeed when tried again."""


class ChainMovedError(IndexerRetryableError):
    """Blocks or logs fetched for one range do not belong to one chain (a reorg happened while fetching)."""


class IndexerFatalError(IndexerError, RuntimeError):
    """Trying again cannot help."""


class ReorgTooDeepError(IndexerFatalError):
    """The chain diverged below the oldest stored block hash (deeper than the finality depth): rebuild the mirror."""


class LogDecodeError(IndexerFatalError, ValueError):
    """A log whose topic is a known event could not be decoded with that event's ABI."""


class HandlerError(IndexerFatalError, ValueError):
    """A log contradicts the mirror (e.g. an update of an unknown device): not the mirror of this chain."""


def is_retryable(exc: BaseException) -> bool:
    """Whether `exc` is transient: retryable RPC errors, chain movement, lost or locked database connections."""
    if isinstance(exc, IndexerRetryableError):
        return True
    if isinstance(exc, GatewayRPCError):
        return exc.retryable
    if is_database_lost(exc):
        return True
    if isinstance(exc, DBAPIError):
        return "locked" in str(exc.orig).lower()
    return False


def is_database_lost(exc: BaseException) -> bool:
    """Whether `exc` says the database is out of reach (down, restarting, the connection dropped), not that a
    statement was wrong: SQLAlchemy's or the raw psycopg error.

    SQLAlchemy flags a connection lost under a statement (`connection_invalidated`), but not a connection that
    could not be opened (PostgreSQL stopped or starting up): psycopg's error says that one, without an SQLSTATE
    when the client gave up and with class 08 or 57P when the server refused.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return exc.sqlstate is None or exc.sqlstate.startswith(_LOST_SQLSTATES)
    return False
