#!/usr/bin/env python
"""Clique benchmark: device registrations confirmed per second on a real 4-signer geth Clique network.

Starts a fresh network in a temporary directory (geth from `.cache/geth`, 1 s blocks, 30M gas limit), deploys
and seeds the demo consortium by transactions, puts the demo orgs' keys in a temporary keystore and runs the
service's `Gateway` and `Indexer` in threads (as `dirchain serve` does) on one database, with the service's
settings for Clique: `DIRCHAIN_CONFIRMATIONS = safe_confirmations(4)` (3) and `rpc_urls` of nodes 1 and 2.
Each run measures, one phase after another:

(a) `--singles` `registerDevice` writes from `--orgs` registrar orgs, queued in one commit, until every one
    is confirmed; then `--devices` devices in `registerDevices` batches of each `--batch` size, likewise.
    Two rates: end to end (first enqueue to last confirmation) and on chain (devices over the wall time from
    the block before the first that carries them to the last). The ceiling the chain allows is printed next to
    them: gas per device from the receipts, whole transactions per block (geth's miner adds a transaction while
    the block's gas left covers its gas *limit*, which then takes the gas it used) and 1 block a second;
(b) latency from enqueue to confirmed of single writes arriving steadily (`--paced-rate` per second for
    `--paced-seconds`, each simulated first as the API does), p50/p99; and of the bursts of (a);
(c) indexer lag in blocks (head of the indexer's node minus the mirror's committed checkpoint, sampled every
    0.1 s through the whole run), p99.

Prints every run and the median of `--runs` runs; `--json` writes the figures (keys `clique.*`). Nodes,
threads and PostgreSQL (`--database postgresql`) are stopped on failure and on Ctrl-C. Nothing is asserted.

    .venv/bin/python scripts/bench/clique_bench.py [--singles 2000] [--devices 20000] [--batch 200,250] [--runs 3]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, add_json_option, cpu_seconds, median, write_figures  # noqa: E402
from gateway_bench import GAS_CHOICES, REGISTRARS, device, queue  # noqa: E402

from chain_gateway.clique import (  # noqa: E402
    BLOCK_PERIOD_S,
    GAS_LIMIT,
    CliqueNetwork,
    deploy_demo,
)
from chain_gateway.devnet import SeededConsortium  # noqa: E402
from chain_gateway.finality import safe_confirmations  # noqa: E402
from chain_gateway.gateway import Gateway  # noqa: E402
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore  # noqa: E402
from chain_gateway.outbox import CONFIRMED, FAILED, Operation  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402
from indexer.models import Device  # noqa: E402
from indexer.service import Indexer  # noqa: E402
from tests.network.conftest import running  # noqa: E402 - each service's loop in a thread, as `dirchain serve`
from tests.support.postgres import PostgresServer  # noqa: E402

SIGNERS = 4
SAMPLE_SECONDS = 0.1  # lag and head sampling period
RECEIPT_SAMPLE = 20  # receipts read per phase for gas used per device
SQL_CHUNK = 500  # ids per IN (...) list
PASSWORD = SecretStr("bench-only")


# ---------------------------------------------------------------- the network and the service


@contextmanager
def clique_network(tmp: Path) -> Iterator[tuple[CliqueNetwork, SeededConsortium, Path]]:
    """A fresh 4-signer network with the demo consortium; every node stopped on the way out, whatever happens."""
    network = CliqueNetwork.launch(tmp / "network", SIGNERS)
    try:
        deployment_path = network.root / "deployment.json"
        consortium = deploy_demo(network, deployment_path)
        yield network, consortium, deployment_path
    finally:
        network.stop()


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """The URL of the service's database (outbox and mirror): an SQLite file, or a private PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'dirchain.db'}"
        return
    server = PostgresServer().start()
    try:
        yield server.create_database("clique_bench")
    finally:
        server.stop()


