"""The benchmarks' table: figures merged by key and rendered with their targets, marks and bottlenecks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


benchkit = load("benchkit")
run_all = load("run_all")


def figure(key: str, value: float, target: float | None, better: str = "higher", bottleneck: str = "") -> object:
    return benchkit.Figure(key=key, what=key.replace(".", " "), value=value, unit="tx/s", runs=[value - 1, value],
                           command=f"bench {key}", target=target, better=better, bottleneck=bottleneck)  # fmt: skip


def test_a_figure_is_met_in_the_direction_that_is_better() -> None:
    assert figure("a.rate", 2_100, 2_000).met is True
    assert figure("a.rate", 1_900, 2_000).met is False
    assert figure("a.p99", 9, 10, better="lower").met is True
    assert figure("a.p99", 11, 10, better="lower").met is False
    assert figure("a.gas", 5, None).met is None


def test_table_marks_missed_targets_and_lists_their_bottlenecks() -> None:
    table = benchkit.render_table(
        [figure("gateway.tx", 490, 2_000, bottleneck="signing on one core"), figure("gas.one", 104_000, None)],
        {"gateway.tx": "2026-11-25"},
    )
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| gas one", "| gateway tx"]
    assert "**490 tx/s** | >= 2,000 tx/s | **no** | 489 / 490" in rows[1]
    assert "2026-11-25" in rows[1]
    assert "- **gateway tx**: signing on one core" in table
    assert table.startswith(benchkit.TABLE_START) and table.endswith(benchkit.TABLE_END)


def test_runner_replaces_only_the_table_between_its_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "benchmarks.md"
    old = f"{benchkit.TABLE_START}\nold table\n{benchkit.TABLE_END}"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{old}\n\nset-up notes\n")
    monkeypatch.setattr(run_all, "DOC", doc)
    row = {**figure("gateway.tx", 2_500, 2_000).__dict__, "measured_at": "2026-11-25"}
    run_all.write_table({"gateway.tx": row})
    text = doc.read_text()
    assert "old table" not in text
    assert text.startswith("# Benchmarks\n\nintro\n\n" + benchkit.TABLE_START)
    assert text.endswith(benchkit.TABLE_END + "\n\nset-up notes\n")
    assert "**2,500 tx/s** | >= 2,000 tx/s | yes" in text


def test_figures_are_written_as_json_the_runner_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "figures.json"
    benchkit.write_figures(path, [figure("gateway.tx", 2_500, 2_000)])
    [read] = [benchkit.Figure(**row) for row in json.loads(path.read_text())]
    assert read == figure("gateway.tx", 2_500, 2_000)


def test_peak_memory_of_this_process_is_positive_and_of_a_gone_process_zero() -> None:
    memory = benchkit.PeakMemory()
    memory.sample("bench")
    assert memory.mib["bench"] > 10
    assert benchkit.peak_rss_mib(2**22 + 12345) == 0.0
