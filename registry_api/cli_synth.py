"""`dirchain synth city`: write a synthetic city (registry_api.synthetic_city) for scale runs and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from registry_api.synthetic_city import write_city

__all__ = ["register"]

err = Console(stderr=True)
synth_app = typer.Typer(help="Synthetic data for scale runs and benchmarks.", no_args_is_help=True)


@synth_app.command("city")
def city_command(
    devices: Annotated[int, typer.Option(min=1, max=20_000_000, help="how many devices")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="the same seed and size write the same bytes")] = 1,
    out: Annotated[Path, typer.Option(help="directory for devices.csv, carriers.ndjson, catalog.ndjson")] = Path(
        "var/city"
    ),
) -> None:
    """Write a synthetic city: DEVICES devices over Beijing's 16 districts (weighted by population), typed like the
    demo consortium's code rules (cameras of BJ-PSB; air, water, flood and gas sensors of BJ-EIB, BJ-CMC, BJ-EMB;
    some of Chaoyang's own), as a CSV the bulk import takes (`dirchain import` per owner org); their carriers (about
    four devices per pole or mount) and one catalog entry per owner, type and district as NDJSON."""
    with Progress(
        TextColumn("writing devices"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("devices", total=devices)
        paths = write_city(out, devices, seed, progress=lambda rows: bar.update(task, completed=rows))
    for path in paths.values():
        err.print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def register(app: typer.Typer) -> None:
    """Add `dirchain synth` to the main app."""
    app.add_typer(synth_app, name="synth")
