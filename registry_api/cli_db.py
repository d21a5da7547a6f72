"""`dirchain db`: the SQL schema's migrations (Alembic, registry_api/migrations) against DIRCHAIN_DATABASE_URL.

`upgrade` also adopts a database made by the processes' create_all before migrations existed (no alembic_version
table): what a starting process would add is added, the result is compared with the models, and it is stamped
at head only when nothing differs; otherwise the differences are listed and nothing is stamped (see
registry_api.schema). URLs are printed with the password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["db_app", "register"]

db_app = typer.Typer(
    help="The SQL schema: upgrade (migrate to head), current, check, downgrade, revision (developers).",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)  # one line per message, whatever the terminal width
err = Console(stderr=True, soft_wrap=True)

UrlOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="database URL (default: settings, DIRCHAIN_DATABASE_URL)", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@contextmanager
def _engine(database_url: str | None) -> Iterator[tuple[Engine, str]]:
    """The engine and the masked URL; a database error ends the command with one line, never a stack trace."""
    from registry_api import schema

    if database_url is None:
        from chain_gateway.settings import get_settings

        database_url = get_settings().database_url
    shown = schema.safe_url(database_url)
    engine = schema.engine_for(database_url)
    try:
        yield engine, shown
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) is not None else exc).strip().splitlines()[0]
        err.print(f"[red]database {shown}[/]: {first}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _show_differences(diffs: list[Any]) -> None:
    for diff in diffs:
        err.print(f"  {_describe(diff)}", highlight=False, markup=False)


def _describe(diff: Any) -> str:
    """One line of an Alembic difference: `add_table devices`, `remove_column devices.legacy`, ..."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    if kind in ("add_table", "remove_table"):
        return f"{kind} {rest[0].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {rest[1]}.{rest[2].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        obj = rest[0]
        return f"{kind} {obj.name or '(unnamed)'} on {obj.table.name} ({', '.join(c.name for c in obj.columns)})"
    if kind.startswith("modify_"):
        return f"{kind} {rest[1]}.{rest[2]}: {rest[-2]!r} in the database, {rest[-1]!r} in the models"
    return " ".join(map(str, diff))


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    database_url: UrlOpt = None,
) -> None:
    """Migrate the database to head (or --revision); adopts a database made by create_all before migrations."""
    from registry_api import schema

    with _engine(database_url) as (engine, shown):
        if schema.is_unversioned(engine):
            console.print(f"database {shown}: made without migrations; comparing it with the models", highlight=False)
            remaining = schema.adopt(engine)
            if remaining:
                err.print(
                    f"[red]refused[/]: {len(remaining)} difference(s) from the models that adding tables and indexes "
                    "cannot fix; migrate them by hand (or dump, upgrade an empty database, reload), then "
                    "`dirchain db upgrade`:",
                    highlight=False,
                )
                _show_differences(remaining)
                raise typer.Exit(1)
            console.print(f"database {shown}: equal to the models, stamped at {schema.head_revision()}")
            if revision == "head":
                return
        before = schema.current_revision(engine)
        schema.upgrade(engine, revision)
        after = schema.current_revision(engine)
    moved = "already at" if before == after else f"{before or 'empty'} ->"
    console.print(f"database {shown}: {moved} {after} (head {schema.head_revision()})", highlight=False)


@db_app.command("current")
def current(database_url: UrlOpt = None) -> None:
    """Print the database's schema revision and the code's head revision."""
    from registry_api import schema

    with _engine(database_url) as (engine, shown):
        revision = schema.current_revision(engine)
        if revision is None:
            revision = (
                "none (made without migrations: `dirchain db upgrade` adopts it)"
                if schema.is_unversioned(engine)
                else "none (empty)"
            )
    console.print(f"database {shown}: {revision}; head {schema.head_revision()}", highlight=False)


@db_app.command("check")
def check(database_url: UrlOpt = None) -> None:
    """Exit 1 unless the database is at head and equal to the models (for deploy scripts and CI)."""
    from registry_api import schema

    with _engine(database_url) as (engine, shown):
        revision = schema.current_revision(engine)
        head = schema.head_revision()
        if revision != head:
            err.print(f"[red]database {shown} is at {revision or 'no revision'}, head is {head}[/]: run `dirchain db "
                      "upgrade`", highlight=False)  # fmt: skip
            raise typer.Exit(1)
        diffs = schema.differences(engine)
    if diffs:
        err.print(f"[red]database {shown} is at head but differs from the models[/] (a model changed without a "
                  "migration: `dirchain db revision`):", highlight=False)  # fmt: skip
        _show_differences(diffs)
        raise typer.Exit(1)
    console.print(f"database {shown}: at head {head}, equal to the models", highlight=False)


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="target revision: an id, -1 (one step back) or base (nothing)")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: a downgrade drops tables and their rows")] = False,
    database_url: UrlOpt = None,
) -> None:
    """Migrate the database back to REVISION (base drops every table: the mirror can be rebuilt, the outbox not)."""
    from registry_api import schema

    if not yes:
        err.print("[red]refused[/]: a downgrade drops tables and their rows; add --yes")
        raise typer.Exit(1)
    with _engine(database_url) as (engine, shown):
        before = schema.current_revision(engine)
        schema.downgrade(engine, revision)
        after = schema.current_revision(engine)
    console.print(f"database {shown}: {before or 'empty'} -> {after or 'base'}", highlight=False)


@db_app.command("revision")
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="what the revision changes")],
) -> None:
    """Write a new revision from the models' differences with head (developers: then read and fix it)."""
    from registry_api import schema

    path = schema.write_revision(message)
    console.print(f"wrote {path}: read it, fix what autogenerate cannot see (data, raw SQL), test both databases")
