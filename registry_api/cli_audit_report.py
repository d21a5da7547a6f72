"""`dirchain audit report`: who did what, and when, over a time range, read from the chain where the auditor is.

Runs locally (no API): the settings' RPC endpoints and deployments file (DIRCHAIN_RPC_URLS,
DIRCHAIN_DEPLOYMENTS_PATH), the same report as GET /v1/audit/report (registry_api.audit.report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from indexer.errors import IndexerError
from registry_api.audit.report import build_report
from registry_api.audit.report_html import report_html, summary_by_org
from registry_api.audit.report_range import ReportRangeError, TimeWindow, parse_window
from registry_api.cli_audit_common import cannot, local_chain
from registry_api.schemas.audit_report import AuditReportPublic

__all__ = ["register", "report_command"]

PROGRESS_MIN = {"logs": 2_000, "transactions": 200}  # blocks, transactions: fewer finish before a bar is useful

console = Console()
err = Console(stderr=True)

_HELP = (
    "Who did what, and when, between two times: every event of the deployment's contracts in the blocks whose "
    "times fall in --from..--to (both included), with its time (Beijing and unix), block, transaction, log index, "
    "the sender with the org and roles it held then (replayed from the Consortium's logs), the approver who signed "
    "a relayed sharing decision, the subject and a one-line summary; bulk registrations make one line per "
    "transaction with their count.\n\n"
    "Read from the chain over JSON-RPC (settings: DIRCHAIN_RPC_URLS, DIRCHAIN_DEPLOYMENTS_PATH), not from the API "
    "or the mirror. Writes a printable HTML page (A4), or with --json the whole report as JSON; shows the org x "
    "action summary in the terminal."
)


class _Bar:
    """A progress bar on stderr, opened once a phase has enough work to be worth one."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            if total < PROGRESS_MIN.get(phase, 0):
                return
            if self.progress is None:
                columns = (
                    TextColumn("{task.description:<13}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                )
                self.progress = Progress(*columns, console=err)
                self.progress.start()
            self.tasks[phase] = self.progress.add_task(phase, total=total)
        if self.progress is not None:
            self.progress.update(self.tasks[phase], completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _show(report: AuditReportPublic, out: Console) -> None:
    span = report.range
    blocks = "none" if span.from_block is None else f"{span.from_block}..{span.to_block}"
    out.print(
        f"[bold]Audit report[/] {span.from_.isoformat()} .. {span.to.isoformat()} (Beijing time); chain "
        f"{report.chain_id}, blocks {blocks} of {span.head_block}: {report.activity_count:,} events in "
        f"{report.transaction_count:,} transactions, {report.count:,} entries"
    )
    groups = summary_by_org(report)
    if not groups:
        out.print("No activity in this range.")
        return
    table = Table(title="Activities per org and kind of action", title_justify="left")
    for name, justify in (
        ("org", "left"),
        ("kind of action", "left"),
        ("activities", "right"),
        ("transactions", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for org, counts in groups:
        for i, count in enumerate(counts):
            table.add_row(org if i == 0 else "", count.action, f"{count.activities:,}", f"{count.transactions:,}",
                          end_section=i == len(counts) - 1)  # fmt: skip
    out.print(table)


def _default_name(window: TimeWindow) -> Path:
    """audit-report-20250501T000000_20250531T235959.html (Beijing time)."""
    stamp = "%Y%m%dT%H%M%S"
    return Path(f"audit-report-{window.start_time.strftime(stamp)}_{window.end_time.strftime(stamp)}.html")


def report_command(
    from_: Annotated[
        str, typer.Option("--from", help="start, included: ISO 8601 date or datetime (no offset: Beijing time)")
    ],
    to: Annotated[str, typer.Option("--to", help="end, included (a date: its whole day)")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="file to write (default: audit-report-<from>_<to>.html; with --json: stdout)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="write the whole report as JSON instead of HTML")] = False,
) -> None:
    try:
        window = parse_window(from_, to)
    except ReportRangeError as exc:
        cannot(f"{exc.code}: {exc.message} (option --{exc.field})")
    bar = _Bar()
    try:
        with local_chain() as (rpc, deployment, _):
            try:
                report = build_report(rpc, deployment, window, progress=bar)
            except IndexerError as exc:
                cannot(f"the chain's logs cannot be read: {exc}")
    finally:
        bar.close()
    if as_json:
        text = report.model_dump_json(by_alias=True, indent=1)
        _show(report, err)
        if out is None:
            typer.echo(text)
            return
        out.write_text(text + "\n", encoding="utf-8")
    else:
        _show(report, console)
        out = out or _default_name(window)
        out.write_text(report_html(report), encoding="utf-8")
    (err if as_json else console).print(f"wrote {out}")


def register(audit_app: typer.Typer) -> None:
    """Add `dirchain audit report` to `dirchain audit`."""
    audit_app.command("report", help=_HELP)(report_command)
