"""`dirchain reviews ...` and `dirchain carriers ...` against the test app (the CLI's client over its TestClient):
filing, the review view as rich tables, decisions, carriers and the reuse flow; refusals exit 1 with their code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from registry_api.cli import app as cli
from tests.registry_api.review_support import ORIGIN, north_of, planned
from tests.registry_api.support import Api, device
from tests.registry_api.test_zone_cli import run  # noqa: F401  (the fixture: the CLI against the test app)

OPERATION = re.compile(r"operation (\S+): queued")


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich lays tables out for 80 columns otherwise, folding codes over lines."""
    monkeypatch.setenv("COLUMNS", "220")


def settled(api: Api, result: Any, org: str) -> dict[str, Any]:
    """The operation a write command printed, run to the chain and indexed; asserts it is confirmed."""
    assert result.exit_code == 0, result.output
    found = OPERATION.search(result.output)
    assert found is not None, result.output
    op = api.settle(found.group(1), org)
    assert op["status"] == "confirmed", op
    return op


def shown_json(run: Any, *args: str) -> Any:  # noqa: F811
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_files_shows_the_nearby_devices_and_decides(api: Api, run: Any, tmp_path: Path) -> None:  # noqa: F811
    existing = device(1, location=north_of(ORIGIN, 0))
    api.register([existing])
    register = ("carriers", "register", "--code", "BJ-POLE-0001", "--kind", "pole", "--district", "110105")
    where = ("--lat", str(north_of(ORIGIN, 32)["lat"]), "--lon", str(ORIGIN[1]), "--slots", "4", "--ports", "2")
    settled(api, run(*register, *where, "--attributes", '{"height_m": 8}', "--org", "BJ-CMC"), "BJ-CMC")
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps([planned(10, 30, attributes={"carrier": "BJ-POLE-0001"})]), encoding="utf-8")
    filing = ("reviews", "file", str(devices), "--domain", "imagery", "--title", "望京新建视频监控")
    settled(api, run(*filing, "--org", "BJ-CY"), "BJ-CY")

    listed = run("reviews", "list", "--org", "BJ-PSB")
    assert listed.exit_code == 0 and "1 review projects" in listed.output and "望京新建视频监控" in listed.output
    view = run("reviews", "show", "1", "--org", "BJ-PSB")
    assert view.exit_code == 0, view.output
    assert "existing devices of the same type within 100 m" in view.output
    line = next(line for line in view.output.splitlines() if existing["code"] in line)
    assert planned(10)["code"] in line and "BJ-PSB" in line and "30.0 m" in line
    assert "carriers with a spare slot within 100 m" in view.output and "BJ-POLE-0001" in view.output
    narrow = run("reviews", "show", "1", "--radius-m", "10", "--org", "BJ-PSB")
    assert "no existing device of the same type within 10 m" in narrow.output
    assert shown_json(run, "reviews", "show", "1", "--org", "BJ-PSB")["devices_with_neighbours"] == 1

    not_lead = run("reviews", "approve", "1", "--org", "BJ-CMC")
    assert not_lead.exit_code == 1 and "403 NOT_LEAD_ORG" in not_lead.output
    settled(api, run("reviews", "approve", "1", "--org", "BJ-PSB"), "BJ-PSB")
    assert shown_json(run, "reviews", "show", "1", "--org", "BJ-CY")["status"] == "approved"
    assert api.get(f"/v1/devices/{planned(10)['code']}").json()["owner_org"] == "BJ-CY"

    body = {
        "domain": "city_management",
        "title": "燃气监测",
        "devices": [planned(11, type="sensor.gas", code="BJ-GASS-110105000011")],
    }
    devices.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    settled(api, run("reviews", "file", str(devices), "--org", "BJ-CY"), "BJ-CY")
    no_reason = run("reviews", "refuse", "2", "--reason", "", "--org", "BJ-CMC")
    assert (
        no_reason.exit_code == 1 and "422 VALIDATION_ERROR" in no_reason.output and "(field reason)" in no_reason.output
    )
    settled(api, run("reviews", "withdraw", "2", "--org", "BJ-CY"), "BJ-CY")
    assert shown_json(run, "reviews", "list", "--status", "withdrawn", "--org", "BJ-CY")["count"] == 1
    missing = run("reviews", "file", str(tmp_path / "none.json"), "--org", "BJ-CY")
    assert missing.exit_code == 2


