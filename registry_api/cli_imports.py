"""`dirchain import FILE` and `dirchain imports list|show|report`: bulk imports of devices through the API.

`dirchain import` streams the file to `POST /v1/imports` (never reading it whole), then follows the import
with two rich progress bars (the file read and validated, the accepted rows confirmed on-chain) and ends with
a summary, the rejected rows counted by reason, and the command that downloads the report. Ctrl-C stops only
the following: the import goes on in the API.

The commands are added to `registry_api.cli.app` when that module imports this one (one of its last imports),
and use its client helpers and options.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from registry_api.cli import (
    ApiOpt,
    JsonOpt,
    KeyOpt,
    LimitOpt,
    OffsetOpt,
    OrgOpt,
    TokenOpt,
    _call,
    _client,
    _fail,
    _show_or_json,
    app,
    console,
    err,
)
from registry_api.client import ApiClient, ApiClientError, Credentials, resolve_credentials

__all__ = ["follow", "import_file", "imports_app", "report_lines", "upload_file"]

imports_app = typer.Typer(
    help="Bulk imports of devices: list, show (--follow for a progress bar), report (per-row CSV), cancel.",
    no_args_is_help=True,
)

UPLOAD_CHUNK_BYTES = 1024 * 1024
POLL_SECONDS = 0.5
TERMINAL = ("done", "failed")
_MEDIA_TYPES = {".csv": "text/csv", ".ndjson": "application/x-ndjson", ".jsonl": "application/x-ndjson"}
ImportIdArg = Annotated[str, typer.Argument(help="import id (from dirchain import or dirchain imports list)")]


def upload_file(
    client: ApiClient,
    path: Path,
    idempotency_key: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Stream `path` to POST /v1/imports a megabyte at a time; returns the 202 answer (import id, links)."""

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as file:
            while chunk := file.read(UPLOAD_CHUNK_BYTES):
                if on_bytes is not None:
                    on_bytes(len(chunk))
                yield chunk

    headers = {"Content-Type": _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    accepted: dict[str, Any] = client.request(
        "POST", "/v1/imports", content=chunks(), headers=headers, params={"filename": path.name}
    )
    return accepted


def _expected_rows(job: dict[str, Any]) -> int | None:
    """Accepted rows the whole file will have, extrapolated from the part read so far."""
    rows = job["rows"]
    if job["status"] != "validating":
        return int(rows["accepted"])
    if not job["bytes_read"]:
        return None
    return max(rows["accepted"], round(rows["accepted"] * job["file_bytes"] / job["bytes_read"]))


def follow(client: ApiClient, import_id: str) -> dict[str, Any]:
    """Poll the import until done or failed, drawing the read and on-chain progress on stderr; returns the last
    answer."""
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:  # stderr: stdout stays the answer
        reading = progress.add_task("read", total=None, note="")
        chain = progress.add_task("on-chain", total=None, note="")
        while True:
            job: dict[str, Any] = client.request("GET", f"/v1/imports/{import_id}")
            rows = job["rows"]
            progress.update(
                reading,
                total=job["file_bytes"],
                completed=job["bytes_read"],
                note=f"{rows['read']:,} rows, {rows['rejected']:,} rejected [dim]({job['status']})[/]",
            )
            rate = job["throughput"]["rows_confirmed_per_s"]
            progress.update(
                chain,
                total=_expected_rows(job),
                completed=rows["confirmed"],
                note=f"{rows['confirmed']:,} rows" + (f", {rate:,.0f} rows/s" if rate else ""),
            )
            if job["status"] in TERMINAL:
                return job
            time.sleep(POLL_SECONDS)


def _rejections_by_reason(credentials: Credentials, import_id: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with report_lines(credentials, import_id, "rejected") as lines:
        for row in csv.DictReader(lines):
            counts[row["reason_code"]] += 1
    return counts


def _show_import(job: dict[str, Any]) -> None:
    colour = {"done": "green", "failed": "red"}.get(job["status"], "yellow")
    rows, batches = job["rows"], job["batches"]
    table = Table(show_header=False, box=None)
    table.add_row("import", f"[bold]{job['import_id']}[/] ({job['file_name'] or 'unnamed'}, {job['format']})")
    table.add_row("status", f"[{colour}]{job['status']}[/]")
    table.add_row(
        "rows",
        f"{rows['read']:,} read, {rows['accepted']:,} accepted, [red]{rows['rejected']:,} rejected[/], "
        f"{rows['confirmed']:,} on-chain",
    )
    table.add_row(
        "batches",
        f"{batches['total']:,} ({batches['confirmed']:,} confirmed, {batches['in_flight']:,} in flight, "
        f"{batches['split']:,} split by the chain, {batches['failed']:,} failed)",
    )
    rate, eta = job["throughput"]["rows_confirmed_per_s"], job["eta_seconds"]
    if rate:
        table.add_row("throughput", f"{rate:,.0f} rows/s on-chain" + (f", ETA {eta:,.0f} s" if eta else ""))
    table.add_row("started", f"{job['started_at'] or '-'}; finished {job['finished_at'] or '-'}")
    if job["error"]:
        table.add_row("error", f"[red]{job['error']['code']}[/] {job['error']['message']}")
    console.print(table)


def _summary(credentials: Credentials, job: dict[str, Any]) -> None:
    _show_import(job)
    rejected = job["rows"]["rejected"]
    if rejected:
        reasons = _rejections_by_reason(credentials, job["import_id"])
        table = Table("reason", "rows", title="rejected rows")
        for reason, count in reasons.most_common():
            table.add_row(reason, f"{count:,}")
        console.print(table)
    only = " --outcome rejected" if rejected else ""
    command = f"dirchain imports report {job['import_id']}{only} -o report.csv"
    console.print(f"report: {command}  (GET {job['links']['report']})", soft_wrap=True, highlight=False)


def import_file(
    file: Annotated[
        Path, typer.Argument(help="CSV (with a header) or NDJSON file of devices", exists=True, dir_okay=False)
    ],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the import until it is done")] = True,
    idempotency_key: KeyOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import devices of your org from a CSV or NDJSON file: uploaded as a stream, validated row by row,
    registered on-chain in batches; follow it with a progress bar, then get the per-row report.

    CSV columns: code, type, district, lat, lon, built_at (required); status, owner_org, attributes (JSON) or
    attr.<key>. NDJSON: one device object per line, as `dirchain devices register` takes them.
    """
    credentials = _credentials(api, token, org)
    with _client(api, token, org) as client:
        try:
            with Progress(TextColumn("upload"), BarColumn(), DownloadColumn(), console=err) as progress:
                task = progress.add_task("upload", total=file.stat().st_size)
                accepted = upload_file(client, file, idempotency_key, lambda n: progress.advance(task, n))
            if not wait:
                _show_or_json(
                    accepted, as_json, lambda a: console.print(f"import [bold]{a['import_id']}[/] {a['status']}")
                )
                return
            try:
                job = follow(client, accepted["import_id"])
            except KeyboardInterrupt:
                err.print(f"stopped following; the import goes on: dirchain imports show {accepted['import_id']}")
                raise typer.Exit(130) from None
        except ApiClientError as exc:
            _fail(exc)
    _show_or_json(job, as_json, lambda answer: _summary(credentials, answer))
    if job["status"] == "failed":
        raise typer.Exit(1)


@imports_app.command("list")
def imports_list(
    status: Annotated[str | None, typer.Option(help="queued|validating|submitting|done|failed")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your org's imports, newest first."""
    page = _call(api, token, org, "get", "/v1/imports", status=status, limit=limit, offset=offset)

    def show(answer: dict[str, Any]) -> None:
        ids = Column("import", no_wrap=True, min_width=32)  # ids stay whole for copying
        table = Table(ids, "status", "file", "read", "rejected", "on-chain", "created")
        for job in answer["data"]:
            rows = job["rows"]
            created = job["created_at"][:16].replace("T", " ")
            table.add_row(job["import_id"], job["status"], job["file_name"], f"{rows['read']:,}",
                          f"{rows['rejected']:,}", f"{rows['confirmed']:,}", created)  # fmt: skip
        console.print(table)
        console.print(f"{len(answer['data'])} of {answer['count']}")

    _show_or_json(page, as_json, show)


@imports_app.command("show")
def imports_show(
    import_id: ImportIdArg,
    follow_: Annotated[bool, typer.Option("--follow", help="draw progress until the import is done")] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An import's status, rows, batches, throughput and ETA."""
    if follow_:
        with _client(api, token, org) as client:
            try:
                job = follow(client, import_id)
            except ApiClientError as exc:
                _fail(exc)
    else:
        job = _call(api, token, org, "get", f"/v1/imports/{import_id}")
    _show_or_json(job, as_json, _show_import)


@imports_app.command("cancel")
def imports_cancel(
    import_id: ImportIdArg,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop an import: no more rows are read or batches sent; batches already sent still land."""
    job = _call(api, token, org, "post", f"/v1/imports/{import_id}/cancel", None)
    _show_or_json(job, as_json, _show_import)


@contextmanager
def report_lines(credentials: Credentials, import_id: str, outcome: str | None) -> Iterator[Iterator[str]]:
    """The report's CSV lines, streamed from the API (never held whole)."""
    headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
    params = {"outcome": outcome} if outcome else {}
    try:
        with (
            httpx.Client(base_url=credentials.api, headers=headers, timeout=60.0) as http,
            http.stream("GET", f"/v1/imports/{import_id}/report", params=params) as response,
        ):
            if response.status_code >= 400:
                response.read()
                try:
                    body = response.json()
                except ValueError:
                    body = {"code": f"HTTP_{response.status_code}", "message": response.text[:500]}
                raise ApiClientError(response.status_code, body)
            yield response.iter_lines()
    except httpx.TransportError as exc:
        raise ApiClientError(0, {"code": "API_UNREACHABLE", "message": f"cannot reach the API: {exc}"}) from exc


def _credentials(api: str | None, token: str | None, org: str | None) -> Credentials:
    try:
        return resolve_credentials(api, token, org)
    except ApiClientError as exc:
        _fail(exc)


@imports_app.command("report")
def imports_report(
    import_id: ImportIdArg,
    outcome: Annotated[str | None, typer.Option(help="accepted|rejected: only these rows")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write to this file (default: stdout)")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """The per-row report as CSV: row, line, code, outcome, confirmed, operation_id, tx_hash, block_number,
    reason_code, message, column."""
    credentials = _credentials(api, token, org)
    rows = 0
    try:
        with report_lines(credentials, import_id, outcome) as lines:
            out: io.TextIOBase | Any = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
            try:
                for line in lines:
                    out.write(line + "\n")
                    rows += 1
            finally:
                if output:
                    out.close()
    except ApiClientError as exc:
        _fail(exc)
    if output:
        console.print(f"{max(0, rows - 1):,} rows written to {output}")


app.command("import", help=import_file.__doc__)(import_file)
app.add_typer(imports_app, name="imports")