class Sampler:
    """Every 0.1 s: the head of the indexer's node and the mirror's committed checkpoint (a thread of its own).

    Keeps the wall time at which each block number was first seen, so rates are taken on wall time (Clique
    header timestamps are whole seconds and an out-of-turn block keeps its parent's time + period).
    """

    def __init__(self, rpc: JsonRpcClient, indexer: Indexer) -> None:
        self.rpc, self.indexer = rpc, indexer
        self.lags: list[int] = []
        self.seen: dict[int, float] = {}  # block number -> unix seconds first seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                head = self.rpc.block_number()
                checkpoint = self.indexer.store.checkpoint()
            except Exception:  # a sample lost to a busy node is not a result; the next one counts
                continue
            self.seen.setdefault(head, time.time())
            if checkpoint is not None:
                self.lags.append(max(0, head - checkpoint.block_number))

    def lags_since(self, start: int) -> list[int]:
        return self.lags[start:]

    def seen_at(self, block: int) -> float:
        """Wall time block `block` was first seen (the nearest earlier block's if it was passed over)."""
        earlier = [n for n in self.seen if n <= block]
        return self.seen[max(earlier)] if earlier else min(self.seen.values())


# ---------------------------------------------------------------- one phase


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    devices: int
    per_tx: int
    e2e_per_s: float  # devices / (last confirmation - first enqueue)
    chain_per_s: float  # devices / wall time of the blocks that carry them
    blocks_per_s: float  # measured on wall time (the Clique period is 1 s: a slower machine stretches it)
    latency_ms: list[float]
    gas_used_per_device: float
    gas_limit_per_tx: int
    block_fill: float  # gas used / gas limit over the blocks that carry them
    txs_in_blocks: dict[int, int] = field(default_factory=dict)  # transactions in a block -> blocks
    cpu_ms_per_device: dict[str, float] = field(default_factory=dict)

    @property
    def ceiling_by_gas(self) -> float:
        """Devices/s if every 1 s block were filled to the last unit of gas with these devices."""
        return GAS_LIMIT / self.gas_used_per_device / BLOCK_PERIOD_S

    @property
    def txs_per_block(self) -> int:
        """Whole transactions a block takes: geth's miner adds one while the gas left covers its gas *limit*
        (the gateway's estimate x 1.25 + 20,000), and each then takes only the gas it used."""
        used = self.gas_used_per_device * self.per_tx
        return max(0, int((GAS_LIMIT - self.gas_limit_per_tx) // used) + 1)

    @property
    def ceiling_packed(self) -> float:
        """Devices/s with whole transactions in every 1 s block, packed as geth's miner does (`txs_per_block`)."""
        return self.txs_per_block * self.per_tx / BLOCK_PERIOD_S


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]) if ordered else math.nan


def fetch_rows(gateway: Gateway, ids: Sequence[str]) -> list[Operation]:
    rows: list[Operation] = []
    with Session(gateway.engine) as session:
        for i in range(0, len(ids), SQL_CHUNK):
            chunk = ids[i : i + SQL_CHUNK]
            rows += session.execute(select(Operation).where(Operation.id.in_(chunk))).scalars().all()  # type: ignore[attr-defined]
    return rows


def settled_count(gateway: Gateway, ids: Sequence[str]) -> int:
    with Session(gateway.engine) as session:
        return sum(
            session.execute(
                select(func.count())
                .select_from(Operation)
                .where(Operation.id.in_(ids[i : i + SQL_CHUNK]), Operation.status.in_((CONFIRMED, FAILED)))  # type: ignore[attr-defined]
            ).scalar_one()
            for i in range(0, len(ids), SQL_CHUNK)
        )


def wait_settled(gateway: Gateway, ids: Sequence[str], timeout: float) -> list[Operation]:
    """The rows of `ids` once every one is confirmed; raises if any failed or time ran out."""
    deadline = time.monotonic() + timeout
    while settled_count(gateway, ids) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(ids) - settled_count(gateway, ids)} of {len(ids)} writes not settled in {timeout} s"
            )
        time.sleep(0.2)
    rows = fetch_rows(gateway, ids)
    failed = [r for r in rows if r.status != CONFIRMED]
    if failed:
        raise RuntimeError(f"{len(failed)} writes failed, first: {failed[0].error_code} {failed[0].error_message}")
    return rows


class CpuMeter:
    """CPU seconds of this process (gateway, indexer, sampler) and of the geth nodes over a phase."""

    def __init__(self, network: CliqueNetwork) -> None:
        self.pids = {f"geth{n.index}": n.pid for n in network.nodes}
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {"service": time.process_time(), **{name: cpu_seconds(pid) for name, pid in self.pids.items()}}

    def per_device_ms(self, devices: int) -> dict[str, float]:
        end = self._read()
        spent = {name: (end[name] - self.start[name]) * 1000 / devices for name in end}
        geth = sum(v for k, v in spent.items() if k.startswith("geth"))
        return {"service": spent["service"], "geth (4 nodes)": geth}


