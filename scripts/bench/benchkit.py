"""What every benchmark shares: its results in one JSON shape, peak memory, and the table in docs/benchmarks.md.

A benchmark script takes `--json PATH` (see `add_json_option`) and, when given, writes there a list of
`Figure`s: one per row of the table. `scripts/bench/run` runs every benchmark with a fresh PATH, merges the
figures into `docs/bench-results.json` (keyed by `Figure.key`, so running one benchmark replaces only its own
rows) and rewrites the table between the markers in `docs/benchmarks.md`.

Peak memory is the kernel's high-water mark of resident memory (`VmHWM` in /proc/<pid>/status), read for the
benchmark's own process and for each child that matters (anvil, the API, PostgreSQL's backends are not
counted), just before that child stops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "Figure",
    "PeakMemory",
    "add_json_option",
    "cpu_seconds",
    "median",
    "on_sqlite_and_postgres",
    "peak_rss_mib",
    "render_table",
    "write_figures",
]

MIB = 1024 * 1024
TABLE_START = "<!-- bench-table:start (written by scripts/bench/run; edit the benchmarks, not this table) -->"
TABLE_END = "<!-- bench-table:end -->"


@dataclass
class Figure:
    """One row of the benchmarks table: a median over runs, its target and how it was measured.

    `key` is stable across runs (e.g. "gateway.single_tx_per_s"); `value` is the median of `runs`;
    `better` says which way is good ("higher" or "lower"), `target` is the bound from DESIGN.md or the issue
    (None when the figure has none) so the table can mark it met or not. `peak_memory` maps a process name
    ("bench", "anvil", "api") to its peak RSS in MiB. `bottleneck` names what limits the figure when its
    target is not met, and what would move it.
    """

    key: str
    what: str
    value: float
    unit: str
    runs: list[float]
    command: str
    target: float | None = None
    better: str = "higher"
    peak_memory: dict[str, float] = field(default_factory=dict)
    note: str = ""
    bottleneck: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target


def median(runs: Sequence[float]) -> float:
    return float(statistics.median(runs))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON (for run)")


def write_figures(path: Path | None, figures: Iterable[Figure]) -> None:
    """Write `figures` to `path` for the runner; does nothing without a path (a plain run prints only)."""
    if path is None:
        return
    path.write_text(json.dumps([asdict(f) for f in figures], indent=1) + "\n")


def peak_rss_mib(pid: int | None = None) -> float:
    """Peak resident memory of `pid` (default: this process) in MiB; 0.0 if the process is gone."""
    if pid is None or pid == os.getpid():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class PeakMemory:
    """Peak RSS per named process, kept as the largest seen: call `sample` before a child stops."""

    def __init__(self) -> None:
        self.mib: dict[str, float] = {}

    def sample(self, name: str, pid: int | None = None) -> None:
        self.mib[name] = round(max(self.mib.get(name, 0.0), peak_rss_mib(pid)), 1)


def _format_value(value: float, unit: str) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}" if abs(value) < 10 else f"{value:,.1f} {unit}"


def render_table(figures: Iterable[Figure], measured_on: dict[str, str]) -> str:
    """The markdown table: figure, target, met, runs, peak memory, command; bottlenecks listed below it."""
    rows = sorted(figures, key=lambda f: f.key)
    lines = [
        TABLE_START,
        "",
        "| what | figure (median) | target | met | runs | peak memory (MiB) | measured | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        comparator = ">=" if f.better == "higher" else "<="
        target = f"{comparator} {_format_value(f.target, f.unit)}" if f.target is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        runs = " / ".join(_format_value(r, "").strip() for r in f.runs)
        memory = ", ".join(f"{name} {mib:,.0f}" for name, mib in f.peak_memory.items())
        what = f.what + (f" ({f.note})" if f.note else "")
        lines.append(
            f"| {what} | **{_format_value(f.value, f.unit)}** | {target} | {met} | {runs} | {memory} | "
            f"{measured_on.get(f.key, '')} | `{f.command}` |"
        )
    missed = [f for f in rows if f.met is False]
    if missed:
        lines += ["", "Targets not met, the measured bottleneck and what would move it:", ""]
        lines += [f"- **{f.what}**: {f.bottleneck or '(not yet analysed)'}" for f in missed]
    lines += ["", TABLE_END]
    return "\n".join(lines)


def on_sqlite_and_postgres(
    name: str, bench: Callable[[str, str, argparse.Namespace], list[Figure]], args: argparse.Namespace
) -> list[Figure]:
    """`bench(backend, database_url, args)` on a SQLite file in a temporary directory, then (unless
    `args.skip_postgres`) on a fresh database of a private PostgreSQL server started for it."""
    from tests.support.postgres import PostgresServer  # the benchmarks put the project root on sys.path

    with tempfile.TemporaryDirectory() as tmp:
        figures = bench("sqlite", f"sqlite:///{Path(tmp) / f'{name}.db'}", args)
    if not args.skip_postgres:
        server = PostgresServer().start()
        try:
            figures += bench("postgresql", server.create_database(f"{name}_{uuid.uuid4().hex[:10]}"), args)
        finally:
            server.stop()
    return figures
