"""GET /v1/audit/verify and `dirchain audit verify`: the live mirror rebuilt from the chain and compared, served to
auditors; a tampered row is reported with its block, through the API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chain_gateway.settings import Settings, get_settings
from registry_api.cli import app as cli
from tests.registry_api.audit_support import cli_env
from tests.registry_api.support import Api, device

AUDITOR_ORG = "AU-BJ"


@pytest.fixture
def registered(api: Api) -> list[str]:
    """Three devices registered through the API and mirrored."""
    devices = [device(8_100 + i) for i in range(3)]
    api.register(devices)
    api.sync()
    return [d["code"] for d in devices]


def tamper(api: Api, sql: str, **params: object) -> None:
    with api.app.state.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def test_an_auditor_gets_a_clean_verdict_for_an_untampered_mirror(api: Api, registered: list[str]) -> None:
    answer = api.get("/v1/audit/verify", org=AUDITOR_ORG)

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["ok"] is True
    assert report["first_divergent_block"] is None and report["divergent_blocks"] == []
    assert report["live_digest"] == report["chain_digest"]
    assert report["block"] == api.app.state.indexer.checkpoint
    devices = next(t for t in report["tables"] if t["table"] == "devices")
    assert devices["live_rows"] == devices["chain_rows"] >= 3 and devices["samples"] == []


def test_an_edited_row_is_reported_with_its_block(api: Api, registered: list[str]) -> None:
    tamper(api, "UPDATE devices SET owner_org_id = 99 WHERE code = :code", code=registered[1])

    report = api.get("/v1/audit/verify", org=AUDITOR_ORG, params={"samples": 5}).json()

    assert report["ok"] is False
    bad = [t for t in report["tables"] if not t["ok"]]
    assert [t["table"] for t in bad] == ["devices"]
    (sample,) = bad[0]["samples"]
    assert (sample["kind"], sample["key"], sample["columns"]) == (
        "differing",
        {"code": registered[1]},
        ["owner_org_id"],
    )
    assert sample["live"]["owner_org_id"] == 99 and sample["chain"]["owner_org_id"] != 99
    assert report["first_divergent_block"] == sample["block"] == sample["chain"]["updated_block"]


def test_verification_needs_the_auditor_role(api: Api, registered: list[str]) -> None:
    refused = api.get("/v1/audit/verify", org="BJ-PSB")
    anonymous = api.client.get("/v1/audit/verify")
    bad_samples = api.get("/v1/audit/verify", org=AUDITOR_ORG, params={"samples": 0})

    assert (refused.status_code, refused.json()["code"]) == (403, "ROLE_REQUIRED")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "UNAUTHENTICATED")
    assert bad_samples.status_code == 422 and bad_samples.json()["field"] == "samples"


def test_a_mirror_on_a_fork_is_not_verifiable(api: Api, registered: list[str]) -> None:
    tamper(api, "UPDATE indexer_checkpoints SET block_hash = :h", h="0x" + "22" * 32)

    answer = api.get("/v1/audit/verify", org=AUDITOR_ORG)

    assert (answer.status_code, answer.json()["code"]) == (409, "MIRROR_NOT_VERIFIABLE")


@pytest.fixture
def cli_settings(api_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI's settings (environment) naming the test's chain and database."""
    for name, value in cli_env(api_settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        yield api_settings
    finally:
        get_settings.cache_clear()


def test_the_cli_verifies_clean_and_then_reports_a_deleted_row(
    api: Api, registered: list[str], cli_settings: Settings
) -> None:
    clean = CliRunner().invoke(cli, ["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    assert "VERIFIED" in clean.output

    tamper(api, "DELETE FROM devices WHERE code = :code", code=registered[2])
    differs = CliRunner().invoke(cli, ["audit", "verify", "--json"])

    assert differs.exit_code == 1, differs.output
    report = json.loads(differs.stdout)
    devices = next(t for t in report["tables"] if t["table"] == "devices")
    assert (devices["missing"], devices["extra"], devices["differing"]) == (1, 0, 0)
    assert devices["samples"][0]["key"] == {"code": registered[2]}
    assert report["first_divergent_block"] == devices["samples"][0]["block"]


def test_the_cli_cannot_verify_an_empty_database(cli_settings: Settings, tmp_path: object) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", f"sqlite:///{tmp_path}/empty.db"])

    assert result.exit_code == 2
    assert "cannot audit" in result.output
