"""The API with gateway and indexer scheduled in-process, and the CLI against a real HTTP server."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.logs import configure_logging
from chain_gateway.settings import Settings, get_settings
from registry_api.app import create_app
from registry_api.auth import issue_token, list_tokens
from registry_api.cli import app as cli
from tests.registry_api.live import blocks, scheduled, serve, wait_until
from tests.registry_api.support import device


def test_scheduler_runs_gateway_and_indexer_in_the_api(
    api_settings: Settings, chain: SeededConsortium, w3: Web3
) -> None:
    app = create_app(scheduled(api_settings))
    with TestClient(app) as client, blocks(w3):
        headers = {"Authorization": f"Bearer {issue_token(app.state.engine, 'BJ-PSB', chain.orgs['BJ-PSB'].account)}"}
        # the indexer mirrors the roles first; until then the org holds no role here
        wait_until(lambda: client.get("/v1/members/BJ-PSB", headers=headers).status_code, lambda s: s == 200)
        accepted = client.post("/v1/devices", json={"devices": [device(1), device(2)]}, headers=headers)
        assert accepted.status_code == 202, accepted.text
        op = wait_until(
            lambda: client.get(accepted.json()["links"]["operation"], headers=headers).json(),
            lambda o: o["status"] in ("confirmed", "failed"),
        )
        assert op["status"] == "confirmed"
        listed = wait_until(lambda: client.get("/v1/devices", headers=headers).json(), lambda p: p["count"] == 2)
        assert {d["tx_hash"] for d in listed["data"]} == {op["tx_hash"]}
        health = client.get("/healthz").json()
        assert health["indexer"]["running_here"] and health["outbox"]["running_here"]
        assert health["outbox"]["queue_depth"] == 0


@pytest.fixture
def logs_on_stderr() -> Iterator[None]:
    """The in-process server logs as `dirchain serve` does: through one handler on the real stderr. Unconfigured,
    structlog prints to whatever sys.stdout is, and CliRunner swaps in its own while a command runs: a gateway
    line signed meanwhile would land in the command's --json output."""
    configure_logging(json_logs=False)
    yield
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()


@pytest.mark.usefixtures("logs_on_stderr")
def test_cli_registers_waits_lists_and_shows_history(
    api_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    with serve(scheduled(api_settings)) as (url, app), blocks(w3):
        token = issue_token(app.state.engine, "BJ-PSB", chain.orgs["BJ-PSB"].account, "cli")
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"api": url, "orgs": {"BJ-PSB": {"token": token}}}), encoding="utf-8")
        monkeypatch.setattr("registry_api.client.CREDENTIALS_PATH", credentials)
        monkeypatch.setattr("registry_api.client.resolve_credentials.__defaults__", (None, None, None, credentials))
        wait_until(lambda: app.state.indexer.status.checkpoint or 0, lambda n: n >= chain.deployment["deploy_block"])
        time.sleep(0.5)
        devices_file = tmp_path / "devices.json"
        devices_file.write_text(json.dumps([device(1), device(2, status="planned")], ensure_ascii=False), "utf-8")

        registered = runner.invoke(cli, ["devices", "register", str(devices_file), "--org", "BJ-PSB", "--wait"])
        assert registered.exit_code == 0, registered.output
        assert "confirmed" in registered.output and "tx_hash" in registered.output

        env = {"DIRCHAIN_API": url, "DIRCHAIN_TOKEN": token}
        wait_until(lambda: app.state.indexer.status.lag, lambda lag: lag == 0)
        listed = runner.invoke(cli, ["devices", "list", "--status", "planned", "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        page = json.loads(listed.output)
        assert page["count"] == 1 and page["data"][0]["code"] == "BJ-CAMR-110105000002"
        table = runner.invoke(cli, ["devices", "list"], env=env)
        assert "BJ-CAMR-110105000001" in table.output and "2 devices" in table.output

        got = runner.invoke(cli, ["devices", "get", "BJ-CAMR-110105000001", "--api", url, "--token", token])
        assert got.exit_code == 0 and json.loads(got.output)["owner_org"] == "BJ-PSB"

        activated = runner.invoke(
            cli, ["devices", "lifecycle", "BJ-CAMR-110105000002", "activate", "--wait", "--note", "上线"], env=env
        )
        assert activated.exit_code == 0, activated.output
        history = runner.invoke(cli, ["devices", "history", "BJ-CAMR-110105000002", "--json"], env=env)
        events = wait_until(
            lambda: json.loads(
                runner.invoke(cli, ["devices", "history", "BJ-CAMR-110105000002", "--json"], env=env).output
            ),
            lambda h: h["count"] == 2,
        )
        assert history.exit_code == 0
        assert [e["event"] for e in events["data"]] == ["DeviceRegistered", "DeviceLifecycleChanged"]

        refused = runner.invoke(cli, ["devices", "lifecycle", "BJ-CAMR-110105000001", "resume"], env=env)
        assert refused.exit_code == 1
        assert "409 ILLEGAL_TRANSITION" in refused.output and "DeviceRegistryIllegalTransition" in refused.output

        accepted = runner.invoke(cli, ["devices", "lifecycle", "BJ-CAMR-110105000001", "suspend"], env=env)
        found = re.search(r"operation ([0-9a-f]{32}): queued", accepted.output)
        assert found, accepted.output
        op_id = found.group(1)
        waited = runner.invoke(cli, ["operations", "get", op_id, "--wait", "--json"], env=env)
        assert waited.exit_code == 0, (accepted.output, waited.output)
        assert json.loads(waited.output)["status"] == "confirmed"

        unauthenticated = runner.invoke(cli, ["devices", "list"], env={"DIRCHAIN_API": url, "DIRCHAIN_TOKEN": "bad"})
        assert unauthenticated.exit_code == 1 and "401 UNAUTHENTICATED" in unauthenticated.output


def test_cli_tokens_issue_list_revoke(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRCHAIN_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        account = "0x" + "ab" * 20
        issued = runner.invoke(cli, ["tokens", "issue", "--org", "BJ-EMB", "--account", account, "--label", "ops"])
        assert issued.exit_code == 0, issued.output
        token = next(line for line in issued.output.splitlines() if line.startswith("dct_"))
        listed = runner.invoke(cli, ["tokens", "list", "--org", "BJ-EMB"])
        assert "BJ-EMB" in listed.output and token not in listed.output
        assert runner.invoke(cli, ["tokens", "revoke", token]).exit_code == 0
        assert runner.invoke(cli, ["tokens", "revoke", "dct_unknown"]).exit_code == 1
        bad = runner.invoke(cli, ["tokens", "issue", "--org", "BJ-EMB", "--account", "nope"])
        assert bad.exit_code == 2
        from sqlalchemy import create_engine

        engine = create_engine(database_url)
        try:
            assert [t.revoked for t in list_tokens(engine, "BJ-EMB")] == [True]
        finally:
            engine.dispose()
    finally:
        get_settings.cache_clear()


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(command, "commands"):  # a group (typer may bring its own click: no isinstance)
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*path, name))


def test_every_cli_command_has_help() -> None:
    runner = CliRunner()
    root = typer.main.get_command(cli)
    paths = list(_command_paths(root))
    assert len(paths) > 60 and ("proposals", "vote") in paths and ("zone", "jobs", "run") in paths
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        assert (command.help or "").strip(), f"dirchain {' '.join(path)} has no help text"
