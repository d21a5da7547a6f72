"""Code rules set by the lead department of their domain through consortium votes, and the proposals list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.auth import issue_token
from registry_api.cli import app as cli
from tests.registry_api.live import blocks, scheduled, serve, wait_until
from tests.registry_api.support import Api, device

RULE = {"type_id": 9, "type": "camera.drone", "prefix": "BJ-CAMD-", "length": 16, "charset": ["digits", "upper"]}


def test_lead_department_proposes_a_code_rule_that_applies_after_the_votes(api: Api) -> None:
    accepted = api.post("/v1/code-rules", {**RULE, "description": "无人机巡查摄像头"}, "BJ-PSB")
    assert accepted.status_code == 202, accepted.text
    assert api.settle(accepted.json()["operation_id"], "BJ-PSB")["status"] == "confirmed"
    api.sync()
    open_ = api.get("/v1/proposals", params={"executed": False}).json()
    proposal = next(p for p in open_["data"] if p["call"] == "setCodeRule")
    assert proposal["proposer_org"] == "BJ-PSB" and proposal["votes"] == 1
    expected = {"typeId": 9, "typeName": "camera.drone", "prefix": "BJ-CAMD-", "length": 16, "charset": 3}
    assert proposal["args"] == expected
    assert api.get("/v1/code-rules/camera.drone").status_code == 404  # one vote of the two needed

    voted = api.post(f"/v1/proposals/{proposal['id']}/votes", {}, "BJ-CMC")
    assert voted.status_code == 202, voted.text
    assert api.settle(voted.json()["operation_id"], "BJ-CMC")["status"] == "confirmed"
    api.sync()
    rule = api.get("/v1/code-rules/camera.drone").json()
    assert (rule["prefix"], rule["length"], rule["charset"]) == ("BJ-CAMD-", 16, ["digits", "upper"])
    assert api.get(f"/v1/proposals/{proposal['id']}").json()["executed"] is True
    again = api.post(f"/v1/proposals/{proposal['id']}/votes", {}, "BJ-EIB")
    assert again.status_code == 409 and again.json()["code"] == "PROPOSAL_EXECUTED"
    # the new rule governs codes at once, in the API and on-chain alike
    bad = api.post("/v1/devices", {"devices": [device(1, code="BJ-CAMD-12345abc", type="camera.drone")]})
    assert bad.status_code == 422 and bad.json()["code"] == "CODE_RULE_VIOLATION", bad.text


def test_only_the_domain_lead_proposes_and_only_admins_vote(api: Api) -> None:
    sensor = {**RULE, "type_id": 10, "type": "sensor.noise", "prefix": "BJ-NOIS-"}
    not_lead = api.post("/v1/code-rules", sensor, "BJ-PSB")  # sensors are city management's
    assert not_lead.status_code == 403, not_lead.text
    body = not_lead.json()
    assert (body["code"], body["field"], body["lead_org"]) == ("NOT_LEAD_DEPARTMENT", "type", "BJ-CMC")
    not_admin = api.post("/v1/code-rules", RULE, "BJ-CY")
    assert not_admin.status_code == 403 and not_admin.json()["code"] == "ROLE_REQUIRED"
    short = api.post("/v1/code-rules", {**RULE, "length": 8}, "BJ-PSB")
    assert short.status_code == 422 and "prefix" in short.text
    unknown = api.post("/v1/proposals/999/votes", {}, "BJ-CMC")
    assert unknown.status_code == 404 and unknown.json()["field"] == "proposal_id"
    assert api.get("/v1/proposals", params={"limit": 1}).json()["count"] >= 1  # the demo seeding's proposals


def test_cli_proposes_votes_and_lists_the_new_rule(
    api_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()

    def ok(*args: str, org: str) -> str:
        result = runner.invoke(cli, [*args, "--org", org])
        assert result.exit_code == 0, (args, result.output)
        return str(result.output)

    with serve(scheduled(api_settings)) as (url, app), blocks(w3):
        orgs = {
            c: {"token": issue_token(app.state.engine, c, chain.orgs[c].account, "cli")} for c in ("BJ-PSB", "BJ-CMC")
        }
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"api": url, "orgs": orgs}), encoding="utf-8")
        monkeypatch.setattr("registry_api.client.CREDENTIALS_PATH", credentials)
        monkeypatch.setattr("registry_api.client.resolve_credentials.__defaults__", (None, None, None, credentials))
        wait_until(lambda: app.state.indexer.status.lag, lambda lag: lag == 0)
        rule = ["--type-id", "9", "--type", "camera.drone", "--prefix", "BJ-CAMD-", "--length", "16"]
        ok("code-rules", "propose", *rule, "--charset", "digits", "--wait", org="BJ-PSB")
        page = wait_until(
            lambda: json.loads(ok("proposals", "list", "--open", "--json", org="BJ-CMC")),
            lambda p: any(item["call"] == "setCodeRule" for item in p["data"]),
        )
        proposal = next(item for item in page["data"] if item["call"] == "setCodeRule")
        ok("proposals", "vote", str(proposal["id"]), "--wait", org="BJ-CMC")
        rules = wait_until(
            lambda: json.loads(ok("code-rules", "list", "--json", org="BJ-CMC")),
            lambda p: any(r["type"] == "camera.drone" for r in p["data"]),
        )
    drone = next(r for r in rules["data"] if r["type"] == "camera.drone")
    assert (drone["prefix"], drone["length"], drone["charset"]) == ("BJ-CAMD-", 16, ["digits"])
