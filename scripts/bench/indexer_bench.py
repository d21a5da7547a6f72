#!/usr/bin/env python
"""Indexer benchmark: catch-up events/s into SQLite and PostgreSQL, and live lag in blocks (median of runs).

Catch-up: starts its own anvil (automine) and a private PostgreSQL, seeds the demo consortium, registers
`--devices` devices with registerDevices batches of `--batch` (signed locally, sent as batched raw transactions,
one transaction per block), then indexes the whole chain from the deploy block into a fresh database `--runs`
times per backend, timed from `sync_once` to its return (tables created before).

Live lag: a second anvil with 1 s blocks and the demo consortium; an indexer thread (SQLite, the service's
default poll of 0.5 s) follows it while registrations arrive at a steady `--live-rate` devices/s for
`--live-seconds`; every 0.1 s the node's head and the committed checkpoint are read and their distance
(blocks) is sampled. The figure is the p99 of the samples of each run (the max is printed too).

Targets (DESIGN.md): >= 30,000 events/s into SQLite, >= 20,000 into PostgreSQL; live lag <= 2 blocks.
Nothing is asserted.

    .venv/bin/python scripts/bench/indexer_bench.py [--devices 100000] [--runs 3] [--json out.json]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, PeakMemory, add_json_option, median, write_figures  # noqa: E402

from chain_gateway.deployments import Deployment  # noqa: E402
from chain_gateway.devnet import AnvilNode, seed_demo_consortium  # noqa: E402
from chain_gateway.governance import contract  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402
from indexer.service import Indexer, create_mirror_engine  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

SEND_BATCH = 10  # raw transactions per JSON-RPC batch (anvil refuses very large bodies)
SAMPLE_SECONDS = 0.1  # live lag sampling period
COMMAND = ".venv/bin/python scripts/bench/indexer_bench.py"
TARGETS = {"sqlite": 30_000.0, "postgresql": 20_000.0}
LAG_TARGET_BLOCKS = 2.0


def device(serial: int) -> tuple[object, ...]:
    district = 110105
    attributes = json.dumps({"brand": "hik", "model": "DS-2CD", "pole": f"P-{serial}"}, separators=(",", ":"))
    return (f"BJ-CAMR-{district}{serial:06d}", 1, 2, district, 39_900_000 + serial, 116_400_000 - serial,
            1_700_000_000, attributes)  # fmt: skip


def sign_registrations(w3: Web3, deployment: Deployment, key: str, first: int, devices: int, batch: int) -> list[str]:
    """Signed registerDevices transactions for serials `first..first+devices`, in nonce order (0x-hex)."""
    registry = contract(w3, deployment, "DeviceRegistry")
    sender = Account.from_key(key).address
    nonce = w3.eth.get_transaction_count(sender)
    sample = [device(first + i) for i in range(min(batch, devices))]
    gas = int(registry.functions.registerDevices(sample).estimate_gas({"from": sender}) * 1.3)
    gas_price = w3.eth.gas_price * 2
    chain_id = w3.eth.chain_id
    raws: list[str] = []
    for start in range(first, first + devices, batch):
        inputs = [device(i) for i in range(start, min(first + devices, start + batch))]
        data = registry.encode_abi("registerDevices", args=[inputs])
        tx = {"to": registry.address, "data": data, "gas": gas, "gasPrice": gas_price, "nonce": nonce,
              "chainId": chain_id, "value": 0}  # fmt: skip
        nonce += 1
        raws.append("0x" + Account.sign_transaction(tx, key).raw_transaction.hex())
    return raws


def send(rpc: JsonRpcClient, raws: list[str]) -> list[str]:
    """eth_sendRawTransaction for `raws` in JSON-RPC batches; returns the transaction hashes."""
    hashes: list[str] = []
    for i in range(0, len(raws), SEND_BATCH):
        for answer in rpc.batch([("eth_sendRawTransaction", [raw]) for raw in raws[i : i + SEND_BATCH]]):
            if isinstance(answer, Exception):
                raise answer
            hashes.append(answer)
    return hashes


def register(w3: Web3, rpc: JsonRpcClient, deployment: Deployment, key: str, devices: int, batch: int) -> float:
    """Register `devices` devices in batches; returns seconds taken."""
    started = time.perf_counter()
    hashes = send(rpc, sign_registrations(w3, deployment, key, 0, devices, batch))
    receipt = w3.eth.wait_for_transaction_receipt(hashes[-1], timeout=600)
    if receipt["status"] != 1:
        raise RuntimeError("the last registration reverted")
    return time.perf_counter() - started


def catch_up(database_url: str, rpc_url: str, deployment: Deployment) -> tuple[int, float]:
    """Index the whole chain into a fresh database; returns (events, seconds)."""
    engine = create_mirror_engine(database_url)
    rpc = JsonRpcClient([rpc_url], timeout=120)
    try:
        indexer = Indexer(engine, rpc, deployment)
        indexer.create_tables()
        started = time.perf_counter()
        result = indexer.sync_once()
        return result.events, time.perf_counter() - started
    finally:
        rpc.close()
        engine.dispose()


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def live_lag(seconds: float, rate: int, batch: int, tmp: Path, memory: PeakMemory) -> list[int]:
    """Lag samples (chain head - committed checkpoint, blocks) while registrations arrive at `rate` devices/s."""
    with AnvilNode(block_time=1) as node, JsonRpcClient([node.url], timeout=60) as rpc:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        seeded = seed_demo_consortium(w3)
        per_tx = max(1, min(batch, rate))
        raws = sign_registrations(
            w3, seeded.deployment, seeded.orgs["BJ-PSB"].private_key, 0, int(seconds * rate), per_tx
        )
        engine = create_mirror_engine(f"sqlite:///{tmp / f'live-{uuid.uuid4().hex[:8]}.db'}")
        indexer_rpc = JsonRpcClient([node.url], timeout=60)
        indexer = Indexer(engine, indexer_rpc, seeded.deployment, poll_seconds=Settings().indexer_poll_seconds)
        indexer.create_tables()
        indexer.sync_once()
        stop = threading.Event()
        follower = threading.Thread(target=indexer.run, args=(stop,), name="indexer", daemon=True)
        follower.start()
        samples: list[int] = []
        try:
            interval = per_tx / rate
            started = time.monotonic()
            sent = 0
            while sent < len(raws):
                now = time.monotonic() - started
                due = min(len(raws), int(now / interval) + 1)
                if due > sent:
                    send(rpc, raws[sent:due])
                    sent = due
                checkpoint = indexer.store.checkpoint()
                samples.append(rpc.block_number() - (checkpoint.block_number if checkpoint else 0))
                time.sleep(SAMPLE_SECONDS)
        finally:
            stop.set()
            follower.join(timeout=30)
            memory.sample("anvil (live)", node.process.pid if node.process else None)
            indexer_rpc.close()
            engine.dispose()
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000, help="devices registered before the catch-up")
    parser.add_argument("--batch", type=int, default=200, help="devices per registerDevices transaction")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="length of one live-lag run")
    parser.add_argument("--live-rate", type=int, default=1_000, help="devices registered per second while live")
    add_json_option(parser)
    args = parser.parse_args()
    memory = PeakMemory()
    figures: list[Figure] = []

    with AnvilNode() as node, JsonRpcClient([node.url], timeout=120) as rpc, tempfile.TemporaryDirectory() as tmp:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        seeded = seed_demo_consortium(w3)
        seconds = register(w3, rpc, seeded.deployment, seeded.orgs["BJ-PSB"].private_key, args.devices, args.batch)
        print(f"registered {args.devices:,} devices in {seconds:.1f} s ({args.devices / seconds:,.0f}/s)")

        backends = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
        server = PostgresServer().start() if "postgresql" in backends else None
        try:
            for name in backends:
                rates: list[float] = []
                events = 0
                for run in range(args.runs):
                    if server is not None and name == "postgresql":
                        url = server.create_database("bench_" + uuid.uuid4().hex[:10])
                    else:
                        url = f"sqlite:///{Path(tmp) / f'bench-{run}.db'}"
                    events, elapsed = catch_up(url, node.url, seeded.deployment)
                    rates.append(round(events / elapsed))
                    print(f"  {name} run {run + 1}: {events:,} events in {elapsed:.2f} s = {events / elapsed:,.0f}/s")
                memory.sample("bench")
                memory.sample("anvil", node.process.pid if node.process else None)
                value = median(rates)
                print(f"{name}: median {value:,.0f} events/s over {args.runs} runs (target {TARGETS[name]:,.0f})")
                figures.append(
                    Figure(
                        key=f"indexer.catchup_{name}_events_per_s",
                        what=f"indexer catch-up into {'SQLite' if name == 'sqlite' else 'PostgreSQL'}",
                        value=value,
                        unit="events/s",
                        runs=rates,
                        command=COMMAND,
                        target=TARGETS[name],
                        peak_memory=dict(memory.mib),
                        note=f"{events:,} events, {args.devices:,} devices in {args.devices // args.batch:,} blocks",
                        bottleneck=CATCHUP_BOTTLENECK[name],
                    )
                )
        finally:
            if server is not None:
                server.stop()

    with tempfile.TemporaryDirectory() as tmp:
        lags: list[float] = []
        maxima: list[int] = []
        for run in range(args.runs):
            samples = live_lag(args.live_seconds, args.live_rate, args.batch, Path(tmp), memory)
            lags.append(percentile(samples, 0.99))
            maxima.append(max(samples))
            print(
                f"  live run {run + 1}: {len(samples)} samples, lag p50 {percentile(samples, 0.5):.0f}, "
                f"p99 {lags[-1]:.0f}, max {maxima[-1]} blocks"
            )
        memory.sample("bench")
        value = median(lags)
        print(f"live lag: median p99 {value:.0f} blocks over {args.runs} runs (target <= {LAG_TARGET_BLOCKS:.0f})")
        figures.append(
            Figure(
                key="indexer.live_lag_blocks",
                what=f"indexer live lag (p99 of head - checkpoint, 1 s blocks, {args.live_rate:,} devices/s)",
                value=value,
                unit="blocks",
                runs=lags,
                command=COMMAND,
                target=LAG_TARGET_BLOCKS,
                better="lower",
                peak_memory=dict(memory.mib),
                note=f"max {max(maxima)} blocks; sampled every {SAMPLE_SECONDS} s for {args.live_seconds:.0f} s",
                bottleneck="the sync's poll interval (0.5 s) plus one range's fetch and apply",
            )
        )
    print("peak memory (MiB): " + ", ".join(f"{k} {v:,.0f}" for k, v in memory.mib.items()))
    write_figures(args.json, figures)


_CPU = (
    "CPU-bound on the machine's 2 cores, shared by three busy processes: per 100k events the applying process "
    "spends ~3.4 CPU-s (py-spy: SQLite inserts ~26 %, commits' WAL writes ~10 %, building the read indexes after "
    "the load ~9 %, unpickling the fetched ranges ~11 %, handlers and row building the rest), the fetching child "
    "~3.0 CPU-s (JSON parsing of eth_getLogs ~26 %, ABI decoding ~25 %, building decoded logs ~10 %, HTTP reading "
    "~15 %) and anvil ~1.5 CPU-s serving logs and full blocks, so ~8 CPU-s on 2 cores caps catch-up near 25k "
    "events/s even when idle. What would move it: the node on its own machine (as in production), frees a core; "
    "the senders need full blocks (calldata) because plain JSON-RPC has no cheaper source of a transaction's "
    "sender; a compiled log decoder and JSON parser in the child; fewer, narrower rows per event in "
)
CATCHUP_BOTTLENECK = {
    "sqlite": _CPU + "SQLite (device_events repeats the log's arguments as JSON).",
    "postgresql": _CPU + "PostgreSQL, whose server process also needs the cores (COPY and index upkeep).",
}


if __name__ == "__main__":
    main()
