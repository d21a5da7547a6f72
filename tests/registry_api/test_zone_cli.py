"""`dirchain resolve`, `dirchain zone jobs|rows|receipts` against the API, and `dirchain zone anchor` from settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from chain_gateway.settings import Settings, get_settings
from registry_api.capability import verify_capability
from registry_api.cli import app as cli
from registry_api.client import ApiClient, Credentials
from tests.registry_api.catalog_support import create_entry
from tests.registry_api.resolver_support import (
    api_settings,  # noqa: F401  (the fixture: keys under tmp_path, no anchoring job)
    grant,
    hotline_entry,
    listed_builtin,
)
from tests.registry_api.support import Api
from tests.support import TEST_KEYSTORE_PASSWORD


class _InProcessClient(ApiClient):
    """The CLI's client over the test app's TestClient (which must stay open after each command)."""

    def close(self) -> None:
        pass


@pytest.fixture
def run(api: Api, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke the CLI as `--org` against the test app; returns the result (exit code asserted by the caller)."""
    runner = CliRunner()

    def client(_api: str | None, _token: str | None, org: str | None) -> ApiClient:
        assert org is not None
        return _InProcessClient(Credentials("http://testserver", api.tokens[org], org), http=api.client)

    monkeypatch.setattr("registry_api.cli._client", client)

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args))

    return invoke


def test_cli_resolves_runs_a_job_reads_rows_and_shows_an_anchored_receipt(
    api: Api,
    run: Any,
    api_settings: Settings,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry_id = create_entry(api, hotline_entry())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grant(api, entry_id, "BJ-CMC", "desensitized")
    grant(api, entry_id, "CO-ZHCS", "result_only")

    shown = run("resolve", str(entry_id), "--action", "read_desensitized", "--org", "BJ-CMC")
    assert shown.exit_code == 0, shown.output
    assert "permit" in shown.output and "approval tx 0x" in shown.output and "receipt 1" in shown.output
    only = run("resolve", str(entry_id), "--action", "read_desensitized", "--token-only", "--org", "BJ-CMC")
    token = only.output.strip()
    jwks = api.client.get("/v1/resolver/jwks").json()
    assert verify_capability(token, jwks, entry_id=entry_id, form="desensitized")["sub"] == "BJ-CMC"
    denied = run("resolve", str(entry_id), "--action", "read_raw", "--org", "BJ-CMC")
    assert denied.exit_code == 3 and "FORM_NOT_ALLOWED" in denied.output

    rows = run("zone", "rows", str(entry_id), "--capability", token, "--limit", "2", "--org", "BJ-CMC")
    assert rows.exit_code == 0, rows.output
    page = json.loads(rows.output)
    assert page["form"] == "desensitized" and len(page["data"]) == 2 and "content" not in page["data"][0]

    params = json.dumps({"group_by": ["street"]})
    ran = run("zone", "jobs", "run", "--entry", str(entry_id), "--algorithm", str(algorithm_id), "--params", params,
              "--epsilon", "0.5", "--json", "--org", "CO-ZHCS")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    job = json.loads(ran.output)
    assert job["epsilon_spent"] == 0.5 and job["result"]["groups"]
    table = run("zone", "jobs", "show", job["id"], "--org", "CO-ZHCS")
    assert (
        table.exit_code == 0 and "suppressed groups" in table.output and f"receipt {job['receipt_id']}" in table.output
    )
    bad = run("zone", "jobs", "run", "--entry", str(entry_id), "--algorithm", str(algorithm_id), "--params", "{",
              "--org", "CO-ZHCS")  # fmt: skip
    assert bad.exit_code != 0

    pending = run("zone", "receipts", "show", str(job["receipt_id"]), "--org", "CO-ZHCS")
    assert pending.exit_code == 0 and "not anchored yet" in pending.output

    # `dirchain zone anchor` works from the settings alone (its own engine and gateway), as an operator runs it
    for name, value in {
        "DIRCHAIN_DATABASE_URL": api_settings.database_url,
        "DIRCHAIN_RPC_URLS": json.dumps(api_settings.rpc_urls),
        "DIRCHAIN_CHAIN_ID": str(api_settings.chain_id),
        "DIRCHAIN_DEPLOYMENTS_PATH": str(api_settings.deployments_path),
        "DIRCHAIN_KEYSTORE_DIR": str(api_settings.keystore_dir),
        "DIRCHAIN_KEYSTORE_PASSWORD": TEST_KEYSTORE_PASSWORD.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        anchored = run("zone", "anchor")
    finally:
        get_settings.cache_clear()
    assert anchored.exit_code == 0, anchored.output
    assert "receipts 1..3: queued" in anchored.output
    operation_id = anchored.output.strip().split("operation ")[-1]
    assert api.settle(operation_id, "BJ-EIB")["status"] == "confirmed"
    proof = run("zone", "receipts", "show", str(job["receipt_id"]), "--org", "CO-ZHCS")
    assert proof.exit_code == 0 and "anchored in batch 1 (receipts 1..3)" in proof.output
    assert "proof 0x" in proof.output and "MISMATCH" not in proof.output
