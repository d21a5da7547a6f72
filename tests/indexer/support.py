"""Helpers of the indexer tests: an indexer on a database, device transactions, the replay comparison."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eth_account import Account
from web3 import Web3

from chain_gateway.deployments import Deployment, send_transaction
from chain_gateway.devnet import SeededConsortium
from chain_gateway.governance import contract
from chain_gateway.rpc import JsonRpcClient
from indexer.service import Indexer, create_mirror_engine
from indexer.snapshot import dump_mirror, mirror_differences

__all__ = [
    "REGISTRAR_ORG",
    "assert_equals_fresh_replay",
    "device_input",
    "open_indexer",
    "registry_call",
]

REGISTRAR_ORG = "BJ-PSB"
PLANNED, ACTIVE = 1, 2  # IDeviceRegistry.Status


def device_input(
    serial: int, *, district: int = 110105, status: int = PLANNED, lat: int = 39_921_000, lon: int = 116_443_000
) -> tuple[Any, ...]:
    """A type 1 (camera.road) DeviceInput: code BJ-CAMR-<district><6-digit serial>."""
    code = f"BJ-CAMR-{district:06d}{serial:06d}"
    attributes = json.dumps({"brand": "hik", "pole": f"P-{serial}"}, sort_keys=True, separators=(",", ":"))
    return (code, 1, status, district, lat + serial, lon - serial, 1_700_000_000, attributes)


def registry_call(w3: Web3, chain: SeededConsortium, function: str, *args: Any) -> dict[str, Any]:
    """Send DeviceRegistry.`function`(*args) as the BJ-PSB registrar and return the receipt."""
    key = chain.orgs[REGISTRAR_ORG].private_key
    registry = contract(w3, chain.deployment, "DeviceRegistry")
    tx = getattr(registry.functions, function)(*args).build_transaction({"from": Account.from_key(key).address})
    return send_transaction(w3, key, tx)


@contextmanager
def open_indexer(database_url: str, rpc_url: str, deployment: Deployment, **kwargs: Any) -> Iterator[Indexer]:
    """An indexer with tables created, its engine and RPC client closed afterwards."""
    engine = create_mirror_engine(database_url)
    rpc = JsonRpcClient([rpc_url])
    try:
        indexer = Indexer(engine, rpc, deployment, **kwargs)
        indexer.create_tables()
        yield indexer
    finally:
        rpc.close()
        engine.dispose()


def assert_equals_fresh_replay(database_url: str, replay_url: str, rpc_url: str, deployment: Deployment) -> None:
    """Index the chain from scratch into `replay_url` and assert every mirror table equals `database_url`'s."""
    with open_indexer(replay_url, rpc_url, deployment) as fresh:
        fresh.sync_once()
        expected = dump_mirror(fresh.engine)
    engine = create_mirror_engine(database_url)
    try:
        actual = dump_mirror(engine)
    finally:
        engine.dispose()
    assert mirror_differences(actual, expected) == {}
    assert actual == expected