def test_cli_runs_the_carrier_reuse_flow(api: Api, run: Any) -> None:  # noqa: F811
    register = ("carriers", "register", "--code", "BJ-POLE-0002", "--kind", "pole", "--district", "110105", "--lat",
                "39.9219", "--lon", "116.4436", "--slots", "2", "--ports", "1")  # fmt: skip
    settled(api, run(*register, "--org", "BJ-PSB"), "BJ-PSB")
    settled(
        api,
        run("carriers", "usage", "BJ-POLE-0002", "--slots-used", "1", "--ports-used", "0", "--org", "BJ-PSB"),
        "BJ-PSB",
    )
    listed = run("carriers", "list", "--spare", "--org", "BJ-CMC")
    assert listed.exit_code == 0 and "1 carriers" in listed.output and "1/2" in listed.output
    near = shown_json(run, "carriers", "list", "--near", "39.9219,116.4436,50", "--org", "BJ-CMC")
    assert [(c["code"], c["distance_m"]) for c in near["data"]] == [("BJ-POLE-0002", 0.0)]

    too_much = run("carriers", "request-reuse", "BJ-POLE-0002", "--slots", "2", "--purpose", "加装", "--org", "BJ-CMC")
    assert too_much.exit_code == 1 and "409 NO_CAPACITY" in too_much.output
    request = (
        "carriers",
        "request-reuse",
        "BJ-POLE-0002",
        "--slots",
        "1",
        "--ports",
        "1",
        "--purpose",
        "加装空气质量传感器",
    )
    settled(api, run(*request, "--org", "BJ-CMC"), "BJ-CMC")
    received = run("carriers", "requests", "--role", "owner", "--org", "BJ-PSB")
    assert received.exit_code == 0 and "加装空气质量传感器" in received.output and "requested" in received.output
    not_owner = run("carriers", "decide", "1", "--grant", "--org", "BJ-CMC")
    assert not_owner.exit_code == 1 and "403 CARRIER_NOT_OWNED" in not_owner.output
    settled(api, run("carriers", "decide", "1", "--grant", "--reason", "同意", "--org", "BJ-PSB"), "BJ-PSB")
    shown = shown_json(run, "carriers", "show", "BJ-POLE-0002", "--org", "BJ-PSB")
    assert (shown["slots_used"], shown["ports_used"], shown["reuse_requests"][0]["status"]) == (2, 1, "granted")
    text = run("carriers", "show", "BJ-POLE-0002", "--org", "BJ-CMC")
    assert "slots 2/2 used" in text.output and "granted" in text.output
    closed = run("carriers", "withdraw", "1", "--org", "BJ-CMC")
    assert closed.exit_code == 1 and "409 REUSE_REQUEST_CLOSED" in closed.output


def test_every_review_and_carrier_command_has_help() -> None:
    runner = CliRunner()
    groups = {
        "reviews": ("file", "list", "show", "approve", "refuse", "withdraw"),
        "carriers": ("register", "list", "show", "usage", "request-reuse", "requests", "decide", "withdraw"),
    }
    for group, commands in groups.items():
        top = runner.invoke(cli, [group, "--help"])
        assert top.exit_code == 0 and all(c in top.output for c in commands), top.output
        for command in commands:
            result = runner.invoke(cli, [group, command, "--help"])
            assert result.exit_code == 0 and "Usage" in result.output, (group, command, result.output)
