#!/usr/bin/env python
"""Indexer catch-up benchmark: events/s from a local anvil into SQLite and into PostgreSQL (median of runs).

Starts its own anvil (automine) and a private PostgreSQL, seeds the demo consortium, registers `--devices`
devices with registerDevices batches of `--batch` (signed locally, sent as batched raw transactions), then
indexes the whole chain into a fresh database `--runs` times per backend and prints the figures.
Targets (DESIGN.md): >= 30,000 events/s into SQLite, >= 20,000 into PostgreSQL. Nothing is asserted.

    .venv/bin/python scripts/bench/indexer_bench.py [--devices 50000] [--batch 200] [--runs 3]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain_gateway.deployments import Deployment  # noqa: E402
from chain_gateway.devnet import AnvilNode, seed_demo_consortium  # noqa: E402
from chain_gateway.governance import contract  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from indexer.service import Indexer, create_mirror_engine  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

SEND_BATCH = 10  # raw transactions per JSON-RPC batch (anvil refuses very large bodies)


def device(serial: int) -> tuple[object, ...]:
    district = 110105
    attributes = json.dumps({"brand": "hik", "model": "DS-2CD", "pole": f"P-{serial}"}, separators=(",", ":"))
    return (f"BJ-CAMR-{district}{serial:06d}", 1, 2, district, 39_900_000 + serial, 116_400_000 - serial,
            1_700_000_000, attributes)  # fmt: skip


def register(w3: Web3, rpc: JsonRpcClient, deployment: Deployment, key: str, devices: int, batch: int) -> float:
    """Register `devices` devices in batches; returns seconds taken."""
    started = time.perf_counter()
    registry = contract(w3, deployment, "DeviceRegistry")
    sender = Account.from_key(key).address
    nonce = w3.eth.get_transaction_count(sender)
    first = [device(i) for i in range(batch)]
    gas = int(registry.functions.registerDevices(first).estimate_gas({"from": sender}) * 1.3)
    gas_price = w3.eth.gas_price * 2
    chain_id = w3.eth.chain_id
    raws: list[str] = []
    for start in range(0, devices, batch):
        inputs = [device(i) for i in range(start, min(devices, start + batch))]
        data = registry.encode_abi("registerDevices", args=[inputs])
        tx = {"to": registry.address, "data": data, "gas": gas, "gasPrice": gas_price, "nonce": nonce,
              "chainId": chain_id, "value": 0}  # fmt: skip
        nonce += 1
        raws.append("0x" + Account.sign_transaction(tx, key).raw_transaction.hex())
    hashes: list[str] = []
    for i in range(0, len(raws), SEND_BATCH):
        answers = rpc.batch([("eth_sendRawTransaction", [raw]) for raw in raws[i : i + SEND_BATCH]])
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
            hashes.append(answer)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    with AnvilNode() as node, JsonRpcClient([node.url], timeout=120) as rpc, tempfile.TemporaryDirectory() as tmp:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        seeded = seed_demo_consortium(w3)
        seconds = register(w3, rpc, seeded.deployment, seeded.orgs["BJ-PSB"].private_key, args.devices, args.batch)
        print(f"registered {args.devices} devices in {seconds:.1f} s ({args.devices / seconds:,.0f}/s)")

        backends: list[tuple[str, object]] = [("sqlite", None)]
        if not args.skip_postgres:
            backends.append(("postgresql", PostgresServer().start()))
        try:
            for name, server in backends:
                rates = []
                for run in range(args.runs):
                    if isinstance(server, PostgresServer):
                        url = server.create_database("bench_" + uuid.uuid4().hex[:10])
                    else:
                        url = f"sqlite:///{Path(tmp) / f'bench-{run}.db'}"
                    events, elapsed = catch_up(url, node.url, seeded.deployment)
                    rates.append(events / elapsed)
                    print(f"  {name} run {run + 1}: {events:,} events in {elapsed:.2f} s = {events / elapsed:,.0f}/s")
                print(f"{name}: median {statistics.median(rates):,.0f} events/s over {args.runs} runs")
        finally:
            for _, server in backends:
                if isinstance(server, PostgresServer):
                    server.stop()


if __name__ == "__main__":
    main()
