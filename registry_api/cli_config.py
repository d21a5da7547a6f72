"""`dirchain config`: the settings as this process sees them (secrets masked), and the reference table of the doc."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["config_app", "register"]

config_app = typer.Typer(
    help="Settings (DIRCHAIN_* environment or .env): show the values in force, or the reference table of the doc.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show() -> None:
    """Print every setting as this process reads it (keystore password masked, database password masked)."""
    from chain_gateway.settings import get_settings
    from registry_api.settings_doc import effective_values

    table = Table("env var", "value", title="settings in force")
    for name, value in effective_values(get_settings()):
        table.add_row(name, value)
    console.print(table)


@config_app.command("doc")
def doc(
    write: Annotated[
        Path | None,
        typer.Option("--write", help="replace the generated table in this Markdown file (docs/configuration.md)"),
    ] = None,
) -> None:
    """Print the Markdown reference table of every setting, generated from the Settings model (or --write it)."""
    from registry_api.settings_doc import replace_table, settings_table

    if write is None:
        print(settings_table(), end="")  # noqa: T201 - plain Markdown on stdout, for redirection
        return
    try:
        write.write_text(replace_table(write.read_text(encoding="utf-8")), encoding="utf-8")
    except (OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]{write}[/]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"wrote the settings table into {write}")
