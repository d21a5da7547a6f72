"""The monthly report: CSV rows that add up, SVG charts drawn to scale, the HTML page, and `dirchain report`."""

from __future__ import annotations

import csv
import io
import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from indexer.service import create_mirror_engine
from registry_api import report, stats
from registry_api.cli import app as cli
from registry_api.client import ApiClient, Credentials
from registry_api.schemas.stats import StatsPublic
from tests.registry_api.support import Api, device
from tests.support.mirror_rows import ORGS, TYPES, device_row, insert_devices, seed_reference_rows

SVG = "{http://www.w3.org/2000/svg}"
NOW = int(datetime(2025, 5, 20, tzinfo=stats.CITY_TZ).timestamp())


@pytest.fixture
def may_stats(database_url: str) -> Iterator[StatsPublic]:
    """The indicators of May 2025 over 600 random devices in three districts, two orgs and two types."""
    engine: Engine = create_mirror_engine(database_url)
    try:
        seed_reference_rows(engine)
        rnd = random.Random(5)
        rows = [
            device_row(i, 39_900_000 + i, 116_400_000, type_id=rnd.choice(TYPES)[0], owner_org_id=rnd.choice(ORGS)[0],
                       status=rnd.choice(stats.STATUSES), district=rnd.choice((110101, 110105, 110108)))
            for i in range(600)
        ]  # fmt: skip
        insert_devices(engine, rows)
        with engine.connect() as conn:
            yield stats.compute_stats(conn, stats.month_period("2025-05"), NOW)
    finally:
        engine.dispose()


def _csv_rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # spreadsheets read the UTF-8 names right
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_csv_rows_of_district_x_org_add_up_to_the_org_district_and_total_rows(may_stats: StatsPublic) -> None:
    rows = _csv_rows(report.report_csv(may_stats))
    assert list(rows[0])[: len(report.CSV_COLUMNS)] == list(report.CSV_COLUMNS)
    assert [c for c in rows[0] if c.startswith("type:")] == ["type:camera.checkpoint", "type:camera.road"]
    cells = [r for r in rows if r["level"] == "district_org"]
    assert len(cells) == 3 * 2 and {r["period"] for r in rows} == {"2025-05"}
    numeric = ["devices_total", *(f"devices_{s}" for s in stats.STATUSES), "type:camera.road", "type:camera.checkpoint"]
    (total,) = [r for r in rows if r["level"] == "total"]
    for column in numeric:
        assert sum(int(r[column] or 0) for r in cells) == int(total[column]), column
        for level, key in (("org", "org"), ("district", "district")):
            for subtotal in (r for r in rows if r["level"] == level):
                assert sum(int(r[column] or 0) for r in cells if r[key] == subtotal[key]) == int(subtotal[column] or 0)
    assert int(total["devices_total"]) == 600
    assert {r["district_name"] for r in cells} == {"东城区", "朝阳区", "海淀区"}
    assert all(r["catalog_total"] == "" for r in cells)  # catalog and sharing have no district
    assert all(r["catalog_total"] == "0" and r["median_approval_hours"] == "" for r in rows if r["level"] == "org")


def _bars(svg: str) -> dict[str, dict[str, float]]:
    """label -> status -> bar width, read back from the SVG (the title of each rectangle names both)."""
    root = ET.fromstring(svg)
    widths: dict[str, dict[str, float]] = {}
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None and title.text:
            label, rest = title.text.rsplit(": ", 1)
            widths.setdefault(label, {})[rest.split()[0]] = float(rect.attrib["width"])
    return widths


def test_the_chart_draws_each_district_stacked_by_status_to_scale(may_stats: StatsPublic) -> None:
    bars = [(d.name or str(d.district), d.devices.by_status) for d in may_stats.by_district]
    widths = _bars(report.stacked_bars_svg("Devices per district", bars))
    with_devices = {label: counts for label, counts in bars if sum(counts.values())}
    assert set(widths) == set(with_devices)
    unit = max(sum(w.values()) / sum(with_devices[label].values()) for label, w in widths.items())
    for label, counts in with_devices.items():
        assert widths[label] == pytest.approx({s: n * unit for s, n in counts.items() if n}, abs=0.15)  # 0.1 px


def test_chart_and_page_escape_labels_and_stay_well_formed(may_stats: StatsPublic) -> None:
    svg = report.stacked_bars_svg("A & B <chart>", [("<script>x</script> & co", {"active": 3}), ("empty", {})])
    root = ET.fromstring(svg)  # well-formed XML
    assert root.attrib["aria-label"] == "A & B <chart>"
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    html = report.report_html(may_stats)
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2 and "<script" not in html
    assert "600" in html and "朝阳区" in html


def test_dirchain_report_writes_csv_html_and_svg_and_prints_a_summary(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.register([device(1, status="active"), device(2, status="planned", district=110101)])

    class SharedClient(ApiClient):
        """The real client over the test's in-process transport (which outlives the command)."""

        def __init__(self, credentials: Credentials) -> None:
            super().__init__(credentials, http=api.client)

        def close(self) -> None:
            pass

    monkeypatch.setattr("registry_api.cli_report.ApiClient", SharedClient)
    month = datetime.fromtimestamp(api.w3.eth.get_block("latest")["timestamp"], stats.CITY_TZ).strftime("%Y-%m")
    args = ["report", "--month", month, "--out", str(tmp_path / "out"), "--token", api.tokens["BJ-EIB"]]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Per district" in result.output and "Per department" in result.output and "朝阳区" in result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"report-{month}.csv", f"report-{month}.html", f"report-{month}.svg"]
    written = (tmp_path / "out" / f"report-{month}.csv").read_bytes().decode("utf-8")
    served = api.get("/v1/stats/report.csv", params={"month": month})
    assert written == served.content.decode("utf-8")  # the API and the CLI write the same report
    total = next(r for r in _csv_rows(written) if r["level"] == "total")
    assert (total["devices_total"], total["devices_active"], total["devices_registered"]) == ("2", "1", "2")
    chart = _bars((tmp_path / "out" / f"report-{month}.svg").read_text(encoding="utf-8"))
    assert set(chart) == {"110101 东城区", "110105 朝阳区"}

    refused = CliRunner().invoke(cli, ["report", "--month", "2025-13", "--token", api.tokens["BJ-EIB"]])
    assert refused.exit_code == 1 and "BAD_MONTH" in refused.output and "month" in refused.output
