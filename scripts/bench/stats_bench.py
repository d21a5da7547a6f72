#!/usr/bin/env python
"""Assessment indicators benchmark: GET /v1/stats's computation over 1,000,000 devices, SQLite and PostgreSQL.

A query benchmark: the mirror rows are bulk-inserted straight into a fresh database (no chain). `--devices` devices
registered over six months of blocks (one DeviceRegistered event each), a tenth of them moved through their life
cycle later and a third inspected (events and inspection rows), 2,000 sharing requests and 200 catalog entries.
Then `registry_api.stats.compute_stats` runs `--runs` times for: the current month (counted from the devices'
current state), the previous month (corrected for the month of events after it), and the current month narrowed
to one district and one org. Medians are printed. Nothing is asserted.

    .venv/bin/python scripts/bench/stats_bench.py [--devices 1000000] [--runs 5]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, add_json_option, median, on_sqlite_and_postgres, peak_rss_mib, write_figures  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from indexer.models import DeviceEvent, Inspection, SharingRequest  # noqa: E402
from indexer.service import create_mirror_engine  # noqa: E402
from indexer.store import bulk_insert  # noqa: E402
from registry_api import stats  # noqa: E402
from registry_api.city import DISTRICTS  # noqa: E402
from tests.support.mirror_rows import ORGS, device_row, insert_devices, seed_reference_rows  # noqa: E402

COMMAND = ".venv/bin/python scripts/bench/stats_bench.py"

T0 = int(datetime(2025, 1, 1, tzinfo=stats.CITY_TZ).timestamp())
BLOCK_SECONDS = 5
BLOCKS = 180 * 86_400 // BLOCK_SECONDS  # six months of 5-second blocks
CHUNK = 50_000


def _time(block: int) -> int:
    return T0 + block * BLOCK_SECONDS


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load(engine: Engine, devices: int, seed: int) -> None:
    """Devices, their events and inspections, sharing requests; registrations spread evenly over the blocks."""
    rnd = random.Random(seed)
    seed_reference_rows(engine)
    blocks = sorted(rnd.randint(1, BLOCKS - 100_000) for _ in range(devices))
    events: list[dict[str, Any]] = []
    inspections: list[dict[str, Any]] = []

    log_indexes: Counter[int] = Counter()

    def event(code: str, name: str, block: int, data: dict[str, Any]) -> int:
        log_index = log_indexes[block]
        log_indexes[block] += 1
        at = {"block_number": block, "block_hash": "0x", "block_time": _time(block), "log_index": log_index}
        events.append({"code": code, "event": name, **at, "tx_hash": "0x", "sender": None, "data": json.dumps(data)})
        return log_index

    def fleet() -> Iterator[dict[str, Any]]:
        for serial, block in enumerate(blocks):
            row = device_row(serial, 39_900_000, 116_400_000, owner_org_id=rnd.choice(ORGS)[0], status="active",
                             district=DISTRICTS[serial % len(DISTRICTS)].code, block_number=block)  # fmt: skip
            event(row["code"], "DeviceRegistered", block, {"code": row["code"], "status": "active"})
            later = rnd.randint(block + 1, BLOCKS)
            if serial % 10 == 0:
                row["status"] = rnd.choice(("suspended", "retired"))
                event(
                    row["code"],
                    "DeviceLifecycleChanged",
                    later,
                    {"code": row["code"], "fromStatus": "active", "toStatus": row["status"]},
                )
            elif serial % 3 == 0:
                row["last_inspected_at"] = _time(later) - 3_600
                log_index = event(row["code"], "DeviceInspected", later, {"code": row["code"]})
                inspections.append({"code": row["code"], "result": "passed", "inspected_at": row["last_inspected_at"],
                                    "report_hash": "0x", "note": "", "block_number": later, "tx_hash": "0x",
                                    "log_index": log_index})  # fmt: skip
            yield row

    insert_devices(engine, fleet())
    stats.create_assessment_index(engine)  # as the API creates it at start
    requests = []
    for request_id in range(1, 2_001):
        requested = _time(rnd.randint(1, BLOCKS - 1_000))
        granted = requested + rnd.randint(600, 5 * 86_400) if request_id % 3 else None
        requests.append({"request_id": request_id, "entry_id": 1, "requester_org_id": 2, "owner_org_id": 1,
                         "requester": "0x", "form": "raw", "purpose": "", "duration": 86_400, "approvals_needed": 1,
                         "approvals": 1 if granted else 0, "status": "granted" if granted else "pending",
                         "requested_at": requested, "granted_at": granted, "expires_at": None,
                         "refusal_reason": None, "revocation_reason": None, "closed_at": None, "closed_tx_hash": None,
                         "request_tx_hash": "0x", "request_block": 1, "grant_tx_hash": None, "grant_block": None,
                         "updated_block": 1, "updated_tx_hash": "0x"})  # fmt: skip
    for model, rows in ((DeviceEvent, events), (Inspection, inspections), (SharingRequest, requests)):
        for chunk in _chunks(iter(rows)):
            with engine.begin() as conn:
                bulk_insert(conn, model.__table__, chunk)  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def bench(name: str, url: str, args: argparse.Namespace) -> list[Figure]:
    figures = []
    engine = create_mirror_engine(url)
    try:
        started = time.perf_counter()
        load(engine, args.devices, args.seed)
        print(f"{name}: {args.devices:,} devices with events loaded in {time.perf_counter() - started:.1f} s")
        now = _time(BLOCKS)
        current = stats.month_period(datetime.fromtimestamp(now, stats.CITY_TZ).strftime("%Y-%m"))
        previous = stats.month_period(datetime.fromtimestamp(current.start - 1, stats.CITY_TZ).strftime("%Y-%m"))
        cases: list[tuple[str, stats.Period, dict[str, Any]]] = [
            (f"current month {current.month}", current, {}),
            (f"previous month {previous.month}", previous, {}),
            ("current month, one district and org", current, {"district": DISTRICTS[2].code, "org": ORGS[0][1]}),
        ]
        for label, period, filters in cases:
            seconds = []
            for _ in range(args.runs):
                with engine.connect() as conn:
                    t = time.perf_counter()
                    answer = stats.compute_stats(conn, period, now, **filters)
                    seconds.append(time.perf_counter() - t)
            devices = answer.totals.devices
            print(f"  {label:<40} median {statistics.median(seconds) * 1e3:8.0f} ms  (runs "
                  f"{' / '.join(f'{s * 1e3:.0f}' for s in seconds)}); on the ledger {devices.total:,}, registered "
                  f"{devices.registered:,}, overdue {devices.inspections_overdue:,}")  # fmt: skip
            slug = "current" if "current" in label else "previous"
            slug += "_filtered" if filters else ""
            figures.append(
                Figure(key=f"stats.{name}_{slug}_month_ms", unit="ms", value=median([t * 1e3 for t in seconds]),
                       runs=[t * 1e3 for t in seconds], better="lower", command=COMMAND,
                       what=f"assessment indicators (GET /v1/stats), {label}, {name}, {args.devices:,} devices",
                       peak_memory={"bench": round(peak_rss_mib(), 1)})
            )  # fmt: skip
    finally:
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-postgres", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    write_figures(args.json, on_sqlite_and_postgres("stats", bench, args))


if __name__ == "__main__":
    main()
