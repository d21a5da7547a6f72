"""`dirchain audit record KIND ID`: one record's on-chain trail, the mirror compared with it, its state proved
(see registry_api.audit.trail).

Run where the auditor is: the chain over JSON-RPC and the mirror's database directly, from the settings
(DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL, DIRCHAIN_DEPLOYMENTS_PATH or deployments/<chainId>.json); the API is
not asked. Exit codes: 0 verified, 1 a check failed, 2 the audit could not run (unknown kind, bad id, no such
record, node or database unreachable).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from eth_utils import keccak
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from indexer.handlers import role_name
from registry_api.audit.trail_kinds import KINDS
from registry_api.cli_audit_common import EXIT_FAILED, cannot, local_chain, mark
from registry_api.schemas.audit_records import CheckPublic, RecordAuditPublic, TrailEventPublic

__all__ = ["record_command", "register"]

console = Console()

ARGS_SHOWN = 120  # characters of an event's arguments shown in the trail table
_KINDS_HELP = "; ".join(f"[bold]{name}[/]: {kind.description}" for name, kind in KINDS.items())


def _text(value: Any, width: int = ARGS_SHOWN) -> str:
    text = "-" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def _trail_table(audit: RecordAuditPublic) -> Table:
    page = audit.trail
    shown = f"{page.offset + 1}..{page.offset + len(page.data)} of {page.count}" if page.data else f"0 of {page.count}"
    table = Table(title=f"Trail: events {shown}, in chain order", title_justify="left")
    for column in ("block", "log", "time (UTC)", "event", "signer", "tx", "arguments"):
        table.add_column(column, overflow="fold")
    for e in page.data:
        when = datetime.fromtimestamp(e.block_time, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(e.block_number), str(e.log_index), when, e.event, e.signer or "-", e.tx_hash,
                      _args(e, audit.id))  # fmt: skip
    return table


def _args(event: TrailEventPublic, record_id: str) -> str:
    """The event's arguments without the record's own id (every event repeats it), roles by name."""
    own = {record_id, "0x" + keccak(text=record_id).hex()}
    args = {
        k: role_name(v) if k == "role" else v for k, v in event.args.items() if not (isinstance(v, str) and v in own)
    }
    shown = _text(args)
    if event.approval is not None:
        mark = "[green]verified[/]" if event.approval.verified else "[red]NOT verified[/]"
        shown += f"\napproval signed by {event.approval.signer}: {mark}"
    return shown


def _checks_table(checks: list[CheckPublic]) -> Table:
    table = Table(title="Checks", title_justify="left")
    for column in ("check", "", "what", "expected (chain)", "actual (mirror, or recomputed from it)"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, mark(c.ok), escape(c.message), _text(c.expected, 70), _text(c.actual, 70))
    return table


def _differences_table(checks: list[CheckPublic]) -> Table:
    table = Table(title="What differs", title_justify="left")
    for column in ("check", "field", "expected (chain)", "actual (mirror)"):
        table.add_column(column, overflow="fold")
    for c in checks:
        for f in c.fields:
            if not f.ok:
                table.add_row(c.name, escape(f.field), _text(f.expected), _text(f.actual))
    return table


def _show(audit: RecordAuditPublic) -> None:
    console.print(f"[bold]{audit.kind} {escape(audit.id)}[/] in {audit.contract} {audit.address}")
    console.print(f"checked at the mirror's checkpoint: block {audit.block_number} {audit.block_hash}, state root "
                  f"{audit.state_root}")  # fmt: skip
    console.print(_trail_table(audit))
    console.print(_checks_table(audit.checks))
    if not audit.verified:
        console.print(_differences_table([c for c in audit.checks if not c.ok]))
    verdict = "[bold green]VERIFIED[/]" if audit.verified else f"[bold red]FAILED[/]: {', '.join(audit.failed)}"
    console.print(verdict)


def record_command(
    kind: Annotated[str, typer.Argument(help=f"the kind of record: {_KINDS_HELP}", show_default=False)],
    record_id: Annotated[str, typer.Argument(metavar="ID", help="the record's id: a code, or a decimal number")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="trail events shown")] = 1_000,
    offset: Annotated[int, typer.Option("--offset", min=0, help="skip this many trail events first")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the audit as JSON instead of tables")] = False,
) -> None:
    """Audit one record against the chain: its trail, its hashes and its proven state.

    The trail is every event that shaped the record, read from the chain up to the mirror's checkpoint block, each
    with block, log index, time, transaction and signer (sharing decisions: the approver recovered from the
    EIP-712 signature). The checks compare the mirror with the chain: the record's row and history rows against
    the trail replayed, the hashes recomputed from the mirrored record, and the record's contract storage proved
    with eth_getProof and verified locally against the block's state root. Reads the chain and the database named
    by the settings (DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL), not the API. Exit 1 when a check fails.
    """
    from indexer.errors import ChainMovedError
    from registry_api.audit.trail import audit_record
    from registry_api.audit.trail_errors import RecordAuditError

    with local_chain() as (rpc, deployment, engine):
        try:
            audit = audit_record(rpc, engine, deployment, kind, record_id)
        except RecordAuditError as exc:
            cannot(f"{exc.code}: {exc.message}")
        except ChainMovedError as exc:
            cannot(f"the chain reorganised while the record was read: {exc}")
    public = RecordAuditPublic.of(audit, limit, offset)
    if as_json:
        console.print_json(json.dumps(public.model_dump(mode="json"), ensure_ascii=False))
    else:
        _show(public)
    if not public.verified:
        raise typer.Exit(EXIT_FAILED)


def register(audit_app: typer.Typer) -> None:
    """Add `record` to `dirchain audit`."""
    audit_app.command("record")(record_command)
