"""`dirchain audit approvals` and `dirchain audit approval`: sharing decisions proved from the chain, the mirror's
rows compared with the logs (see registry_api.audit.approvals).

Run where the auditor is: the chain over JSON-RPC and the mirror's database directly, from the settings
(DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL, DIRCHAIN_DEPLOYMENTS_PATH or deployments/<chainId>.json); the API is
not asked. Exit codes: 0 verified, 1 a check failed, 2 the audit could not run (bad option, node or database
unreachable, no such decision).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from registry_api.cli_audit_common import EXIT_FAILED, cannot, local_chain, mark
from registry_api.schemas.audit_approvals import ApprovalsAudit, DecisionProvenance, MirrorCheck, ProvenanceCheck

__all__ = ["register"]

console = Console()
err = Console(stderr=True)

_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")

M = TypeVar("M", bound=BaseModel)
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON instead of tables")]


def _short(value: str | None) -> str:
    if not value:
        return "-"
    return value if len(value) <= 14 else f"{value[:8]}…{value[-4:]}"


def _value(value: Any) -> str:
    return "-" if value is None else escape(str(value))


def _checks_table(title: str, checks: list[ProvenanceCheck]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("check", "", "expected", "actual", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, mark(c.ok), _value(c.expected), _value(c.actual), escape(c.detail))
    return table


def _finish(result: M, verified: bool, as_json: bool, show: Callable[[M], None]) -> None:
    """Print `result` (JSON, or `show` and the verdict) and exit 1 if it did not verify."""
    if as_json:
        console.print_json(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    else:
        show(result)
        console.print("[bold green]VERIFIED[/]" if verified else "[bold red]FAILED[/]: see the checks marked FAIL")
    if not verified:
        raise typer.Exit(EXIT_FAILED)


def _show_provenance(p: DecisionProvenance) -> None:
    console.print(
        f"[bold]{p.event}[/] request {p.request_id} by {p.approver} (owner org {p.owner_org_id}), nonce {p.nonce}"
        + (f", reason {escape(repr(p.reason))}" if p.reason else "")
    )
    console.print(f"  tx {p.tx_hash} log {p.log_index}, block {p.block_number} ({p.block_hash}) at {p.block_time}")
    console.print(f"  relayed by {p.relayer} ({p.call_path or 'no call found'}); signer recovered: {p.signer}")
    console.print(f"  EIP-712 digest {p.digest} over chain {p.chain_id}, verifying contract {p.contract}")
    console.print(_checks_table("checks", p.checks))


def _findings_table(findings: list[MirrorCheck]) -> Table:
    table = Table(title=f"{len(findings)} mirror rows that do not match the chain", title_justify="left")
    for column in ("status", "row id", "block", "log", "tx", "request", "differences (mirror → chain)"):
        table.add_column(column, overflow="fold")
    for f in findings:
        differences = "; ".join(f"{d.field}: {_value(d.mirror)} → {_value(d.chain)}" for d in f.differences)
        table.add_row(
            f"[red]{f.status}[/]",
            _value(f.row_id),
            str(f.block_number),
            str(f.log_index),
            _short(f.tx_hash),
            str(f.request_id),
            differences or ("no decision log at this block and log index" if f.status == "extra" else "no row"),
        )
    return table


def _show_audit(audit: ApprovalsAudit) -> None:
    scope = f"request {audit.request_id}, " if audit.request_id is not None else ""
    console.print(
        f"chain {audit.chain_id}, SharingAgreements {audit.contract}: "
        f"{scope}blocks {audit.from_block}..{audit.to_block}"
        f"; {audit.decisions_on_chain} decisions on chain, {audit.mirror_rows} mirror rows"
        f" (mirror checkpoint {audit.mirror_checkpoint})"
    )
    table = Table(title=f"decisions {audit.offset + 1}..{audit.offset + len(audit.data)} of {audit.count}")
    for column in ("block:log", "tx", "decision", "request", "approver", "signer", "provenance", "mirror"):
        table.add_column(column)
    for e in audit.data:
        p = e.provenance
        failed = [c.name for c in p.checks if c.ok is False] if p else []
        provenance = "-" if p is None else ("[green]verified[/]" if p.verified else f"[red]{', '.join(failed)}[/]")
        mirror = e.mirror.status if e.mirror.ok else f"[red]{e.mirror.status}[/]"
        table.add_row(
            f"{e.block_number}:{e.log_index}",
            _short(e.tx_hash),
            e.decision,
            str(e.request_id),
            _short(e.approver),
            _short(p.signer if p else None),
            provenance,
            mirror,
        )
    console.print(table)
    if audit.mirror_findings:
        console.print(_findings_table(audit.mirror_findings))
    for e in audit.data:
        if e.provenance is not None and not e.provenance.verified:
            failed = [c for c in e.provenance.checks if c.ok is False]
            console.print(_checks_table(f"failed checks of {e.tx_hash} log {e.log_index}", failed))


def approvals_command(
    request_id: Annotated[int | None, typer.Option("--request", min=1, help="only this sharing request's")] = None,
    from_block: Annotated[
        int | None, typer.Option("--from-block", min=0, help="first block (default: the deployment's)")
    ] = None,
    to_block: Annotated[int | None, typer.Option("--to-block", min=0, help="last block (default: the head)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="prove only this many (default: all)")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="skip this many decisions first")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Prove every sharing decision (approve, refuse, revoke) of a block range or of one request from the chain,
    and compare the mirror's sharing_approvals rows with the logs.

    Each decision: the call that carried it, the EIP-712 digest rebuilt and the signer recovered, the signer an
    account of the owner org holding APPROVER at that block (replayed from the Consortium's logs, cross-checked
    with eth_call at that block), the deadline, the nonce. Every mirror row that was edited, forged (no log at its
    place) or is missing is listed with its id and the fields that differ. Reads the chain and the database named
    by the settings (DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL), not the API. Exit 1 when anything fails.
    """
    from registry_api.audit.approvals import BadBlockRange, audit_approvals

    with local_chain() as (rpc, deployment, engine):
        try:
            audit = audit_approvals(
                rpc,
                deployment,
                engine,
                request_id=request_id,
                from_block=from_block,
                to_block=to_block,
                limit=limit,
                offset=offset,
            )
        except BadBlockRange as exc:
            cannot(str(exc))
    _finish(audit, audit.verified, as_json, _show_audit)


