"""`dirchain algorithms ...` against a live uvicorn with the gateway and indexer running in the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.auth import issue_token
from registry_api.cli import app as cli
from tests.registry_api.catalog_support import entry
from tests.registry_api.live import blocks, scheduled, serve, wait_until

ORGS = ("BJ-PSB", "BJ-EIB", "BJ-CMC", "CO-ZHCS")


def test_cli_runs_the_algorithm_life_cycle(
    api_settings: Settings,
    chain: SeededConsortium,
    w3: Web3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()

    def run(*args: str, org: str) -> Any:
        return runner.invoke(cli, [*args, "--org", org])

    def ok(*args: str, org: str) -> str:
        result = run(*args, org=org)
        assert result.exit_code == 0, (args, result.output)
        output: str = result.output
        return output

    def as_json(*args: str, org: str = "BJ-PSB") -> Any:
        return json.loads(ok(*args, "--json", org=org))

    with serve(scheduled(api_settings)) as (url, app), blocks(w3):
        orgs = {code: {"token": issue_token(app.state.engine, code, chain.orgs[code].account, "cli")} for code in ORGS}
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"api": url, "orgs": orgs}), encoding="utf-8")
        monkeypatch.setattr("registry_api.client.CREDENTIALS_PATH", credentials)
        monkeypatch.setattr("registry_api.client.resolve_credentials.__defaults__", (None, None, None, credentials))
        wait_until(lambda: app.state.indexer.status.checkpoint or 0, lambda n: n >= chain.deployment["deploy_block"])
        wait_until(lambda: app.state.indexer.status.lag, lambda lag: lag == 0)

        entry_file = tmp_path / "entry.json"
        entry_file.write_text(json.dumps(entry(), ensure_ascii=False), encoding="utf-8")
        ok("catalog", "create", str(entry_file), "--wait", org="BJ-PSB")
        entry_id = str(wait_until(lambda: as_json("catalog", "list"), lambda page: page["count"] == 1)["data"][0]["id"])

        code = tmp_path / "grouped_count.py"
        code.write_text("def run(rows, key):\n    ...\n", encoding="utf-8")
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps({"columns": ["group", "count"], "min_group_size": 10}), encoding="utf-8")
        ok("algorithms", "submit", "--name", "grouped_count", "--version", "1.0.0", "--code-file", str(code),
           "--outputs", f"@{outputs}", "--wait", org="CO-ZHCS")  # fmt: skip
        page = wait_until(lambda: as_json("algorithms", "list", "--submitter", "CO-ZHCS"), lambda p: p["count"] == 1)
        algorithm = page["data"][0]
        algorithm_id = str(algorithm["id"])
        assert algorithm["code_hash"] == "0x" + keccak(code.read_bytes()).hex()
        assert algorithm["outputs"] == {"columns": ["group", "count"], "min_group_size": 10}
        assert "1 algorithms" in ok("algorithms", "list", org="BJ-PSB")

        report = tmp_path / "report.txt"
        report.write_text("测评报告：小组抑制 k=10，通过", encoding="utf-8")
        ok(
            "algorithms",
            "evaluate",
            algorithm_id,
            "--score",
            "85",
            "--report-file",
            str(report),
            "--wait",
            org="BJ-EIB",
        )
        ok("algorithms", "publish", algorithm_id, "--wait", org="BJ-EIB")
        shown = wait_until(lambda: as_json("algorithms", "show", algorithm_id), lambda a: a["status"] == "listed")
        assert shown["report_hash"] == "0x" + keccak(text=report.read_text(encoding="utf-8")).hex()
        assert "evaluations" in ok("algorithms", "show", algorithm_id, org="BJ-PSB")

        ok("algorithms", "admit", entry_id, algorithm_id, "--wait", org="BJ-PSB")
        wait_until(lambda: as_json("algorithms", "admitted", entry_id), lambda p: p["usable"] == 1)
        assert "1 admitted, 1 usable" in ok("algorithms", "admitted", entry_id, org="BJ-CMC")

        ok("algorithms", "delist", algorithm_id, "--reason", "输出可识别个人信息", "--wait", org="BJ-CMC")
        after = wait_until(lambda: as_json("algorithms", "admitted", entry_id), lambda p: p["usable"] == 0)
        assert after["count"] == 1 and not after["data"][0]["usable"]
        again = run("algorithms", "publish", algorithm_id, org="BJ-EIB")
        assert again.exit_code == 1 and "409 ALGORITHM_DELISTED" in again.output

        ok("algorithms", "withdraw", entry_id, algorithm_id, "--wait", org="BJ-PSB")
        wait_until(lambda: as_json("algorithms", "admitted", entry_id), lambda p: p["count"] == 0)
        refused = run("algorithms", "withdraw", entry_id, algorithm_id, org="BJ-PSB")
        assert refused.exit_code == 1 and "404 NOT_ADMITTED" in refused.output
        not_reviewer = run("algorithms", "evaluate", algorithm_id, "--score", "90", "--report", "r", org="CO-ZHCS")
        assert not_reviewer.exit_code == 1 and "403 ROLE_REQUIRED" in not_reviewer.output


def test_submit_and_evaluate_refuse_ambiguous_options_locally(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(
        cli, ["algorithms", "submit", "--name", "a", "--version", "1", "--outputs", "{}", "--code-hash",
              "0x" + "11" * 32, "--code-file", str(tmp_path)],
    )  # fmt: skip
    assert both.exit_code == 2 and "--code-hash or --code-file" in both.output
    bad_json = runner.invoke(
        cli,
        ["algorithms", "submit", "--name", "a", "--version", "1", "--outputs", "{", "--code-hash", "0x" + "11" * 32],
    )
    assert bad_json.exit_code == 2 and "not JSON" in bad_json.output
    no_report = runner.invoke(cli, ["algorithms", "evaluate", "1", "--score", "70"])
    assert no_report.exit_code == 2 and "--report-hash" in no_report.output


def test_every_algorithm_command_has_help() -> None:
    runner = CliRunner()
    commands = ("submit", "list", "show", "evaluate", "publish", "delist", "admit", "withdraw", "admitted")
    top = runner.invoke(cli, ["algorithms", "--help"])
    assert top.exit_code == 0 and all(c in top.output for c in commands)
    for command in commands:
        result = runner.invoke(cli, ["algorithms", command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
