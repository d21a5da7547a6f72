#!/usr/bin/env python
"""Gateway benchmark: single transactions signed and accepted per second, and devices registered per second.

Starts its own anvil (`--block-time`, 1 s by default; 0 for automine), seeds the demo consortium, puts the
registrar keys in a temporary keystore and drives a `Gateway` on a temporary SQLite outbox (or `--database`):

(a) `--txs` registerDevice writes from the five registrar accounts are queued (one commit), then timed from
    the first `process_once` until every one is accepted by the node (estimate, nonce, sign, persist, send);
(b) `--devices` devices in registerDevices batches of `--batch` are queued and timed until confirmed.

Gas is sized by `--gas` (default `cached`: node estimates by eth_createAccessList until a call shape is
settled, then reused; see chain_gateway.gas). Prints the median of `--runs` runs and, with `--json`, writes
the figures `gateway.single_tx_per_s` (target, DESIGN.md: >= 2,000 tx/s) and `gateway.batched_devices_per_s`
with the peak memory of this process (which runs the gateway) and anvil. Nothing is asserted.

    .venv/bin/python scripts/bench/gateway_bench.py [--txs 5000] [--devices 20000] [--batch 100] [--runs 3]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, PeakMemory, add_json_option, cpu_seconds, median, write_figures  # noqa: E402

from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium  # noqa: E402
from chain_gateway.gateway import Gateway, WriteRequest  # noqa: E402
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore  # noqa: E402
from chain_gateway.outbox import CONFIRMED, QUEUED, Operation, create_outbox_engine  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402

REGISTRARS = ("BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB", "BJ-CY")
SINGLE_TARGET = 2_000.0  # tx/s, DESIGN.md
GAS_CHOICES = ("cached", "access_list", "estimate")
# what py-spy showed of the gateway's process_once while (a) ran (2026-11-26, cached gas, shared machine)
GATEWAY_PROFILE = (
    "signing 17 % (libsecp256k1 9 %), writing the signed rows 16 % (executemany) and commits 8 % (fsync), "
    "following receipts 26 % (logs and blocks over JSON-RPC, matching rows), confirming 10 %, loading queued "
    "rows as ORM objects 7 %, encoding 5 %"
)
WHAT_MOVES_GATEWAY = (
    "signing in a worker process (the signed rows still committed before the send), following receipts in "
    "a second thread or process so that it overlaps signing, queued rows read as plain rows"
)
WHAT_MOVES_ANVIL = (
    "a node that accepts and mines faster (anvil validates each raw tx, mines 1 s blocks and serves the block "
    "receipts the gateway follows), or fewer node calls per transaction"
)


def bottleneck(value: float, gateway_ms: float, anvil_ms: float, load: float) -> str:
    """The measured limit of (a) and what would move it, from CPU per transaction of the two processes."""
    ceilings = (
        f"per transaction the gateway process used {gateway_ms:.2f} ms of CPU and anvil {anvil_ms:.2f} ms, "
        f"so with a core each they cap at ~{1000 / gateway_ms:,.0f} and ~{1000 / anvil_ms:,.0f} tx/s"
    )
    shared = f"; the machine was shared (load average {load:.1f} on 2 cores)" if load > 2.5 else ""
    if gateway_ms >= anvil_ms:
        limit = (
            f"the gateway process is the limit (py-spy: {GATEWAY_PROFILE}); what would move it: {WHAT_MOVES_GATEWAY}"
        )
    else:
        limit = f"anvil is the limit; what would move it: {WHAT_MOVES_ANVIL}"
    return f"{value:,.0f} tx/s: {ceilings}{shared}; {limit}."


def device(serial: int) -> list[object]:
    district = 110000 + serial // 1_000_000
    return [f"BJ-CAMR-{district}{serial % 1_000_000:06d}", 1, 2, district, 39_900_000, 116_400_000, 1_700_000_000,
            f'{{"pole":"P-{serial}"}}']  # fmt: skip


def count(gateway: Gateway, since: float, statuses: tuple[str, ...]) -> int:
    """Operations queued at or after `since` (unix seconds) that are in `statuses`: one indexed query."""
    with Session(gateway.engine) as session:
        return session.execute(
            select(func.count())
            .select_from(Operation)
            .where(Operation.status.in_(statuses), Operation.created_at >= since)  # type: ignore[attr-defined]
        ).scalar_one()


def queue(
    gateway: Gateway,
    chain: SeededConsortium,
    function: str,
    args: list[list[object]] | list[list[Any]],
    orgs: Sequence[str] = REGISTRARS,
) -> list[str]:
    """Queue DeviceRegistry.`function` writes in one commit, `orgs` in turn; returns the operation ids."""
    requests = [
        WriteRequest(
            org_code=org,
            account=chain.orgs[org].account,
            contract="DeviceRegistry",
            function=function,
            args=a,
        )
        for i, a in enumerate(args)
        for org in (orgs[i % len(orgs)],)
    ]
    return [op.id for op in gateway.enqueue_many(requests)]


def settle(gateway: Gateway, since: float, total: int, statuses: tuple[str, ...], timeout: float = 600.0) -> float:
    """Run process_once until the `total` operations queued since `since` are in `statuses`; returns seconds."""
    started = time.perf_counter()
    while count(gateway, since, statuses) < total:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"not settled in {timeout} s")
        if gateway.process_once() == 0:
            time.sleep(0.01)
    return time.perf_counter() - started


@dataclass
class SingleRun:
    """One run of (a): the rate, and CPU milliseconds per transaction of this process and of anvil."""

    tx_per_s: float
    gateway_cpu_ms: float
    anvil_cpu_ms: float


def run_single(gateway: Gateway, chain: SeededConsortium, first: int, txs: int, anvil_pid: int | None) -> SingleRun:
    since = time.time()
    queue(gateway, chain, "registerDevice", [[device(first + i)] for i in range(txs)])
    cpu, anvil_cpu = time.process_time(), cpu_seconds(anvil_pid)
    seconds = settle(gateway, since, txs, ("submitted", "mined", "confirmed", "failed"))
    run = SingleRun(
        txs / seconds,
        (time.process_time() - cpu) * 1000 / txs,
        (cpu_seconds(anvil_pid) - anvil_cpu) * 1000 / txs,
    )
    settle(gateway, since, txs, (CONFIRMED,))
    return run


def run_batches(gateway: Gateway, chain: SeededConsortium, first: int, devices: int, batch: int) -> float:
    started, since = time.perf_counter(), time.time()
    args = [[[device(first + i) for i in range(s, min(devices, s + batch))]] for s in range(0, devices, batch)]
    queue(gateway, chain, "registerDevices", args)
    settle(gateway, since, len(args), (CONFIRMED, "failed"))
    if count(gateway, since, (CONFIRMED,)) != len(args):
        raise RuntimeError("some batches failed")
    return devices / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=5_000)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--block-time", type=float, default=1.0, help="seconds; 0 for automine")
    parser.add_argument("--gas", choices=GAS_CHOICES, default="cached", help="how the gateway sizes gas")
    parser.add_argument("--database", default=None, help="outbox database URL (default: temporary SQLite)")
    add_json_option(parser)
    options = parser.parse_args()
    memory = PeakMemory()
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
            estimator = "estimate" if options.gas == "estimate" else "access_list"
            gateway = Gateway(
                settings,
                engine,
                chain.deployment,
                keystore,
                rpc,
                gas_estimator=estimator,
                gas_cache=options.gas == "cached",
            )
            gateway.create_tables()
            mode = "automine" if not options.block_time else f"block time {options.block_time:g} s"
            setup = f"anvil {mode}; outbox {engine.dialect.name}; {len(REGISTRARS)} registrars; gas {options.gas}"
            print(setup)
            single: list[SingleRun] = []
            batched: list[float] = []
            loads: list[float] = []
            serial = 0
            for run in range(options.runs):
                single.append(
                    run_single(gateway, chain, serial, options.txs, node.process.pid if node.process else None)
                )
                loads.append(os.getloadavg()[0])
                serial += options.txs
                batched.append(run_batches(gateway, chain, serial, options.devices, options.batch))
                serial += options.devices
                print(
                    f"run {run + 1}: {single[-1].tx_per_s:,.0f} tx/s signed and accepted (CPU per tx: gateway "
                    f"{single[-1].gateway_cpu_ms:.2f} ms, anvil {single[-1].anvil_cpu_ms:.2f} ms; load average "
                    f"{loads[-1]:.1f}); {batched[-1]:,.0f} devices/s confirmed"
                )
                memory.sample("bench", None)
                memory.sample("anvil", node.process.pid if node.process else None)
            rate = median([r.tx_per_s for r in single])
            print(f"(a) single transactions signed and accepted: median {rate:,.0f} tx/s "
                  f"({options.txs:,} registerDevice txs per run)")  # fmt: skip
            print(f"(b) devices registered until confirmed: median {median(batched):,.0f} devices/s "
                  f"({options.devices:,} devices in batches of {options.batch} per run)")  # fmt: skip
            print("peak memory (MiB): " + ", ".join(f"{k} {v:,.0f}" for k, v in memory.mib.items()))
            with Session(engine) as session:
                queued = session.execute(
                    select(func.count()).select_from(Operation).where(Operation.status == QUEUED)
                ).scalar_one()
            if queued:
                print(f"warning: {queued} operations still queued")
        finally:
            gateway.close()
            rpc.close()
            engine.dispose()
    write_figures(options.json, figures(options, single, batched, memory, setup, median(loads)))


def figures(
    options: argparse.Namespace,
    single: list[SingleRun],
    batched: list[float],
    memory: PeakMemory,
    setup: str,
    load: float,
) -> list[Figure]:
    command = " ".join(["scripts/bench/gateway_bench.py", *sys.argv[1:]]).replace(f" --json {options.json}", "")
    value = median([r.tx_per_s for r in single])
    gateway_ms, anvil_ms = median([r.gateway_cpu_ms for r in single]), median([r.anvil_cpu_ms for r in single])
    return [
        Figure(
            key="gateway.single_tx_per_s",
            what=f"gateway: single registerDevice txs signed and accepted by the node ({options.txs:,} per run)",
            value=value,
            unit="tx/s",
            runs=[r.tx_per_s for r in single],
            command=command,
            target=SINGLE_TARGET,
            peak_memory=dict(memory.mib),
            note=f"{setup}; CPU per tx: gateway {gateway_ms:.2f} ms, anvil {anvil_ms:.2f} ms",
            bottleneck="" if value >= SINGLE_TARGET else bottleneck(value, gateway_ms, anvil_ms, load),
        ),
        Figure(
            key="gateway.batched_devices_per_s",
            what=f"gateway: devices registered until confirmed (registerDevices, {options.batch} per tx, "
            f"{options.devices:,} per run)",
            value=median(batched),
            unit="devices/s",
            runs=batched,
            command=command,
            peak_memory=dict(memory.mib),
            note=f"{setup}; 1M in 4 min = 4,200/s",
        ),
    ]


if __name__ == "__main__":
    main()
