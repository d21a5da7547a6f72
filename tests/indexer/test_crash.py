"""Crashes inside a range's transaction leave the previous consistent state; a restart equals a fresh replay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from web3 import Web3

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer, create_mirror_engine
from indexer.snapshot import dump_mirror
from indexer.spatial import INDEX_NAME as SPATIAL_INDEX_NAME
from indexer.store import Store
from tests.indexer.support import assert_equals_fresh_replay, device_input, open_indexer, registry_call

ACTIVATE = 0


def _busy_chain(w3: Web3, chain: SeededConsortium) -> None:
    registry_call(w3, chain, "registerDevices", [device_input(i) for i in range(600, 620)])
    for i in range(600, 606):
        registry_call(w3, chain, "changeLifecycle", device_input(i)[0], ACTIVATE, "", "")
    registry_call(w3, chain, "updateDevice", device_input(600)[0], 110105, 1, 2, "{}")


def test_exception_inside_the_transaction_keeps_the_previous_state(
    chain: SeededConsortium,
    w3: Web3,
    anvil: AnvilNode,
    database_url: str,
    replay_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
        before = dump_mirror(indexer.engine)
        checkpoint = indexer.store.checkpoint()
        blocks = indexer.store.recent_blocks()
        _busy_chain(w3, chain)

        def failing(self: Store, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("injected crash after the range's rows were written")

        with monkeypatch.context() as patch:
            patch.setattr(Store, "_set_checkpoint", failing)
            with pytest.raises(RuntimeError, match="injected"):
                indexer.sync_once()
        assert dump_mirror(indexer.engine) == before
        assert indexer.store.checkpoint() == checkpoint
        assert indexer.store.recent_blocks() == blocks
        assert indexer.status.last_error is not None and indexer.status.fatal

        result = indexer.sync_once()
        assert result.to_block == w3.eth.block_number
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def _kill_inside_a_range(
    database_url: str, anvil: AnvilNode, chain: SeededConsortium, tmp_path: Path, *worker_args: str
) -> Any:
    """Run the crash worker until it hangs inside its third range's transaction, SIGKILL it; returns the
    checkpoint seen while it hung, below the range it was writing: the kill lands inside the transaction."""
    deployment_path = tmp_path / "deployment.json"
    write_deployment(chain.deployment, deployment_path)
    marker = tmp_path / "marker"
    args = [database_url, anvil.url, str(deployment_path), str(marker), "3", *worker_args]
    child = subprocess.Popen([sys.executable, "-m", "tests.indexer.crash_worker", *args], cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the worker exited before reaching the transaction"
            assert time.monotonic() < deadline, "the worker did not reach the transaction"
            time.sleep(0.02)
        with open_indexer(database_url, anvil.url, chain.deployment) as observer:
            in_flight = observer.store.checkpoint()
        os.kill(child.pid, signal.SIGKILL)
        writing = int(marker.read_text(encoding="utf-8"))  # the last block of the range in the open transaction
        assert in_flight is None or in_flight.block_number < writing, (in_flight, writing)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    return in_flight


def _index_names(database_url: str) -> set[str]:
    engine = create_mirror_engine(database_url)
    try:
        with engine.connect() as conn:
            sql = (
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
                if engine.dialect.name == "postgresql"
                else "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
            return set(conn.execute(text(sql)).scalars())
    finally:
        engine.dispose()


def test_process_killed_mid_range_restarts_to_a_fresh_replay(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str, tmp_path: Path
) -> None:
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        indexer.sync_once()
    _busy_chain(w3, chain)
    in_flight = _kill_inside_a_range(database_url, anvil, chain, tmp_path)
    assert in_flight is not None

    with open_indexer(database_url, anvil.url, chain.deployment) as restarted:
        assert restarted.store.checkpoint() == in_flight
        result = restarted.sync_once()
        assert result.from_block == in_flight.block_number + 1
        assert result.to_block == w3.eth.block_number
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)


def test_build_killed_mid_range_restarts_with_its_read_indexes_and_equals_a_fresh_replay(
    chain: SeededConsortium, w3: Web3, anvil: AnvilNode, database_url: str, replay_url: str, tmp_path: Path
) -> None:
    _busy_chain(w3, chain)
    with open_indexer(database_url, anvil.url, chain.deployment):
        pass  # tables and read indexes, no checkpoint: the worker builds the mirror from empty
    expected_indexes = _index_names(database_url)
    assert {"ix_devices_status", "ix_device_events_code", SPATIAL_INDEX_NAME} <= expected_indexes

    in_flight = _kill_inside_a_range(database_url, anvil, chain, tmp_path, "catch-up")
    assert in_flight is not None
    assert "ix_devices_status" not in _index_names(database_url)  # dropped for the build, which died

    indexer = Indexer(create_mirror_engine(database_url), JsonRpcClient([anvil.url]), chain.deployment)
    try:
        result = indexer.sync_once()  # no create_tables: the sync itself puts the indexes back
        assert result.from_block == in_flight.block_number + 1
        assert result.to_block == w3.eth.block_number
    finally:
        indexer.rpc.close()
        indexer.engine.dispose()
    assert _index_names(database_url) == expected_indexes
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)
