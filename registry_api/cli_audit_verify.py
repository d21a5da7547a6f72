"""`dirchain audit verify`: rebuild the mirror from the chain and compare it with the database (indexer.verify).

Runs where the auditor is: the chain over JSON-RPC and the mirror's database directly, from the settings
(DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL, deployments/<chainId>.json) or the options; the API is not asked.
Exit codes: 0 the mirror equals the chain, 1 it differs, 2 the verification could not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from indexer.verify import DEFAULT_SAMPLES, VerifyError, verify_mirror
from registry_api.audit.mirror import verify_public
from registry_api.cli_audit_common import EXIT_FAILED, cannot, local_chain
from registry_api.schemas.audit import VerifyPublic

__all__ = ["register"]

console = Console()
err = Console(stderr=True)


_HELP = """Rebuild every mirror table from the chain's logs into a scratch database, up to the live mirror's
checkpoint, and compare the two row by row in one read snapshot of the live database. Every row is attributed to
the block that last shaped it; a digest per block and their chain (a proof of indexing) locate the first block
where the mirror diverges from the chain. Rows are reported as missing (on the chain, not in the mirror), extra (in
the mirror only) or differing (with the columns). Reads the chain and the database named by the settings
(DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL) unless --rpc / --database-url are given. Exit 1 when the mirror differs,
2 when it cannot be verified."""


def _show(report: VerifyPublic) -> None:
    table = Table(title=f"mirror at block {report.block} ({report.block_hash})", title_justify="left")
    for column in ("table", "live rows", "chain rows", "missing", "extra", "differing", ""):
        table.add_column(column, justify="left" if column in ("table", "") else "right")
    for t in report.tables:
        mark = "[green]ok[/]" if t.ok else "[red]DIFFERS[/]"
        table.add_row(t.table, f"{t.live_rows:,}", f"{t.chain_rows:,}", str(t.missing), str(t.extra),
                      str(t.differing), mark)  # fmt: skip
    console.print(table)
    for t in report.tables:
        for s in t.samples:
            row = s.live if s.live is not None else s.chain
            shown = {c: (s.live or {}).get(c) for c in s.columns} if s.columns else row
            chain = {c: (s.chain or {}).get(c) for c in s.columns} if s.columns else None
            line = f"[red]{s.kind}[/] {t.table} {escape(json.dumps(s.key, ensure_ascii=False))} at block {s.block}"
            line += f": mirror {escape(_compact(shown))}"
            if chain is not None:
                line += f", chain {escape(_compact(chain))}"
            console.print(line)
    console.print(
        f"{report.events:,} events replayed in {report.rebuild_seconds:.1f} s, compared in "
        f"{report.compare_seconds:.1f} s; {report.blocks:,} blocks with rows"
    )
    console.print(f"digest of the mirror  {report.live_digest}\ndigest of the chain   {report.chain_digest}")
    if report.ok:
        console.print("[bold green]VERIFIED[/]: the mirror equals the chain's logs replayed")
    else:
        console.print(
            f"[bold red]DIFFERS[/]: first divergent block {report.first_divergent_block} "
            f"({report.divergent_block_count} blocks differ)"
        )


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def verify_command(
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the node (default: settings)")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="the mirror's database (default: settings)")
    ] = None,
    samples: Annotated[
        int, typer.Option(min=1, max=1_000, help="differing rows shown per table and kind")
    ] = DEFAULT_SAMPLES,
    scratch_dir: Annotated[
        Path | None, typer.Option(help="where to build the scratch database (default: a temporary directory)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON instead of tables")] = False,
) -> None:
    from chain_gateway.settings import get_settings

    with local_chain(rpc_url, database_url) as (rpc, deployment, engine):
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True, disable=as_json,
        ) as bar:  # fmt: skip
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task("replaying blocks" if stage == "rebuild" else "comparing tables")
                bar.update(tasks[stage], completed=done, total=total)

            try:
                report = verify_mirror(
                    engine, rpc, deployment, scratch_dir=scratch_dir or get_settings().audit_scratch_dir,
                    samples=samples, progress=progress,
                )  # fmt: skip
            except VerifyError as exc:
                cannot(str(exc))
    public = verify_public(report)
    if as_json:
        console.print_json(json.dumps(public.model_dump(mode="json"), ensure_ascii=False, default=str))
    else:
        _show(public)
    if not public.ok:
        raise typer.Exit(EXIT_FAILED)


def register(audit_app: typer.Typer) -> None:
    """Add `dirchain audit verify`."""
    audit_app.command("verify", help=_HELP)(verify_command)
