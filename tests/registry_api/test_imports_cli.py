"""`dirchain import` and `dirchain imports list|show|report` against a live API with the import runner inside."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.auth import issue_token
from registry_api.cli import app as cli
from tests.registry_api.import_support import registrations, sample_rows, write_csv
from tests.registry_api.live import blocks, scheduled, serve, wait_until


def test_cli_imports_a_file_follows_it_and_downloads_the_report(
    api_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    settings = scheduled(api_settings).model_copy(
        update={"run_imports_in_api": True, "import_dir": tmp_path / "imports", "import_poll_seconds": 0.1}
    )
    path = tmp_path / "devices.csv"
    sample = write_csv(path, sample_rows(400, bad_every=20, seed=23, serial_base=70_000)).unregistered()
    runner = CliRunner()
    with serve(settings) as (url, app), blocks(w3):
        token = issue_token(app.state.engine, "BJ-PSB", chain.orgs["BJ-PSB"].account, "cli")
        env = {"DIRCHAIN_API": url, "DIRCHAIN_TOKEN": token}
        wait_until(lambda: app.state.indexer.status.lag, lambda lag: lag == 0)

        imported = runner.invoke(cli, ["import", str(path)], env=env)

        assert imported.exit_code == 0, imported.output
        assert "done" in imported.output and "rejected rows" in imported.output
        assert "OUTSIDE_CITY" in imported.output and "dirchain imports report" in imported.output
        page = json.loads(runner.invoke(cli, ["imports", "list", "--json"], env=env).output)
        assert page["count"] == 1
        import_id = page["data"][0]["import_id"]
        assert import_id in runner.invoke(cli, ["imports", "list"], env=env).output
        shown = json.loads(runner.invoke(cli, ["imports", "show", import_id, "--json"], env=env).output)
        assert shown["status"] == "done" and shown["rows"]["rejected"] == len(sample.bad)
        assert shown["rows"]["confirmed"] == len(sample.good)

        report = tmp_path / "rejected.csv"
        written = runner.invoke(
            cli, ["imports", "report", import_id, "--outcome", "rejected", "-o", str(report)], env=env
        )
        assert written.exit_code == 0, written.output
        with report.open(encoding="utf-8") as lines:
            rejected = {int(r["row"]): (r["reason_code"], r["column"] or None) for r in csv.DictReader(lines)}
        assert rejected == sample.bad

        again = runner.invoke(cli, ["import", str(path), "--no-wait", "--json"], env=env)  # all duplicates now
        assert again.exit_code == 0, again.output
        second = json.loads(again.stdout)["import_id"]  # the upload's progress went to stderr
        followed = runner.invoke(cli, ["imports", "show", second, "--follow"], env=env)
        assert followed.exit_code == 0 and "done" in followed.output
        missing = runner.invoke(cli, ["imports", "show", "0" * 32], env=env)
        assert missing.exit_code == 1 and "404 IMPORT_NOT_FOUND" in missing.output

    counts = registrations(w3, chain.deployment, sample.good)
    assert all(counts[code] == 1 for code in sample.good)
