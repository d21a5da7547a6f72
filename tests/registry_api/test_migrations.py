"""The schema's migrations on SQLite and PostgreSQL: head equals the models and what the processes create, a
create_all database is adopted only when equal, and the API and gateway work on a migrated database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Column, Engine, MetaData, String, inspect, text
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api import schema
from registry_api.app import create_app
from registry_api.auth import issue_token
from registry_api.cli import app as cli
from tests.registry_api.support import Api, device
from tests.support.postgres import PostgresServer

runner = CliRunner()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = schema.engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def other_engine(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A second empty database on the same backend as `database_url`."""
    if database_url.startswith("sqlite"):
        engine = schema.engine_for(f"sqlite:///{tmp_path / 'other.db'}")
        yield engine
        engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("t_" + uuid.uuid4().hex[:12])
    engine = schema.engine_for(url)
    yield engine
    engine.dispose()
    server.drop_database(url)


def catalog(engine: Engine) -> set[tuple[Any, ...]]:
    """Every table column, index and constraint as the database's own catalog describes it (version table left out)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            queries = {
                "column": "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = current_schema()",
                "index": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
                "constraint": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace",
            }
            rows = {(kind, *row) for kind, sql in queries.items() for row in conn.execute(text(sql))}
        else:
            objects = conn.execute(text("SELECT type, name, tbl_name FROM sqlite_master")).all()
            rows = {tuple(o) for o in objects}
            for kind, name, _ in objects:
                pragma = "table_info" if kind == "table" else "index_info"
                rows |= {(name, *r) for r in conn.execute(text(f'PRAGMA {pragma}("{name}")'))}
    return {row for row in rows if not any(schema.VERSION_TABLE in str(part) for part in row)}


def test_upgrade_to_head_gives_the_models_schema_and_what_the_processes_create(
    engine: Engine, other_engine: Engine
) -> None:
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    assert schema.differences(engine) == []  # a model changed without a migration fails here
    schema.ensure_runtime_schema(other_engine)  # a database as the processes make it without migrations
    assert catalog(engine) == catalog(other_engine)  # raw-SQL indexes and search tables included

    # the comparison sees a model change: the same models plus one column differ from the migrated database
    changed = MetaData()
    for table in schema.target_metadata().tables.values():
        table.to_metadata(changed)
    changed.tables["devices"].append_column(Column("legacy_ref", String(16)))
    assert [d[0] for d in schema.differences(engine, changed)] == ["add_column"]


def test_downgrade_to_base_leaves_no_tables(engine: Engine) -> None:
    schema.upgrade(engine)
    schema.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {schema.VERSION_TABLE}  # Alembic keeps its table, empty
    assert catalog(engine) == set()
    assert schema.current_revision(engine) is None


def test_upgrade_adopts_a_create_all_database_that_equals_the_models(engine: Engine, database_url: str) -> None:
    schema.ensure_runtime_schema(engine)  # made by the processes before migrations existed
    issue_token(engine, "BJ-PSB", "0x" + "11" * 20, "before migrations")
    assert schema.is_unversioned(engine)

    upgraded = runner.invoke(cli, ["db", "upgrade", "--database-url", database_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"stamped at {schema.head_revision()}" in upgraded.output
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as conn:  # nothing recreated: the rows made before stay
        assert conn.execute(text("SELECT label FROM api_tokens")).scalars().all() == ["before migrations"]
    checked = runner.invoke(cli, ["db", "check", "--database-url", database_url])
    assert checked.exit_code == 0, checked.output


def test_upgrade_refuses_a_create_all_database_that_differs_and_stamps_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = schema.engine_for(url)
    try:
        schema.ensure_runtime_schema(engine)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE devices ADD COLUMN legacy_ref TEXT"))  # no model has it
        answer = runner.invoke(cli, ["db", "upgrade", "--database-url", url])
        assert answer.exit_code == 1
        assert "refused" in answer.output and "remove_column devices.legacy_ref" in answer.output
        assert schema.current_revision(engine) is None and schema.is_unversioned(engine)
    finally:
        engine.dispose()


def test_check_fails_until_upgraded_and_no_command_prints_the_password(postgres: PostgresServer) -> None:
    url = postgres.create_database("t_" + uuid.uuid4().hex[:12])
    secret = "pw-" + uuid.uuid4().hex
    with_password = url.replace("postgres@", f"postgres:{secret}@")  # the test server trusts loopback: any password
    assert secret in with_password
    try:
        outputs = []
        for args, code in [
            (["check"], 1),
            (["current"], 0),
            (["upgrade"], 0),
            (["current"], 0),
            (["check"], 0),
            (["downgrade", "base"], 1),  # refused without --yes
            (["downgrade", "base", "--yes"], 0),
        ]:
            answer = runner.invoke(cli, ["db", *args, "--database-url", with_password])
            assert answer.exit_code == code, (args, answer.output)
            outputs.append(answer.output)
        assert not any(secret in o for o in outputs)
        assert "empty -> " + schema.head_revision() in outputs[2] and "***" in outputs[2]
        assert "Traceback" not in "".join(outputs)
    finally:
        postgres.drop_database(url)


def test_unreachable_database_is_one_line_without_the_password() -> None:
    answer = runner.invoke(cli, ["db", "current", "--database-url", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"])
    assert answer.exit_code == 1
    assert "hunter2" not in answer.output and "Traceback" not in answer.output and "u:***@" in answer.output


def test_schema_check_refuses_to_start_on_a_database_behind_head(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"schema_check": True})
    with pytest.raises(schema.SchemaError, match="dirchain db upgrade"), TestClient(create_app(settings)):
        pass


def test_api_serves_and_gateway_enqueues_on_a_migrated_database(
    api_settings: Settings, chain: SeededConsortium, w3: Web3
) -> None:
    """With DIRCHAIN_SCHEMA_CHECK on; the processes' start-up DDL finds everything there and changes nothing."""
    engine = schema.engine_for(api_settings.database_url)
    try:
        schema.upgrade(engine)
        before = catalog(engine)
        app = create_app(api_settings.model_copy(update={"schema_check": True}))
        with TestClient(app) as client:
            tokens = {"BJ-PSB": issue_token(app.state.engine, "BJ-PSB", chain.orgs["BJ-PSB"].account, "tests")}
            api = Api(client=client, app=app, tokens=tokens, chain=chain, w3=w3)
            api.sync()
            op = api.register([device(1)])  # enqueued in the migrated outbox, sent, confirmed, indexed
            one = api.get("/v1/devices/BJ-CAMR-110105000001")
            assert one.status_code == 200 and one.json()["tx_hash"] == op["tx_hash"]
        assert catalog(engine) == before
        assert schema.differences(engine) == []
    finally:
        engine.dispose()
