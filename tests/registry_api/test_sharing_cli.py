"""The catalog and sharing CLI against a live uvicorn: search, request, and `dirchain approve` signing locally."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.auth import issue_token
from registry_api.cli import app as cli
from tests.registry_api.catalog_support import entry
from tests.registry_api.live import blocks, scheduled, serve, wait_until
from tests.support import TEST_KEYSTORE_PASSWORD


def test_cli_searches_requests_and_approves_with_a_locally_signed_decision(
    api_settings: Settings,
    chain: SeededConsortium,
    w3: Web3,
    keystore_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    with serve(scheduled(api_settings)) as (url, app), blocks(w3):
        orgs: dict[str, dict[str, object]] = {}
        for code in ("BJ-PSB", "BJ-CMC"):
            org = chain.orgs[code]
            orgs[code] = {
                "token": issue_token(app.state.engine, code, org.account, "cli"),
                "approvers": [{"account": a, "private_key": k} for a, k in org.approvers],
            }
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"api": url, "orgs": orgs}), encoding="utf-8")
        monkeypatch.setattr("registry_api.client.CREDENTIALS_PATH", credentials)
        monkeypatch.setattr("registry_api.client.resolve_credentials.__defaults__", (None, None, None, credentials))
        wait_until(lambda: app.state.indexer.status.checkpoint or 0, lambda n: n >= chain.deployment["deploy_block"])
        wait_until(lambda: app.state.indexer.status.lag, lambda lag: lag == 0)

        entry_file = tmp_path / "entry.json"
        entry_file.write_text(json.dumps(entry(), ensure_ascii=False), encoding="utf-8")
        created = runner.invoke(cli, ["catalog", "create", str(entry_file), "--org", "BJ-PSB", "--wait"])
        assert created.exit_code == 0, created.output
        found = wait_until(
            lambda: json.loads(runner.invoke(cli, ["catalog", "search", "过车", "--json", "--org", "BJ-PSB"]).output),
            lambda page: page["count"] == 1,
        )
        entry_id = found["data"][0]["id"]
        table = runner.invoke(cli, ["catalog", "search", "过车", "--org", "BJ-PSB"])
        assert "1 catalog entries" in table.output and "owner: BJ-PSB (1)" in table.output

        requested = runner.invoke(
            cli,
            ["request", "create", "--entry", str(entry_id), "--form", "result_only", "--purpose", "流量研究",
             "--days", "30", "--org", "BJ-CMC", "--wait"],
        )  # fmt: skip
        assert requested.exit_code == 0, requested.output
        queue = wait_until(
            lambda: json.loads(
                runner.invoke(cli, ["request", "list", "--pending-for-me", "--json", "--org", "BJ-PSB"]).output
            ),
            lambda page: page["count"] == 1,
        )
        request_id = str(queue["data"][0]["id"])

        first, second = chain.orgs["BJ-PSB"].approvers
        by_credentials = runner.invoke(
            cli, ["approve", request_id, "--approver", first[0], "--key-from-credentials", "--org", "BJ-PSB", "--wait"]
        )
        assert by_credentials.exit_code == 0, by_credentials.output
        assert "signed locally" in by_credentials.output and "confirmed" in by_credentials.output
        wait_until(
            lambda: json.loads(runner.invoke(cli, ["request", "get", request_id, "--org", "BJ-PSB"]).output)[
                "approvals"
            ],
            lambda n: n == 1,
        )
        replay = runner.invoke(
            cli, ["approve", request_id, "--approver", first[0], "--key-from-credentials", "--org", "BJ-PSB"]
        )
        assert replay.exit_code == 1 and "409 ALREADY_APPROVED" in replay.output

        env = {"DIRCHAIN_KEYSTORE_PASSWORD": TEST_KEYSTORE_PASSWORD.get_secret_value()}
        by_keystore = runner.invoke(
            cli,
            ["approve", request_id, "--approver", second[0], "--keystore", str(keystore_dir), "--org", "BJ-PSB",
             "--wait"],
            env=env,
        )  # fmt: skip
        assert by_keystore.exit_code == 0, by_keystore.output
        grants = wait_until(
            lambda: json.loads(runner.invoke(cli, ["grants", "list", "--json", "--org", "BJ-CMC"]).output),
            lambda page: page["count"] == 1,
        )
        assert grants["data"][0]["approvers"] == [first[0], second[0]]
        assert len(grants["data"][0]["approval_tx_hashes"]) == 2
        listed = runner.invoke(cli, ["grants", "list", "--org", "BJ-CMC"])
        assert re.search(r"1 active grants", listed.output), listed.output

        revoked = runner.invoke(
            cli,
            ["grants", "revoke", request_id, "--approver", first[0], "--reason", "停止", "--key-from-credentials",
             "--org", "BJ-PSB", "--wait"],
        )  # fmt: skip
        assert revoked.exit_code == 0, revoked.output
        wait_until(
            lambda: json.loads(runner.invoke(cli, ["grants", "list", "--json", "--org", "BJ-CMC"]).output)["count"],
            lambda n: n == 0,
        )


def test_every_catalog_and_sharing_command_has_help() -> None:
    runner = CliRunner()
    for args in (
        ["catalog"], ["catalog", "list"], ["catalog", "search"], ["catalog", "get"], ["catalog", "create"],
        ["catalog", "versions"], ["catalog", "lineage"], ["request", "create"], ["request", "list"],
        ["request", "get"], ["approve"], ["grants", "list"], ["grants", "revoke"],
    ):  # fmt: skip
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output