def measure(
    name: str,
    rows: list[Operation],
    started: float,
    per_tx: int,
    rpc: JsonRpcClient,
    sampler: Sampler,
    cpu: CpuMeter,
) -> Phase:
    """The figures of one phase from its confirmed rows, their receipts and blocks."""
    devices = len(rows) * per_tx
    first = min(r.block_number or 0 for r in rows)
    last = max(r.block_number or 0 for r in rows)
    span = sampler.seen_at(last) - sampler.seen_at(first - 1)
    blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(first, last + 1)])
    receipts = rpc.batch([("eth_getTransactionReceipt", [r.tx_hash]) for r in rows[:RECEIPT_SAMPLE]])
    gas_used = statistics.fmean(int(r["gasUsed"], 16) for r in receipts)
    return Phase(
        name=name,
        devices=devices,
        per_tx=per_tx,
        e2e_per_s=devices / (max(r.updated_at for r in rows) - started),
        chain_per_s=devices / span if span > 0 else math.nan,
        blocks_per_s=(last - first + 1) / span if span > 0 else math.nan,
        latency_ms=[(r.updated_at - r.created_at) * 1000 for r in rows],
        gas_used_per_device=gas_used / per_tx,
        gas_limit_per_tx=int(statistics.median(r.gas_limit or 0 for r in rows)),
        block_fill=sum(int(b["gasUsed"], 16) for b in blocks) / (len(blocks) * GAS_LIMIT),
        txs_in_blocks=dict(sorted(Counter(len(b["transactions"]) for b in blocks).items())),
        cpu_ms_per_device=cpu.per_device_ms(devices),
    )


def burst(
    gateway: Gateway,
    chain: SeededConsortium,
    orgs: Sequence[str],
    function: str,
    args: list[list[Any]],
) -> tuple[list[str], float]:
    """Queue the writes in one commit, orgs in turn (as a bulk import would); returns (ids, unix start)."""
    started = time.time()
    return queue(gateway, chain, function, args, orgs), started


def paced(
    gateway: Gateway, chain: SeededConsortium, orgs: Sequence[str], first: int, rate: float, seconds: float
) -> tuple[list[str], float]:
    """Single writes enqueued one by one at `rate` per second (each simulated, as the API does)."""
    ids: list[str] = []
    started = time.time()
    clock = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = clock + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        org = orgs[i % len(orgs)]
        op = gateway.enqueue(
            org_code=org,
            account=chain.orgs[org].account,
            contract="DeviceRegistry",
            function="registerDevice",
            args=[device(first + i)],
        )
        ids.append(op.id)
    return ids, started


def mirrored(indexer: Indexer) -> int:
    with Session(indexer.store.engine) as session:
        return session.execute(select(func.count()).select_from(Device)).scalar_one()


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    phases: dict[str, Phase]
    paced: Phase
    lag_p99: float
    lag_max: int
    load: float


def one_run(
    options: argparse.Namespace,
    network: CliqueNetwork,
    chain: SeededConsortium,
    gateway: Gateway,
    indexer: Indexer,
    rpc: JsonRpcClient,
    sampler: Sampler,
    serial: int,
) -> tuple[Run, int]:
    orgs = REGISTRARS[: options.orgs]
    lag_start, load = len(sampler.lags), os.getloadavg()[0]
    timeout = 300 + options.devices / 50
    phases: dict[str, Phase] = {}

    cpu = CpuMeter(network)
    ids, started = burst(gateway, chain, orgs, "registerDevice", [[device(serial + i)] for i in range(options.singles)])
    serial += options.singles
    rows = wait_settled(gateway, ids, timeout)
    phases["single"] = measure("single", rows, started, 1, rpc, sampler, cpu)

    for size in options.batch:
        cpu = CpuMeter(network)
        args = [
            [[device(serial + i) for i in range(s, min(options.devices, s + size))]]
            for s in range(0, options.devices, size)
        ]
        ids, started = burst(gateway, chain, orgs, "registerDevices", args)
        serial += options.devices
        rows = wait_settled(gateway, ids, timeout)
        phases[f"batch {size}"] = measure(f"batch {size}", rows, started, size, rpc, sampler, cpu)

    cpu = CpuMeter(network)
    ids, started = paced(gateway, chain, orgs, serial, options.paced_rate, options.paced_seconds)
    serial += len(ids)
    rows = wait_settled(gateway, ids, timeout)
    paced_phase = measure("paced", rows, started, 1, rpc, sampler, cpu)

    lags = sampler.lags_since(lag_start)
    return Run(phases, paced_phase, percentile(lags, 0.99), max(lags, default=0), load), serial


