#!/usr/bin/env python
"""Audit report benchmark: the report of a range holding `--devices` registrations, built from the chain.

Starts its own anvil (automine), seeds the demo consortium, registers `--devices` devices in registerDevices
batches of `--batch` (the indexer benchmark's sender), then builds the report of the whole range `--runs` times
(block search, eth_getLogs, eth_getTransactionByHash, replay, entries) and renders its HTML once. Prints the
median time, logs/s and the process's peak memory. Nothing is asserted.

    .venv/bin/python scripts/bench/audit_report_bench.py [--devices 50000] [--batch 200] [--runs 3]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts" / "bench")]

from benchkit import Figure, add_json_option, median, peak_rss_mib, write_figures  # noqa: E402
from indexer_bench import register  # noqa: E402

from chain_gateway.devnet import AnvilNode, seed_demo_consortium  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from registry_api.audit.report import build_report  # noqa: E402
from registry_api.audit.report_html import report_html  # noqa: E402
from registry_api.audit.report_range import TimeWindow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        seeded = seed_demo_consortium(w3)
        with JsonRpcClient([node.url], timeout=120) as rpc:
            seconds = register(w3, rpc, seeded.deployment, seeded.orgs["BJ-PSB"].private_key, args.devices, args.batch)
            print(f"registered {args.devices:,} devices in {seconds:.1f} s")
            window = TimeWindow(0, int(w3.eth.get_block("latest")["timestamp"]))
            times: list[float] = []
            for _ in range(args.runs):
                started = time.perf_counter()
                report = build_report(rpc, seeded.deployment, window)
                times.append(time.perf_counter() - started)
                print(f"report: {report.activity_count:,} logs, {report.count:,} entries in {times[-1]:.2f} s")
            started = time.perf_counter()
            page = report_html(report)
            html_seconds = time.perf_counter() - started
    seconds = median(times)
    peak = peak_rss_mib()
    print(f"median {seconds:.2f} s ({report.activity_count / seconds:,.0f} logs/s), runs "
          f"{' / '.join(f'{t:.2f}' for t in times)}; HTML {len(page) / 1e6:.1f} MB in {html_seconds:.2f} s; "
          f"peak memory {peak:,.0f} MiB")  # fmt: skip
    write_figures(args.json, [
        Figure(key="audit.report_s", what=f"audit report of a range of {args.devices:,} registrations, from the chain",
               value=seconds, unit="s", runs=times, better="lower", peak_memory={"bench": round(peak, 1)},
               command=f".venv/bin/python scripts/bench/audit_report_bench.py --devices {args.devices}",
               note=f"{report.activity_count / seconds:,.0f} logs/s; HTML {len(page) / 1e6:.1f} MB"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
