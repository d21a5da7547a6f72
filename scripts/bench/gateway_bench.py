#!/usr/bin/env python
"""Gateway benchmark: single transactions signed and accepted per second, and devices registered per second.

Starts its own anvil (`--block-time`, 1 s by default; 0 for automine), seeds the demo consortium, puts the
registrar keys in a temporary keystore and drives a `Gateway` on a temporary SQLite outbox (or `--database`):

(a) `--txs` registerDevice writes from the five registrar accounts are queued (one commit), then timed from
    the first `process_once` until every one is accepted by the node (estimate, nonce, sign, persist, send);
(b) `--devices` devices in registerDevices batches of `--batch` are queued and timed until confirmed.

Prints the median of `--runs` runs. Target (DESIGN.md): >= 2,000 signed-and-accepted tx/s. Nothing is asserted.

    .venv/bin/python scripts/bench/gateway_bench.py [--txs 5000] [--devices 20000] [--batch 100] [--runs 3]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium  # noqa: E402
from chain_gateway.gateway import Gateway, WriteRequest  # noqa: E402
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore  # noqa: E402
from chain_gateway.outbox import CONFIRMED, QUEUED, Operation, create_outbox_engine  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402

REGISTRARS = ("BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB", "BJ-CY")


def device(serial: int) -> list[object]:
    district = 110000 + serial // 1_000_000
    return [f"BJ-CAMR-{district}{serial % 1_000_000:06d}", 1, 2, district, 39_900_000, 116_400_000, 1_700_000_000,
            f'{{"pole":"P-{serial}"}}']  # fmt: skip


def count(gateway: Gateway, ids: list[str], statuses: tuple[str, ...]) -> int:
    with Session(gateway.engine) as session:
        total = 0
        for start in range(0, len(ids), 500):
            total += session.execute(
                select(func.count())
                .select_from(Operation)
                .where(Operation.id.in_(ids[start : start + 500]), Operation.status.in_(statuses))  # type: ignore[attr-defined]
            ).scalar_one()
        return total


def queue(gateway: Gateway, chain: SeededConsortium, function: str, args: list[list[object]]) -> list[str]:
    requests = [
        WriteRequest(
            org_code=org,
            account=chain.orgs[org].account,
            contract="DeviceRegistry",
            function=function,
            args=a,
        )
        for i, a in enumerate(args)
        for org in (REGISTRARS[i % len(REGISTRARS)],)
    ]
    return [op.id for op in gateway.enqueue_many(requests)]


def settle(gateway: Gateway, ids: list[str], statuses: tuple[str, ...], timeout: float = 600.0) -> float:
    """Run process_once until every id is in `statuses`; returns seconds."""
    started = time.perf_counter()
    while count(gateway, ids, statuses) < len(ids):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"not settled in {timeout} s")
        if gateway.process_once() == 0:
            time.sleep(0.01)
    return time.perf_counter() - started


def run_single(gateway: Gateway, chain: SeededConsortium, first: int, txs: int) -> float:
    ids = queue(gateway, chain, "registerDevice", [[device(first + i)] for i in range(txs)])
    seconds = settle(gateway, ids, tuple(s for s in ("submitted", "mined", "confirmed", "failed")))
    settle(gateway, ids, (CONFIRMED,))
    return txs / seconds


def run_batches(gateway: Gateway, chain: SeededConsortium, first: int, devices: int, batch: int) -> float:
    started = time.perf_counter()
    args = [[[device(first + i) for i in range(s, min(devices, s + batch))]] for s in range(0, devices, batch)]
    ids = queue(gateway, chain, "registerDevices", args)
    settle(gateway, ids, (CONFIRMED,))
    if count(gateway, ids, (CONFIRMED,)) != len(ids):
        raise RuntimeError("some batches failed")
    return devices / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=5_000)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--block-time", type=float, default=1.0, help="seconds; 0 for automine")
    parser.add_argument("--gas-estimator", choices=["estimate", "access_list"], default="estimate")
    parser.add_argument("--database", default=None, help="outbox database URL (default: temporary SQLite)")
    options = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with (
        tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp,
        AnvilNode(block_time=options.block_time or None) as node,
    ):
        w3 = Web3(Web3.HTTPProvider(node.url))
        chain = seed_demo_consortium(w3)
        password = SecretStr("bench-only")
        keystore = Keystore(Path(tmp) / "keystore", password)
        for org in REGISTRARS:
            keystore.add(chain.orgs[org].private_key, DEV_SCRYPT_N)
        settings = Settings(
            rpc_urls=[node.url],
            chain_id=node.chain_id,
            database_url=options.database or f"sqlite:///{Path(tmp) / 'outbox.db'}",
            keystore_dir=Path(tmp) / "keystore",
            keystore_password=password,
            confirmations=0,
        )
        engine = create_outbox_engine(settings.database_url)
        rpc = JsonRpcClient(settings.rpc_urls, timeout=60)
        try:
            gateway = Gateway(settings, engine, chain.deployment, keystore, rpc, gas_estimator=options.gas_estimator)
            gateway.create_tables()
            mode = "automine" if not options.block_time else f"block time {options.block_time:g} s"
            print(
                f"anvil {mode}; outbox {engine.dialect.name}; {len(REGISTRARS)} registrar accounts; "
                f"gas by {options.gas_estimator}"
            )
            single: list[float] = []
            batched: list[float] = []
            serial = 0
            for run in range(options.runs):
                single.append(run_single(gateway, chain, serial, options.txs))
                serial += options.txs
                batched.append(run_batches(gateway, chain, serial, options.devices, options.batch))
                serial += options.devices
                print(
                    f"run {run + 1}: {single[-1]:,.0f} tx/s signed and accepted; {batched[-1]:,.0f} devices/s confirmed"
                )
            print(f"(a) single transactions signed and accepted: median {statistics.median(single):,.0f} tx/s "
                  f"({options.txs:,} registerDevice txs per run)")  # fmt: skip
            print(f"(b) devices registered until confirmed: median {statistics.median(batched):,.0f} devices/s "
                  f"({options.devices:,} devices in batches of {options.batch} per run)")  # fmt: skip
            with Session(engine) as session:
                queued = session.execute(
                    select(func.count()).select_from(Operation).where(Operation.status == QUEUED)
                ).scalar_one()
            if queued:
                print(f"warning: {queued} operations still queued")
        finally:
            rpc.close()
            engine.dispose()


if __name__ == "__main__":
    main()