def print_run(number: int, run: Run) -> None:
    print(f"run {number} (1-minute load average at its start {run.load:.2f}):")
    for p in run.phases.values():
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in p.cpu_ms_per_device.items())
        print(
            f"  {p.name:>10}: {p.devices:,} devices, {p.e2e_per_s:,.0f}/s end to end, {p.chain_per_s:,.0f}/s on chain "
            f"({p.blocks_per_s:.2f} blocks/s, blocks {p.block_fill:.0%} full, blocks by transactions in them "
            f"{p.txs_in_blocks}); ceiling {p.ceiling_packed:,.0f}/s "
            f"({p.txs_per_block} transactions of gas limit {p.gas_limit_per_tx:,} per block; by gas used "
            f"{p.gas_used_per_device:,.0f}/device: {p.ceiling_by_gas:,.0f}/s); burst latency p50 "
            f"{percentile(p.latency_ms, 0.5) / 1000:.1f} s, p99 {percentile(p.latency_ms, 0.99) / 1000:.1f} s; "
            f"CPU ms/device: {cpu}"
        )
    q = run.paced
    print(
        f"       paced: {q.devices} single writes, latency enqueue -> confirmed p50 "
        f"{percentile(q.latency_ms, 0.5):,.0f} ms, p99 {percentile(q.latency_ms, 0.99):,.0f} ms"
    )
    print(f"  indexer lag: p99 {run.lag_p99:.0f} blocks, max {run.lag_max}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as the description, and each option's default."""


def parse_batches(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("batch sizes are positive integers, comma-separated")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--singles", type=int, default=2_000, help="registerDevice writes per run (phase a)")
    parser.add_argument("--orgs", type=int, default=4, choices=range(1, len(REGISTRARS) + 1), help="registrar orgs")
    parser.add_argument("--devices", type=int, default=20_000, help="devices per run for each batch size (phase a)")
    parser.add_argument(
        "--batch", type=parse_batches, default="200,250", help="devices per registerDevices, comma-separated"
    )
    parser.add_argument("--paced-rate", type=float, default=10.0, help="single writes per second (phase b)")
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="length of the paced phase (b)")
    parser.add_argument("--runs", type=int, default=3, help="runs on the same network; figures are their median")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite", help="outbox and mirror")
    parser.add_argument("--gas", choices=GAS_CHOICES, default="estimate", help="how the gateway sizes gas")
    add_json_option(parser)
    options = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # a kill (SIGTERM) unwinds like Ctrl-C, so the finally blocks stop the nodes and PostgreSQL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"1-minute load average before the network starts: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="clique-bench-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.monotonic()
        with clique_network(tmp) as (network, chain, deployment_path), database(options.database, tmp) as url:
            print(f"network up and demo consortium deployed in {time.monotonic() - started:.0f} s")
            keystore = Keystore(tmp / "keystore", PASSWORD)
            for org in chain.orgs.values():
                keystore.add(org.private_key, DEV_SCRYPT_N)
            settings = Settings(
                rpc_urls=[network.nodes[0].url, network.nodes[1].url],
                chain_id=chain.deployment["chain_id"],
                deployments_path=deployment_path,
                database_url=url,
                keystore_dir=tmp / "keystore",
                keystore_password=PASSWORD,
                confirmations=safe_confirmations(SIGNERS),
                gas_estimator="estimate" if options.gas == "estimate" else "access_list",
                gas_cache=options.gas == "cached",
            )
            print(
                f"service: confirmations {settings.confirmations}, gas {options.gas}, {options.database}, gateway "
                f"poll {settings.gateway_poll_seconds} s, indexer poll {settings.indexer_poll_seconds} s, "
                f"{options.orgs} registrar orgs, nodes 1 and 2"
            )
            gateway = Gateway.from_settings(settings)
            indexer = Indexer.from_settings(settings)
            rpc = JsonRpcClient([network.nodes[0].url], timeout=60)
            try:
                gateway.create_tables()
                indexer.create_tables()
                indexer.sync_once()
                with running(gateway, indexer), Sampler(rpc, indexer) as sampler:
                    serial, before = 0, mirrored(indexer)
                    for number in range(1, options.runs + 1):
                        run, serial = one_run(options, network, chain, gateway, indexer, rpc, sampler, serial)
                        runs.append(run)
                        print_run(number, run)
                    wanted = serial + before
                    deadline = time.monotonic() + 60
                    while mirrored(indexer) < wanted and time.monotonic() < deadline:
                        time.sleep(0.5)
                    print(f"mirror: {mirrored(indexer) - before:,} of {serial:,} registered devices")
            finally:
                rpc.close()
                gateway.close()
                indexer.close()
    report(runs)
    write_figures(options.json, figures(options, runs))


def joined(values: Sequence[float], spec: str = ",.0f") -> str:
    return " / ".join(format(v, spec) for v in values)


def report(runs: list[Run]) -> None:
    print(f"median of {len(runs)} run(s):")
    for name in runs[0].phases:
        phases = [r.phases[name] for r in runs]
        p = phases[0]
        print(
            f"  {name:>10}: {median([q.chain_per_s for q in phases]):,.0f} devices/s on chain "
            f"(runs {joined([q.chain_per_s for q in phases])}), "
            f"{median([q.e2e_per_s for q in phases]):,.0f}/s end to end "
            f"(runs {joined([q.e2e_per_s for q in phases])}); "
            f"ceiling {median([q.ceiling_packed for q in phases]):,.0f}/s packed "
            f"({p.txs_per_block} x {p.per_tx} per block), {median([q.ceiling_by_gas for q in phases]):,.0f}/s by gas "
            f"used ({median([q.gas_used_per_device for q in phases]):,.0f} gas/device)"
        )
    p50 = [percentile(r.paced.latency_ms, 0.5) for r in runs]
    p99 = [percentile(r.paced.latency_ms, 0.99) for r in runs]
    print(
        f"  latency enqueue -> confirmed (paced singles): p50 {median(p50):,.0f} ms (runs {joined(p50, '.0f')}), "
        f"p99 {median(p99):,.0f} ms (runs {joined(p99, '.0f')})"
    )
    lags = [r.lag_p99 for r in runs]
    print(f"  indexer lag p99: {median(lags):.0f} blocks (runs {joined(lags, '.0f')})")


def figures(options: argparse.Namespace, runs: list[Run]) -> list[Figure]:
    command = " ".join(["scripts/bench/clique_bench.py", *sys.argv[1:]]).replace(f" --json {options.json}", "")
    setup = f"4-signer geth Clique, 1 s blocks, 30M gas, 3 confirmations, {options.database}"
    out: list[Figure] = []
    for name in runs[0].phases:
        phases = [r.phases[name] for r in runs]
        key = "single" if name == "single" else f"batch_{phases[0].per_tx}"
        out.append(
            Figure(
                key=f"clique.{key}_devices_per_s",
                what=f"Clique: devices confirmed per second, {name} ({phases[0].devices:,} per run, on chain)",
                value=median([q.chain_per_s for q in phases]),
                unit="devices/s",
                runs=[q.chain_per_s for q in phases],
                command=command,
                note=f"{setup}; ceiling {median([q.ceiling_packed for q in phases]):,.0f}/s",
            )
        )
    for fraction, label in ((0.5, "p50"), (0.99, "p99")):
        values = [percentile(r.paced.latency_ms, fraction) for r in runs]
        out.append(
            Figure(
                key=f"clique.latency_{label}_ms",
                what=f"Clique: latency enqueue to confirmed, {label} ({options.paced_rate:g} single writes/s)",
                value=median(values),
                unit="ms",
                runs=values,
                command=command,
                better="lower",
                note=setup,
            )
        )
    out.append(
        Figure(
            key="clique.indexer_lag_blocks",
            what="Clique: indexer lag p99 (head - checkpoint, sampled every 0.1 s)",
            value=median([r.lag_p99 for r in runs]),
            unit="blocks",
            runs=[r.lag_p99 for r in runs],
            command=command,
            better="lower",
            note=setup,
        )
    )
    return out


if __name__ == "__main__":
    main()
