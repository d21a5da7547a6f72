"""`dirchain report`: the monthly assessment report (考核评估) through the API, as CSV, HTML and SVG files, with a
summary table in the terminal. Registered on the `dirchain` app by `registry_api.cli` (`register(app)`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from registry_api import report
from registry_api.client import CREDENTIALS_PATH, ApiClient, ApiClientError, resolve_credentials
from registry_api.schemas.stats import DeviceCounts, StatsPublic
from registry_api.stats import STATUSES

__all__ = ["register", "report_command", "write_report"]

console = Console()
err = Console(stderr=True)

_HELP = (
    " ".join(
        """The monthly assessment report: indicators per district and department, written as
[bold]report-YYYY-MM.csv[/] (one row per district x org, then per org with catalog and sharing, per district and
the total; column `level`), [bold]report-YYYY-MM.html[/] (charts and tables, self-contained) and
[bold]report-YYYY-MM.svg[/] (devices on the ledger per district, stacked by status).""".split()
    )
    + "\n\n"
    + " ".join(
        """Periods are Beijing-time calendar months (default: the current one), counted as of the month's end or the
ledger's time if earlier. Devices count in the status they had then; an active device is overdue when its last
inspection (or registration) is older than --overdue-days (default: the API's setting, 90). Sharing requests count
for the data owner's org; the median approval time is request to grant over the month's grants, in block times.
Needs the API (--api/--token, or --org with the dev credentials).""".split()
    )
)


def write_report(stats: StatsPublic, out: Path) -> list[Path]:
    """Write the CSV, HTML and SVG files of `stats` into `out` (created if missing); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = report.report_name(stats)
    files = {
        out / f"{stem}.csv": report.report_csv(stats),
        out / f"{stem}.html": report.report_html(stats),
        out / f"{stem}.svg": report.district_chart_svg(stats),
    }
    for path, content in files.items():
        path.write_text(content, encoding="utf-8", newline="")  # the CSV keeps its CRLF rows everywhere
    return list(files)


def _summary_table(title: str, first: str, rows: list[tuple[str, DeviceCounts, str]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first)
    for name in ("devices", *STATUSES, "registered", "overdue"):
        table.add_column(name, justify="right")
    table.add_column("catalog / granted / pending / median h", justify="right")
    for label, devices, extra in rows:
        table.add_row(
            label,
            f"{devices.total:,}",
            *(f"{devices.by_status[s]:,}" for s in STATUSES),
            f"{devices.registered:,}",
            f"[red]{devices.inspections_overdue:,}[/]" if devices.inspections_overdue else "0",
            extra,
        )
    return table


def _show(stats: StatsPublic) -> None:
    period = stats.period
    state = "complete" if period.complete else "in progress"
    console.print(f"[bold]Assessment {period.month or f'{period.from_}..{period.to}'}[/] ({state}), as of "
                  f"{period.as_of.isoformat()}, ledger block {stats.ledger_block}; overdue after {stats.overdue_days} "
                  "days")  # fmt: skip
    districts = [(f"{d.district} {d.name or ''}", d.devices, "") for d in stats.by_district if d.devices.total]
    console.print(_summary_table("Per district (with devices)", "district", districts))
    orgs = []
    for o in stats.by_org:
        median = o.sharing.median_approval_seconds
        extra = f"{o.catalog.total} / {o.sharing.granted} / {o.sharing.pending} / " + (
            "-" if median is None else f"{median / 3600:.1f}"
        )
        orgs.append((o.org, o.devices, extra))
    total = stats.totals
    median = total.sharing.median_approval_seconds
    orgs.append(("[bold]total[/]", total.devices, f"{total.catalog.total} / {total.sharing.granted} / "
                 f"{total.sharing.pending} / {'-' if median is None else f'{median / 3600:.1f}'}"))  # fmt: skip
    console.print(_summary_table("Per department", "org", orgs))


def report_command(
    month: Annotated[str | None, typer.Option("--month", help="YYYY-MM, Beijing time (default: this month)")] = None,
    out: Annotated[Path, typer.Option("--out", help="directory for the files", file_okay=False)] = Path("."),
    district: Annotated[int | None, typer.Option("--district", help="only this district (6-digit code)")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="only this owner org, e.g. BJ-PSB")] = None,
    overdue_days: Annotated[int | None, typer.Option("--overdue-days", help="days without inspection", min=1)] = None,
    api: Annotated[str | None, typer.Option("--api", help="API base URL (env DIRCHAIN_API)")] = None,
    token: Annotated[str | None, typer.Option("--token", help="bearer token (env DIRCHAIN_TOKEN)")] = None,
    org: Annotated[str | None, typer.Option("--org", help=f"org whose token to take from {CREDENTIALS_PATH}")] = None,
) -> None:
    params = {"month": month, "district": district, "org": owner, "overdue_days": overdue_days}
    try:
        with ApiClient(resolve_credentials(api, token, org)) as client:
            answer = client.get("/v1/stats", **params)
    except ApiClientError as exc:
        body = exc.body
        where = f" (field {body['field']})" if body.get("field") else ""
        err.print(f"[red]{exc.status or ''} {body.get('code', 'ERROR')}[/]: {body.get('message', '')}{where}")
        raise typer.Exit(1) from exc
    stats = StatsPublic.model_validate(answer)
    _show(stats)
    for path in write_report(stats, out):
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `dirchain report` to `app`."""
    app.command("report", help=_HELP)(report_command)
