"""The SQL schema under Alembic: upgrade, current and head revisions, differences from the models, adoption.

One schema serves every process (the gateway's outbox, the indexer's mirror and checkpoints, the API's tokens,
receipts, zone and imports). Its migrations live in `registry_api.migrations` (inside the distribution, so a
non-editable install migrates too) and are configured here in code: no alembic.ini.

The processes still create what is missing at start (`create_all` and `CREATE INDEX IF NOT EXISTS`): the dev
profile needs no migration step, and on a migrated database those calls find everything there and do nothing.

A database made by those calls before migrations existed has no `alembic_version` table. `adopt` brings it to the
models' schema the way a starting process would (only additions: missing tables, indexes and columns), compares it
with the models, and stamps it at head when nothing differs; anything else (a changed type, a dropped column) is
refused with the list of differences, because guessing a data migration is not safe.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from chain_gateway.settings import Settings
from registry_api.startup_lock import startup_lock

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaError",
    "adopt",
    "alembic_config",
    "check_at_start",
    "current_revision",
    "differences",
    "downgrade",
    "engine_for",
    "ensure_runtime_schema",
    "head_revision",
    "include_object",
    "is_unversioned",
    "require_head",
    "safe_url",
    "stamp",
    "target_metadata",
    "upgrade",
    "write_revision",
]

# Alembic logs each context it opens at INFO ("Context impl SQLiteImpl."): noise in the processes' logs; our
# commands print what they did.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# Made with raw SQL beside the models (expression indexes, dialect-specific full-text tables): the initial revision
# creates them, the models do not declare them, so the comparison with the models leaves them out.
RAW_INDEXES = frozenset(
    {
        "ix_devices_cell_lon",  # indexer.spatial
        "ix_devices_assessment",  # registry_api.stats
        "devices_district_type_code",  # registry_api.crud (GET /v1/devices district filters)
        "devices_district_owner_code",
        "devices_district_status_code",
        "ix_sharing_requests_entry_requester",  # registry_api.resolver
        "catalog_fts_terms",  # registry_api.search (PostgreSQL GIN)
    }
)
RAW_TABLE_PREFIX = "catalog_fts"  # registry_api.search: catalog_fts (+ FTS5 shadow tables), catalog_fts_source


class SchemaError(RuntimeError):
    """The database's schema is not what this code expects (behind head, unversioned, or different)."""


def target_metadata() -> MetaData:
    """Every table of the models (importing the modules that declare them fills SQLModel's one MetaData)."""
    import chain_gateway.outbox  # noqa: F401
    import indexer.models  # noqa: F401
    import registry_api.models  # noqa: F401

    return SQLModel.metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's filter: leave out the version table and the raw-SQL objects the models do not declare."""
    if type_ == "table" and name is not None and (name == VERSION_TABLE or name.startswith(RAW_TABLE_PREFIX)):
        return False
    return not (type_ == "index" and name in RAW_INDEXES)


def safe_url(database_url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(database_url).render_as_string(hide_password=True)


def engine_for(database_url: str) -> Engine:
    """An engine without a pool (one short-lived command; nothing to keep open)."""
    return create_engine(database_url, poolclass=NullPool)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration built in code; `connection` is handed to env.py through `attributes`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "registry_api/migrations has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped at; None when it has no version table (empty, or made by create_all)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_unversioned(engine: Engine) -> bool:
    """The database has our tables but no version: made by the processes' create_all before migrations."""
    tables = set(inspect(engine).get_table_names())
    return VERSION_TABLE not in tables and bool(tables & set(target_metadata().tables))


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    # The API's start-up lock: two `db upgrade` runs, or a migration and a starting process creating tables,
    # take turns instead of racing on the same DDL.
    with startup_lock(engine.url.render_as_string(hide_password=False)), engine.begin() as conn:
        yield conn


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _migrating(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migrating(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def stamp(engine: Engine, revision: str = "head") -> None:
    with _migrating(engine) as conn:
        command.stamp(alembic_config(conn), revision)


@contextmanager
def _expression_indexes_unreflected() -> Iterator[None]:
    # SQLAlchemy cannot reflect SQLite's expression index (ix_devices_cell_lon) and warns; it is left out anyway
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        yield


def write_revision(message: str) -> Path:
    """Autogenerate a revision from the models' differences with head (compared on a scratch SQLite database)."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = engine_for(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            upgrade(engine)
            with engine.begin() as conn, _expression_indexes_unreflected():
                script = command.revision(alembic_config(conn), message=message, autogenerate=True)
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def differences(engine: Engine, metadata: MetaData | None = None) -> list[Any]:
    """Alembic's diff of the database against the models, or `metadata` (empty: they agree); raw SQL left out."""
    metadata = target_metadata() if metadata is None else metadata
    with engine.connect() as conn, _expression_indexes_unreflected():
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True, "target_metadata": metadata}
        )
        return list(compare_metadata(context, metadata))


def ensure_runtime_schema(engine: Engine) -> None:
    """What the processes create at start when it is missing (all additions): tables, columns, raw-SQL indexes."""
    from indexer.spatial import create_spatial_index
    from registry_api.auth import create_token_table
    from registry_api.crud import create_device_read_indexes
    from registry_api.resolver import create_resolver_indexes
    from registry_api.search import create_search_tables
    from registry_api.stats import create_assessment_index

    target_metadata().create_all(engine)
    create_token_table(engine)  # adds columns newer than the table (api_tokens.expires_at)
    create_search_tables(engine)
    create_spatial_index(engine)
    create_assessment_index(engine)
    create_device_read_indexes(engine)
    create_resolver_indexes(engine)


def adopt(engine: Engine) -> list[Any]:
    """Stamp a create_all database at head if, once its missing parts are made, it equals the models.

    Returns the differences that remain (nothing stamped then). Head equals the models: the migrations test
    compares a database upgraded to head with them.
    """
    with startup_lock(engine.url.render_as_string(hide_password=False)):
        ensure_runtime_schema(engine)
    remaining = differences(engine)
    if not remaining:
        stamp(engine, "head")
    return remaining


def check_at_start(settings: Settings) -> None:
    """With DIRCHAIN_SCHEMA_CHECK on, refuse to start a process on a database behind the migrations' head.

    Production migrates once, before the processes start (`dirchain db upgrade`); a process started on an older
    database would otherwise create the newer tables itself, half-way to a schema no revision describes.
    """
    if settings.schema_check:
        require_head(settings.database_url)


def require_head(database_url: str) -> None:
    """Raise `SchemaError` unless the database is at the head revision (DIRCHAIN_SCHEMA_CHECK at start-up)."""
    engine = engine_for(database_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if current != head:
        raise SchemaError(
            f"database {safe_url(database_url)} is at schema revision {current or 'none'}, this code needs {head}: "
            "run `dirchain db upgrade` (DIRCHAIN_SCHEMA_CHECK is on)"
        )
