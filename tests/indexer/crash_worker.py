"""A child process for the crash test: index, and hang inside the Nth range's transaction until killed.

Usage: python -m tests.indexer.crash_worker <database url> <rpc url> <deployment json> <marker file> <n> [catch-up]
(catch-up: the ranges are fetched by a child process, as in a large sync, instead of a thread).
The Nth call of `Store._set_checkpoint` (the last write of a range's transaction, after all its rows) writes
the range's last block number to the marker file and sleeps, so the parent can SIGKILL the process with the
transaction open (and check that the range is not visible to another connection).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from chain_gateway.deployments import load_deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer, create_mirror_engine
from indexer.store import Store


def main(database_url: str, rpc_url: str, deployment_path: str, marker: str, hang_at: int, catch_up: bool) -> None:
    calls = 0
    original = Store._set_checkpoint

    def hanging(self: Store, conn: Any, number: int, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        original(self, conn, number, *args, **kwargs)
        if calls == hang_at:
            written = Path(marker + ".tmp")
            written.write_text(str(number), encoding="utf-8")
            written.replace(marker)  # the parent never sees the marker empty
            time.sleep(600)

    Store._set_checkpoint = hanging  # type: ignore[method-assign]
    engine = create_mirror_engine(database_url)
    rpc = JsonRpcClient([rpc_url])
    deployment = load_deployment(Path(deployment_path))
    indexer = Indexer(engine, rpc, deployment, max_block_range=2, process_min_blocks=0 if catch_up else 10**9)
    indexer.create_tables()
    indexer.sync_once()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:] == ["catch-up"])
