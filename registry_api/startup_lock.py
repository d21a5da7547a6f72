"""One API process at a time through start-up: tables, indexes and keys are made by the first, seen by the rest.

`uvicorn --workers N` starts N processes of the app at once, and each creates the tables it needs in its
lifespan. SQLAlchemy's `create_all` looks for a table, then creates it: two processes can both look, both create,
and the second fails (`table usage_receipts already exists`; on PostgreSQL a unique violation in `pg_type` or
`pg_class`). Holding this lock around start-up turns the race into a queue: the first process creates, the others
find everything there.

- PostgreSQL: a session-level advisory lock (`pg_advisory_lock`) on a connection of its own, so it covers
  processes on every host and is released if the process dies.
- SQLite file: `flock` on `<database>.startup.lock` beside the file (only processes of this host share a SQLite
  file); the kernel releases it if the process dies.
- SQLite in memory: nothing to share, no lock.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

__all__ = ["STARTUP_LOCK_KEY", "startup_lock"]

STARTUP_LOCK_KEY = zlib.crc32(b"dirchain registry API start-up")  # the advisory lock's key (int64 space)


@contextmanager
def startup_lock(database_url: str) -> Iterator[None]:
    """Hold the start-up lock of the database at `database_url` (waiting for another process holding it)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            yield
            return
        path = Path(url.database + ".startup.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            yield
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
            conn.commit()  # the lock belongs to the session, not to a transaction: no transaction held open
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()
