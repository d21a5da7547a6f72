"""`dirchain audit code`: the deployed contracts compared with a rebuild from source (see registry_api.audit.code).

Run where the auditor is: the sources (contracts/ or --sources), the pinned solc of this checkout, the node from
the settings (DIRCHAIN_RPC_URLS or --rpc) and the deployment file (DIRCHAIN_DEPLOYMENTS_PATH, --deployments or
deployments/<chainId>.json); neither build/ nor the API is used. Exit codes: 0 full or partial match, 1 a contract
fails (mismatch, missing code, a wrong immutable, a creation transaction or recorded hash that does not agree),
2 the audit could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chain_gateway.deployments import Deployment, load_deployment
from chain_gateway.errors import GatewayConfigError, GatewayRPCError
from chain_gateway.rpc import JsonRpcClient
from registry_api.audit.code import CodeAuditError, audit_code
from registry_api.audit.code_build import rebuild
from registry_api.cli_audit_common import EXIT_FAILED, cannot
from registry_api.schemas.audit_code import CodeAuditPublic, ContractCodePublic

__all__ = ["register"]

console = Console()
err = Console(stderr=True)

_STATUS_STYLE = {
    "full": "green",
    "partial": "yellow",
    "mismatch": "red",
    "no_code": "red",
    "not_built": "red",
    "not_found": "red",
}
_HELP = " ".join(
    """Rebuild the contracts from source with the pinned solc and the deployment's recorded settings (in memory,
never from build/) and compare each contract of the deployment file with the chain, as Sourcify does: the runtime
code with immutables masked and the CBOR metadata split off ([green]full[/]: every byte, metadata hash included,
so the exact sources; [yellow]partial[/]: the executable code only; [red]mismatch[/]: with the first differing
byte); each immutable's value decoded, checked against a replay of the creation transaction and, for contract
types, against the deployment's contracts; the creation transaction's input and its constructor arguments; and the
recorded source and bytecode hashes. Exit 0 full or partial, 1 a contract fails, 2 the audit could not run.""".split()
)


def _styled(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _contracts_table(report: CodeAuditPublic) -> Table:
    table = Table(title=f"Contracts at block {report.block_number} of chain {report.chain_id}", title_justify="left")
    for column in ("contract", "address", "runtime", "first diff", "immutables", "creation", "recorded", "metadata"):
        table.add_column(column, overflow="fold")
    for c in report.contracts:
        good = sum(i.ok for i in c.immutables)
        immutables = f"{good}/{len(c.immutables)}" if c.immutables else "-"
        recorded = c.recorded.runtime_on_chain_ok and c.recorded.creation_on_chain_ok is not False
        table.add_row(
            c.name,
            c.address,
            _styled(c.status),
            "-" if c.first_difference is None else str(c.first_difference),
            immutables if good == len(c.immutables) else f"[red]{immutables}[/]",
            _styled(c.creation.status) if c.creation else "-",
            "[green]ok[/]" if recorded else "[red]FAIL[/]",
            _metadata(c),
        )
    return table


def _metadata(c: ContractCodePublic) -> str:
    """The deployed metadata's CID, yellow when it is not the rebuild's (a partial match)."""
    if c.deployed_metadata is None:
        return "none"
    cid = c.deployed_metadata.ipfs or "-"
    same = c.compiled_metadata is not None and c.compiled_metadata.ipfs == c.deployed_metadata.ipfs
    return cid if same else f"[yellow]{cid}[/]"


def _details(c: ContractCodePublic) -> None:
    """Immutables and constructor arguments of one contract."""
    for i in c.immutables:
        mark = "[green]ok[/]" if i.ok else f"[red]{escape(i.problem or 'FAIL')}[/]"
        target = f" = {i.points_to}" if i.points_to else ""
        console.print(
            f"  immutable {i.name} ({i.type}) at {i.offsets}: {escape(str(i.decoded or i.value))}{target} {mark}"
        )
    if c.creation and c.creation.constructor_args:
        shown = ", ".join(
            f"{a.name}={escape(repr(a.value))}" + (f" ({a.points_to})" if a.points_to else "")
            for a in c.creation.constructor_args
        )
        console.print(f"  constructor({shown}) in tx {c.creation.tx_hash}, block {c.creation.block_number}")


def _show(report: CodeAuditPublic, details: bool) -> None:
    compiler = report.compiler
    console.print(
        f"[bold]Rebuilt[/] with solc {compiler.version}, evm {compiler.evm_version}, optimizer runs "
        f"{compiler.optimizer_runs}; input digest {report.source_digest}"
    )
    console.print(_contracts_table(report))
    for c in report.contracts:
        if c.problems or details:
            console.print(f"[bold]{c.name}[/] {c.address}")
            for problem in c.problems:
                console.print(f"  [red]✗[/] {escape(problem)}")
            if details:
                _details(c)
    changed = [s for s in report.sources if s.status != "same"]
    if changed:
        console.print("[bold]Source files whose sha256 differs from the deployment file's record[/]")
    for s in changed:
        console.print(
            f"  [yellow]{s.status}[/] {s.path} (recorded {s.recorded_sha256 or '-'}, rebuilt {s.rebuilt_sha256 or '-'})"
        )
    colour = _STATUS_STYLE[report.verdict]
    console.print(
        f"[bold {colour}]{report.verdict.upper()}[/] " + ", ".join(f"{n} {s}" for s, n in report.counts.items())
    )


def code_command(
    sources: Annotated[
        Path | None,
        typer.Option(
            "--sources", help="the Solidity tree to rebuild (default: this checkout's contracts/)", file_okay=False
        ),
    ] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL (default: DIRCHAIN_RPC_URLS)")] = None,
    deployments: Annotated[
        Path | None,
        typer.Option("--deployments", help="deployment file (default: the settings' or deployments/<chainId>.json)"),
    ] = None,
    block: Annotated[
        int | None, typer.Option("--block", help="read the code at this block (default: head)", min=0)
    ] = None,
    details: Annotated[bool, typer.Option("--details", help="also show immutables and constructor arguments")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON instead of tables")] = False,
) -> None:
    from chain_gateway.settings import get_settings

    settings = get_settings()
    with JsonRpcClient([rpc_url] if rpc_url else settings.rpc_urls) as rpc:
        try:
            path = deployments or settings.deployments_file(settings.chain_id or rpc.chain_id())
            deployment: Deployment = load_deployment(path)
            if not as_json:
                err.print(f"rebuilding {sources or 'contracts/'} with solc {deployment['compiler'].get('version')} …")
            report = audit_code(rpc, deployment, rebuild(deployment["compiler"], sources), block)
        except CodeAuditError as exc:
            cannot(f"{exc.code}: {exc.message}")
        except GatewayRPCError as exc:
            cannot(f"the node at {rpc.url} failed: {exc}")
        except GatewayConfigError as exc:
            cannot(str(exc))
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        _show(report, details)
    if report.verdict == "mismatch":
        raise typer.Exit(EXIT_FAILED)


def register(audit_app: typer.Typer) -> None:
    """Add `dirchain audit code`."""
    audit_app.command("code", help=_HELP)(code_command)
