"""docs/configuration.md follows the Settings model, `dirchain config` masks secrets, `dirchain db revision` writes
a revision from the models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.settings import Settings, get_settings
from registry_api import schema
from registry_api.cli import app as cli
from registry_api.settings_doc import END, READ_BY, START, replace_table, settings_table

DOC = PROJECT_ROOT / "docs" / "configuration.md"
runner = CliRunner()


def test_configuration_doc_lists_every_setting_as_the_model_declares_it() -> None:
    document = DOC.read_text(encoding="utf-8")
    assert START in document and END in document
    # fails when a field is added, renamed, re-typed, re-defaulted or re-described without regenerating the doc:
    # `dirchain config doc --write docs/configuration.md`
    assert replace_table(document) == document
    for name in Settings.model_fields:
        assert f"`DIRCHAIN_{name.upper()}`" in document


def test_every_setting_has_a_description_and_its_reading_processes() -> None:
    assert set(READ_BY) == set(Settings.model_fields)
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []
    assert "| ? |" not in settings_table()


def test_config_show_masks_the_keystore_and_database_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRCHAIN_DATABASE_URL", "postgresql+psycopg://dirchain:db-secret-1@db.internal/dirchain")
    monkeypatch.setenv("DIRCHAIN_KEYSTORE_PASSWORD", "keystore-secret-2")
    monkeypatch.setenv("DIRCHAIN_RPC_URLS", '["http://node-a:8545", "http://node-b:8545"]')
    get_settings.cache_clear()
    try:
        answer = runner.invoke(cli, ["config", "show"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert answer.exit_code == 0, answer.output
    assert "db-secret-1" not in answer.output and "keystore-secret-2" not in answer.output
    assert "dirchain:***@db.internal" in answer.output and "node-b:8545" in answer.output


def test_db_revision_writes_an_empty_revision_when_the_models_match_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"  # a copy: the command writes into the migrations it is given
    shutil.copytree(schema.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", migrations)
    answer = runner.invoke(cli, ["db", "revision", "-m", "nothing changed"])
    assert answer.exit_code == 0, answer.output
    [written] = [p for p in (migrations / "versions").glob("*.py") if p.name != "__init__.py" and "0001" not in p.name]
    text = written.read_text(encoding="utf-8")
    assert "down_revision: str | None = '0001'" in text and schema.head_revision() != "0001"  # the new head
    upgrade = text.split("def upgrade() -> None:", 1)[1].split("def downgrade", 1)[0]
    assert [line.strip() for line in upgrade.splitlines() if line.strip() and "#" not in line] == ["pass"]
