#!/usr/bin/env python
"""Run the benchmarks one after another and write their table into docs/benchmarks.md.

Each benchmark is a script under scripts/bench/ that starts what it needs (anvil, PostgreSQL, the API) and
writes its figures with `--json` (see benchkit.py). The figures are merged into docs/bench-results.json by
key, so `--only` re-measures some benchmarks and keeps the others' last figures; the table is then rewritten
from all of them. Run it on an otherwise idle machine: the benchmarks share its 2 cores with nothing else.

    scripts/bench/run                      # everything, full size (about an hour)
    scripts/bench/run --only gateway,api   # some of them
    scripts/bench/run --smoke              # every benchmark at a tiny size, results not recorded
"""

# ruff: noqa: T201 - a plain script whose output is its progress
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import TABLE_END, TABLE_START, Figure, render_table  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results.json"
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...] = ()
    smoke_args: tuple[str, ...] = ()


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("gas", "gas_bench.py", (), ("--sizes", "10")),
    Benchmark("gateway", "gateway_bench.py", (), ("--txs", "200", "--devices", "1000", "--runs", "1")),
    Benchmark("indexer", "indexer_bench.py", (), ("--devices", "2000", "--runs", "1", "--live-seconds", "5")),
    Benchmark("resolver", "resolver_bench.py", (), ("--grants", "2000", "--decisions", "500", "--runs", "1")),
    Benchmark("api", "api_load_bench.py", (), ("--devices", "20000", "--seconds", "3", "--runs", "1")),
    Benchmark("city", "city_bench.py", (), ("--devices", "5000", "--runs", "1")),
    Benchmark("audit", "audit_bench.py", (), ("--devices", "5000", "--runs", "1")),
    Benchmark("audit_report", "audit_report_bench.py", ("--devices", "20000"), ("--devices", "1000", "--runs", "1")),
    Benchmark("spatial", "spatial_bench.py", (), ("--devices", "5000", "--queries", "50", "--baseline", "0")),
    Benchmark("stats", "stats_bench.py", (), ("--devices", "5000", "--runs", "1")),
    Benchmark("map", "map_bench.py", (), ("--devices", "5000", "--queries", "20")),
)


def load_results() -> dict[str, dict[str, object]]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def machine() -> str:
    cores = len(__import__("os").sched_getaffinity(0))
    return f"{platform.node() or 'host'}: {cores} cores, Python {platform.python_version()}"


def run_one(bench: Benchmark, smoke: bool, extra: list[str]) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "figures.json"
        args = bench.smoke_args if smoke else bench.args
        command = [sys.executable, str(ROOT / "scripts" / "bench" / bench.script), *args, *extra, "--json", str(out)]
        print(f"\n== {bench.name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, check=True)
        print(f"== {bench.name} took {time.monotonic() - started:,.0f} s", flush=True)
        return [Figure(**row) for row in json.loads(out.read_text())] if out.exists() else []


def write_table(results: dict[str, dict[str, object]]) -> None:
    figures = [Figure(**{k: v for k, v in row.items() if k != "measured_at"}) for row in results.values()]  # type: ignore[arg-type]
    measured = {key: str(row.get("measured_at", "")) for key, row in results.items()}
    table = render_table(figures, measured)
    text = DOC.read_text()
    if TABLE_START in text and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        tail = rest.split(TABLE_END, 1)[1]
        DOC.write_text(head + table + tail)
    else:
        title, _, body = text.partition("\n")
        DOC.write_text(f"{title}\n\n{table}\n{body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check that each runs, record nothing")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    options, extra = parser.parse_known_args()
    if options.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:10} scripts/bench/{bench.script} {' '.join(bench.args)}")
        return
    wanted = {n for n in options.only.split(",") if n}
    unknown = wanted - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results = load_results()
    failed = []
    for bench in BENCHMARKS:
        if wanted and bench.name not in wanted:
            continue
        try:
            figures = run_one(bench, options.smoke, extra)
        except subprocess.CalledProcessError as exc:  # the others still run; their figures are still worth having
            print(f"== {bench.name} FAILED (exit {exc.returncode}); its last figures are kept", flush=True)
            failed.append(bench.name)
            continue
        if options.smoke:
            print(f"== {bench.name}: {len(figures)} figure(s): " + ", ".join(f"{f.key}={f.value:g}" for f in figures))
            continue
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        for figure in figures:
            results[figure.key] = {**asdict(figure), "measured_at": stamp}
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        write_table(results)
    if not options.smoke:
        print(f"\ntable written to {DOC.relative_to(ROOT)} ({machine()})")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
