"""Helpers for the gateway tests: device inputs, draining the outbox, reading the registry's events."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eth_utils import keccak
from web3 import Web3

from chain_gateway.deployments import Deployment
from chain_gateway.devnet import SeededConsortium
from chain_gateway.gateway import Gateway
from chain_gateway.outbox import CONFIRMED, FAILED, Operation

__all__ = ["BUILT_AT", "TERMINAL", "device", "drain", "enqueue_device", "registered_count", "wait_until"]

BUILT_AT = 1_700_000_000  # unix seconds, before any anvil block
TERMINAL = (CONFIRMED, FAILED)
DEVICE_REGISTERED_TOPIC = (
    "0x"
    + keccak(text="DeviceRegistered(bytes32,uint32,string,uint16,uint8,uint32,int32,int32,uint40,bytes32,string)").hex()
)


def device(serial: int, status: int = 1, district: int = 110105) -> list[Any]:
    """A `DeviceInput` (as JSON args) of a road camera: code "BJ-CAMR-" + district + 6-digit serial."""
    return [f"BJ-CAMR-{district}{serial:06d}", 1, status, district, 39_900_000, 116_400_000, BUILT_AT, '{"k":1}']


def enqueue_device(
    gateway: Gateway, chain: SeededConsortium, serial: int, org: str = "BJ-PSB", **kwargs: Any
) -> Operation:
    """Queue `device(serial)`'s registration for `org`; `kwargs` go to `Gateway.enqueue` (simulate, idempotency_key)."""
    return gateway.enqueue(
        org_code=org,
        account=chain.orgs[org].account,
        contract="DeviceRegistry",
        function="registerDevice",
        args=[device(serial)],
        **kwargs,
    )


def drain(gateway: Gateway, ops: Sequence[Operation], timeout: float = 60.0) -> list[Operation]:
    """Run `process_once` until every op is confirmed or failed; return them fresh from the outbox."""
    deadline = time.monotonic() + timeout
    while True:
        current = [gateway.get_operation(op.id) for op in ops]
        if all(c is not None and c.status in TERMINAL for c in current):
            return [c for c in current if c is not None]
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled: {[(c.id, c.status) for c in current if c]}")
        if gateway.process_once() == 0:
            time.sleep(0.02)


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.1, what: Any = "condition") -> None:
    """Poll `predicate` until true; on timeout fail with `what` (a string, or a callable giving the state then)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what() if callable(what) else what} not met in {timeout} s")
        time.sleep(interval)


def registered_count(w3: Web3, deployment: Deployment, code: str) -> int:
    """How many DeviceRegistered events the chain holds for `code` (1 means registered exactly once)."""
    logs = w3.eth.get_logs(
        {
            "address": deployment["contracts"]["DeviceRegistry"]["address"],
            "fromBlock": deployment["deploy_block"],
            "toBlock": "latest",
            "topics": [DEVICE_REGISTERED_TOPIC, "0x" + keccak(text=code).hex()],
        }
    )
    return len(logs)