def approval_command(
    tx_hash: Annotated[str, typer.Argument(help="the decision's transaction, 0x + 64 hex digits")],
    log_index: Annotated[int, typer.Argument(min=0, help="the decision log's index in its block")],
    as_json: JsonOpt = False,
) -> None:
    """Prove one sharing decision from the chain: the call, the EIP-712 digest, the signer recovered, and every
    check with its expected and actual values. Exit 1 when a check fails."""
    from registry_api.audit.approvals import DecisionNotFound, NotADecision, decision_provenance

    if not _TX_HASH.match(tx_hash):
        raise typer.BadParameter("not a transaction hash (0x + 64 hex digits)", param_hint="TX_HASH")
    with local_chain() as (rpc, deployment, _):
        try:
            proof = decision_provenance(rpc, deployment, tx_hash, log_index)
        except (DecisionNotFound, NotADecision) as exc:
            cannot(str(exc))
    _finish(proof, proof.verified, as_json, _show_provenance)


def _help(doc: str | None) -> str:
    """A docstring as help text: its paragraphs kept, each one's lines joined (rich markup keeps line breaks)."""
    return "\n\n".join(" ".join(p.split()) for p in (doc or "").split("\n\n"))


def register(audit_app: typer.Typer) -> None:
    """Add `approvals` and `approval` to `dirchain audit`."""
    audit_app.command("approvals", help=_help(approvals_command.__doc__))(approvals_command)
    audit_app.command("approval", help=_help(approval_command.__doc__))(approval_command)
