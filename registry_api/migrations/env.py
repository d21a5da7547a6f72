"""Alembic's environment: run the revisions on the connection `registry_api.schema` hands over (no alembic.ini).

SQLite changes tables in batch mode (copy, alter, swap), since its ALTER TABLE cannot drop or change columns.
"""

from __future__ import annotations

from alembic import context

from registry_api.schema import include_object, target_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dirchain db` (registry_api.schema), which passes the connection")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    include_object=include_object,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
