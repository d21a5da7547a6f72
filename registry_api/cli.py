"""`dirchain`: serve the API, run the gateway and indexer, compile, deploy, issue tokens, and call the API.

Server commands read the one settings object (DIRCHAIN_* environment or .env). Client commands talk HTTP to
the API given by --api/--token, DIRCHAIN_API/DIRCHAIN_TOKEN, or the dev profile's var/dev/credentials.json
(pick the org with --org).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from registry_api.client import CREDENTIALS_PATH, ApiClient, ApiClientError, resolve_credentials

__all__ = ["app", "main"]

app = typer.Typer(
    help="Directory chain (目录链) of the city's sensing devices: API, gateway, indexer and client.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
gateway_app = typer.Typer(help="The chain gateway: signs, sends and follows the outbox's transactions.")
indexer_app = typer.Typer(help="The indexer: mirrors the chain's events into SQL.")
tokens_app = typer.Typer(help="API bearer tokens of member orgs (stored hashed).")
devices_app = typer.Typer(help="Devices through the API: list, get, register, history, lifecycle.")
operations_app = typer.Typer(help="Operations (writes on their way to the chain) through the API.")
catalog_app = typer.Typer(help="The data catalog through the API: list, search, get, create, versions, lineage.")
request_app = typer.Typer(help="Sharing requests through the API: create, list, get.")
grants_app = typer.Typer(help="Grants through the API: list, revoke (signed locally by an approver).")
algorithms_app = typer.Typer(
    help="The algorithm center through the API: submit, list, show, evaluate, publish, delist, and the admissions "
    "of catalog entries (admit, withdraw, admitted)."
)
app.add_typer(gateway_app, name="gateway")
app.add_typer(indexer_app, name="indexer")
app.add_typer(tokens_app, name="tokens")
app.add_typer(devices_app, name="devices")
app.add_typer(operations_app, name="operations")
app.add_typer(catalog_app, name="catalog")
app.add_typer(request_app, name="request")
app.add_typer(grants_app, name="grants")
app.add_typer(algorithms_app, name="algorithms")
zone_app = typer.Typer(help="The data zone: jobs, rows behind a capability token, usage receipts and their anchoring.")
zone_jobs_app = typer.Typer(help="Data-zone jobs through the API: run, show.")
zone_receipts_app = typer.Typer(help="Usage receipts through the API: show (with the Merkle proof once anchored).")
zone_app.add_typer(zone_jobs_app, name="jobs")
zone_app.add_typer(zone_receipts_app, name="receipts")
app.add_typer(zone_app, name="zone")

console = Console()
err = Console(stderr=True)

ApiOpt = Annotated[str | None, typer.Option("--api", help="API base URL (env DIRCHAIN_API)", show_default=False)]
TokenOpt = Annotated[str | None, typer.Option("--token", help="bearer token (env DIRCHAIN_TOKEN)", show_default=False)]
OrgOpt = Annotated[
    str | None,
    typer.Option("--org", help=f"org whose token to take from {CREDENTIALS_PATH} (env DIRCHAIN_ORG)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the raw JSON answer")]


# ---------------------------------------------------------------- helpers


def _settings() -> Any:
    from chain_gateway.settings import get_settings

    return get_settings()


def _process_settings() -> Any:
    """Settings of a long-running process, with its logging set up from them (JSON with DIRCHAIN_LOG_JSON)."""
    from chain_gateway.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_json)
    return settings


def _checked_settings() -> Any:
    """`_process_settings()`, after the DIRCHAIN_SCHEMA_CHECK test of the database (one line and exit 1 if behind)."""
    from registry_api.schema import SchemaError, check_at_start

    settings = _process_settings()
    try:
        check_at_start(settings)
    except SchemaError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from exc
    return settings


def _client(api: str | None, token: str | None, org: str | None) -> ApiClient:
    try:
        return ApiClient(resolve_credentials(api, token, org))
    except ApiClientError as exc:
        _fail(exc)


def _fail(exc: ApiClientError) -> NoReturn:
    body = exc.body
    where = f" (field {body['field']})" if body.get("field") else ""
    status = f"{exc.status} " if exc.status else ""
    err.print(f"[red]{status}{body.get('code', 'ERROR')}[/]: {body.get('message', '')}{where}")
    if body.get("contract_error"):
        err.print(f"contract error: {json.dumps(body['contract_error'], ensure_ascii=False)}")
    raise typer.Exit(1)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))


def _call(api: str | None, token: str | None, org: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
    with _client(api, token, org) as client:
        try:
            return getattr(client, method)(*args, **kwargs)
        except ApiClientError as exc:
            _fail(exc)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _show_operation(op: dict[str, Any]) -> None:
    colour = {"confirmed": "green", "failed": "red"}.get(op.get("status", ""), "yellow")
    console.print(f"operation [bold]{op.get('id') or op.get('operation_id')}[/]: [{colour}]{op.get('status')}[/]")
    for key in ("tx_hash", "block_number", "block_hash"):
        if op.get(key) is not None:
            console.print(f"  {key}: {op[key]}")
    if op.get("error"):
        error = op["error"]
        console.print(f"  [red]{error['code']}[/] {error['message']} ({error['name']} {error['args']})")


# ---------------------------------------------------------------- server side


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (settings: api_host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (settings: api_port)")] = None,
) -> None:
    """Serve the REST API with uvicorn (docs at /docs, metrics at /metrics)."""
    import uvicorn

    from registry_api.app import create_app

    settings = _checked_settings()
    uvicorn.run(  # log_config=None: uvicorn's records go through our handler too
        create_app(settings), host=host or settings.api_host, port=port or settings.api_port, log_config=None
    )


def _run_until_stopped(service_class: Any, what: str) -> None:
    """Build the gateway or indexer from settings, create its tables and run its loop until Ctrl-C/SIGTERM."""
    stop = _stop_on_signals()
    settings = _checked_settings()
    with service_class.from_settings(settings) as service:
        service.create_tables()
        console.print(f"{what} running against {service.rpc.url} (Ctrl-C stops)")
        service.run(stop)


@gateway_app.command("run")
def gateway_run() -> None:
    """Process the outbox until Ctrl-C: sign, send, follow receipts, confirm."""
    from chain_gateway.gateway import Gateway

    _run_until_stopped(Gateway, "gateway")


@indexer_app.command("run")
def indexer_run() -> None:
    """Mirror the chain into SQL until Ctrl-C (follows the head, rewinds reorgs)."""
    from indexer.service import Indexer

    _run_until_stopped(Indexer, "indexer")


@app.command("compile")
def compile_() -> None:
    """Compile the contracts into build/contracts.json (solc from npm, pinned)."""
    from chain_gateway.compiler import compile_contracts

    with console.status("compiling contracts"):
        artifacts = compile_contracts()
    console.print(f"compiled {', '.join(sorted(artifacts.get('contracts', {})))}")


@tokens_app.command("issue")
def tokens_issue(
    org: Annotated[str, typer.Option("--org", help="member org code, e.g. BJ-PSB")],
    account: Annotated[str, typer.Option("--account", help="the org's account (0x...) that signs its writes")],
    label: Annotated[str, typer.Option(help="what the token is for")] = "",
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="lifetime, e.g. 90d, 12h, 30m or 3600s; without it: until revoked"),
    ] = None,
) -> None:
    """Issue a bearer token; it is printed once and only its sha256 is stored."""
    from registry_api.app import create_read_engine
    from registry_api.auth import issue_token, parse_lifetime

    try:
        lifetime = None if expires_in is None else parse_lifetime(expires_in)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires-in") from exc
    engine = create_read_engine(_settings().database_url)
    try:
        token = issue_token(engine, org, account, label, lifetime)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()
    until = "until revoked" if lifetime is None else f"expires in {expires_in}"
    err.print(f"token for {org} (signing with {account}, {until}); shown once, store it now:")
    console.print(token, soft_wrap=True, highlight=False)


@tokens_app.command("list")
def tokens_list(org: Annotated[str | None, typer.Option("--org", help="only this org")] = None) -> None:
    """List tokens (hash prefix, org, account, label, revoked, expiry); never the tokens themselves."""
    from registry_api.app import create_read_engine
    from registry_api.auth import create_token_table, list_tokens

    engine = create_read_engine(_settings().database_url)
    try:
        create_token_table(engine)
        rows = list_tokens(engine, org)
    finally:
        engine.dispose()
    table = Table("hash", "org", "account", "label", "revoked", "expires (UTC)")
    for row in rows:
        expires = (
            "" if row.expires_at is None else datetime.fromtimestamp(row.expires_at, UTC).strftime("%Y-%m-%d %H:%M")
        )
        table.add_row(row.token_hash[:12], row.org_code, row.account, row.label, "yes" if row.revoked else "", expires)
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token: Annotated[str, typer.Argument(help="the token, or its sha256 hex")]) -> None:
    """Revoke a token at once."""
    from registry_api.app import create_read_engine
    from registry_api.auth import revoke_token

    engine = create_read_engine(_settings().database_url)
    try:
        found = revoke_token(engine, token)
    finally:
        engine.dispose()
    if not found:
        err.print("[red]no such token[/]")
        raise typer.Exit(1)
    console.print("revoked")


# ---------------------------------------------------------------- client: devices


@devices_app.command("list")
def devices_list(
    type: Annotated[str | None, typer.Option("--type", help="type name, e.g. camera.road")] = None,
    owner: Annotated[str | None, typer.Option(help="owner org code")] = None,
    status: Annotated[str | None, typer.Option(help="planned|active|suspended|replaced|retired")] = None,
    district: Annotated[int | None, typer.Option(help="6-digit division code")] = None,
    bbox: Annotated[str | None, typer.Option(help="minLon,minLat,maxLon,maxLat")] = None,
    near: Annotated[str | None, typer.Option(help="lat,lon,radius_m")] = None,
    limit: Annotated[int, typer.Option(help="items per page (max 1000)")] = 50,
    offset: Annotated[int, typer.Option(help="items to skip")] = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List devices with filters, as a table (or --json)."""
    page = _call(
        api,
        token,
        org,
        "list_devices",
        type=type,
        owner=owner,
        status=status,
        district=district,
        bbox=bbox,
        near=near,
        limit=limit,
        offset=offset,
    )
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"{page['count']} devices")
    table.add_column("code", no_wrap=True, min_width=20)
    for column in ("type", "owner", "status", "district", "lat", "lon", "block"):
        table.add_column(column)
    for d in page["data"]:
        table.add_row(
            d["code"],
            d["type"],
            d["owner_org"],
            d["status"],
            str(d["district"]),
            str(d["location"]["lat"]),
            str(d["location"]["lon"]),
            str(d["block_number"]),
        )
    console.print(table)
    shown_to = offset + len(page["data"])
    if shown_to < page["count"]:
        console.print(f"{offset + 1}-{shown_to} of {page['count']}; next page: --offset {shown_to}")


@devices_app.command("get")
def devices_get(
    code: Annotated[str, typer.Argument(help="device code")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show one device as the mirror holds it (JSON)."""
    _print_json(_call(api, token, org, "get_device", code))


@devices_app.command("history")
def devices_history(
    code: Annotated[str, typer.Argument(help="device code")],
    limit: Annotated[int, typer.Option(help="events per page")] = 50,
    offset: Annotated[int, typer.Option(help="events to skip")] = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A device's on-chain events in chain order."""
    page = _call(api, token, org, "history", code, limit, offset)
    if as_json:
        _print_json(page)
        return
    table = Table("block", "time", "event", "tx", "details", title=f"{code}: {page['count']} events")
    for e in page["data"]:
        details = {k: v for k, v in e["args"].items() if k not in ("code", "codeHash", "attributes")}
        table.add_row(
            str(e["block_number"]),
            e["time"],
            e["event"],
            e["tx_hash"][:18] + "…",
            json.dumps(details, ensure_ascii=False),
        )
    console.print(table)


def _finish(
    client_args: tuple[str | None, str | None, str | None], accepted: dict[str, Any], wait: bool, timeout: float
) -> None:
    if not wait:
        _show_operation(accepted)
        return
    with console.status(f"waiting for operation {accepted['operation_id']}"):
        try:
            op = _call(*client_args, "wait", accepted["operation_id"], timeout)
        except TimeoutError as exc:
            err.print(f"[yellow]{exc}[/]")
            raise typer.Exit(2) from exc
    _show_operation(op)
    if op["status"] == "failed":
        raise typer.Exit(1)


WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="wait until the operation is confirmed or failed")]
TimeoutOpt = Annotated[float, typer.Option(help="seconds to wait")]
KeyOpt = Annotated[str | None, typer.Option("--idempotency-key", help="replays with the same key are harmless")]


@devices_app.command("register")
def devices_register(
    file: Annotated[Path, typer.Argument(help="JSON file: one device, a list, or {'devices': [...]}", exists=True)],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Register devices from a JSON file (up to 500 per call, all or none)."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from exc
    if isinstance(body, list):
        body = {"devices": body}
    accepted = _call(api, token, org, "register", body, idempotency_key)
    _finish((api, token, org), accepted, wait, timeout)


@devices_app.command("lifecycle")
def devices_lifecycle(
    code: Annotated[str, typer.Argument(help="device code")],
    action: Annotated[str, typer.Argument(help="activate|suspend|resume|upgrade|replace|retire")],
    replaced_by: Annotated[str | None, typer.Option(help="for replace: the new device's code")] = None,
    note: Annotated[str, typer.Option(help="why")] = "",
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Move a device through its life cycle."""
    accepted = _call(api, token, org, "lifecycle", code, action, replaced_by, note, idempotency_key)
    _finish((api, token, org), accepted, wait, timeout)


@operations_app.command("get")
def operations_get(
    operation_id: Annotated[str, typer.Argument(help="operation id")],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an operation; with --wait, poll until it is confirmed or failed."""
    if wait:
        try:
            op = _call(api, token, org, "wait", operation_id, timeout)
        except TimeoutError as exc:
            err.print(f"[yellow]{exc}[/]")
            raise typer.Exit(2) from exc
    else:
        op = _call(api, token, org, "operation", operation_id)
    if as_json:
        _print_json(op)
    else:
        _show_operation(op)


# ---------------------------------------------------------------- client: catalog


def _send(
    client_args: tuple[str | None, str | None, str | None],
    path: str,
    body: dict[str, Any],
    idempotency_key: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """POST a write and show its operation (followed to the end with --wait)."""
    _finish(client_args, _call(*client_args, "post", path, body, idempotency_key), wait, timeout)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from exc


def _show_entries(page: dict[str, Any], offset: int) -> None:
    table = Table(title=f"{page['count']} catalog entries")
    for column in ("id", "title", "classification", "grade", "share", "forms", "owner", "status", "version"):
        table.add_column(column)
    for e in page["data"]:
        table.add_row(
            str(e["id"]),
            e["title"],
            e["classification"],
            str(e["grade"]),
            e["share_condition"],
            ",".join(e["forms"]),
            e["owner_org"] or "",
            e["status"],
            e["version"],
        )
    console.print(table)
    facets = page.get("facets") or {}
    for name, counts in facets.items():
        if counts:
            console.print(f"[bold]{name}[/]: " + ", ".join(f"{c['value']} ({c['count']})" for c in counts))
    shown_to = offset + len(page["data"])
    if shown_to < page["count"]:
        console.print(f"{offset + 1}-{shown_to} of {page['count']}; next page: --offset {shown_to}")


def _list_catalog(
    client_args: tuple[str | None, str | None, str | None], params: dict[str, Any], as_json: bool
) -> None:
    page = _call(*client_args, "get", "/v1/catalog", **params)
    if as_json:
        _print_json(page)
    else:
        _show_entries(page, params.get("offset", 0))


ClassificationOpt = Annotated[str | None, typer.Option(help="a classification and those below it")]
GradeOpt = Annotated[int | None, typer.Option(help="sensitivity grade 1..4")]
ShareOpt = Annotated[str | None, typer.Option("--share", help="unconditional|conditional|not_shareable")]
FormOpt = Annotated[str | None, typer.Option("--form", help="raw|desensitized|result_only")]
LimitOpt = Annotated[int, typer.Option(help="items per page (max 1000)")]
OffsetOpt = Annotated[int, typer.Option(help="items to skip")]


@catalog_app.command("list")
def catalog_list(
    classification: ClassificationOpt = None,
    grade: GradeOpt = None,
    owner: Annotated[str | None, typer.Option(help="owner org code")] = None,
    share: ShareOpt = None,
    form: FormOpt = None,
    status: Annotated[str | None, typer.Option(help="draft|published|deprecated")] = None,
    device: Annotated[str | None, typer.Option(help="entries whose lineage names this device")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List catalog entries with filters, and the facets (counts by classification, grade, owner, ...)."""
    params = {
        "classification": classification, "grade": grade, "owner": owner, "share_condition": share, "form": form,
        "status": status, "device": device, "limit": limit, "offset": offset,
    }  # fmt: skip
    _list_catalog((api, token, org), params, as_json)


@catalog_app.command("search")
def catalog_search(
    query: Annotated[str, typer.Argument(help="words of the title, classification or schema (e.g. 过车)")],
    classification: ClassificationOpt = None,
    grade: GradeOpt = None,
    share: ShareOpt = None,
    form: FormOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Full-text search of the catalog (Chinese titles are found by any of their words), with facets."""
    params = {
        "q": query, "classification": classification, "grade": grade, "share_condition": share, "form": form,
        "limit": limit, "offset": offset,
    }  # fmt: skip
    _list_catalog((api, token, org), params, as_json)


@catalog_app.command("get")
def catalog_get(
    entry_id: Annotated[int, typer.Argument(help="entry id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show one catalog entry (JSON)."""
    _print_json(_call(api, token, org, "get", f"/v1/catalog/{entry_id}"))


@catalog_app.command("create")
def catalog_create(
    file: Annotated[Path, typer.Argument(help="JSON file: one entry as POST /v1/catalog takes it", exists=True)],
    publish: Annotated[bool | None, typer.Option("--publish/--draft", help="override the file's publish")] = None,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """File a catalog entry of your org (title, classification, grade, share_condition, forms, schema, lineage)."""
    body = _read_json(file)
    if not isinstance(body, dict):
        raise typer.BadParameter(f"{file} must hold one JSON object")
    if publish is not None:
        body["publish"] = publish
    _send((api, token, org), "/v1/catalog", body, idempotency_key, wait, timeout)


@catalog_app.command("versions")
def catalog_versions(
    entry_id: Annotated[int, typer.Argument(help="entry id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of an entry with its hash and transaction."""
    page = _call(api, token, org, "get", f"/v1/catalog/{entry_id}/versions", limit=1000)
    if as_json:
        _print_json(page)
        return
    table = Table("version", "title", "grade", "share", "forms", "block", "tx", title=f"entry {entry_id}")
    for v in page["data"]:
        table.add_row(
            v["version"], v["title"], str(v["grade"]), v["share_condition"], ",".join(v["forms"]),
            str(v["block_number"]), v["tx_hash"][:18] + "…",
        )  # fmt: skip
    console.print(table)


@catalog_app.command("lineage")
def catalog_lineage(
    entry_id: Annotated[int, typer.Argument(help="entry id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Producing devices and upstream entries of an entry, and the entries derived from it."""
    lineage = _call(api, token, org, "get", f"/v1/catalog/{entry_id}/lineage")
    if as_json:
        _print_json(lineage)
        return
    table = Table("relation", "kind", "ref", "title / type", "owner", "status", title=f"lineage of entry {entry_id}")
    for relation in ("devices", "upstream", "downstream"):
        for ref in lineage[relation]:
            table.add_row(
                relation, ref["kind"], ref["ref"], ref["title"] or "", ref["owner_org"] or "", ref["status"] or "?"
            )
    console.print(table)


# ---------------------------------------------------------------- client: sharing


def _show_requests(page: dict[str, Any], title: str) -> None:
    table = Table(title=f"{page['count']} {title}")
    for column in ("id", "entry", "requester", "owner", "form", "status", "approvals", "expires", "approvers"):
        table.add_column(column)
    for r in page["data"]:
        status = "expired" if r.get("expired") else r["status"]
        approvers = [d["approver"][:10] + "…" for d in r.get("decisions", []) if d["decision"] == "approve"]
        table.add_row(
            str(r["id"]), f"{r['entry_id']} {r['entry_title'] or ''}", r["requester_org"] or "", r["owner_org"] or "",
            r["form"], status, f"{r['approvals']}/{r['approvals_needed']}", r["expires_at"] or "", " ".join(approvers),
        )  # fmt: skip
    console.print(table)


@request_app.command("create")
def request_create(
    entry: Annotated[int, typer.Option("--entry", help="catalog entry id")],
    form: Annotated[str, typer.Option("--form", help="raw|desensitized|result_only")],
    purpose: Annotated[str, typer.Option("--purpose", help="what the data is for")],
    days: Annotated[int, typer.Option("--days", help="how long the grant lasts")] = 90,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Request one form of another org's catalog entry for a purpose and a number of days."""
    body = {"entry_id": entry, "form": form, "purpose": purpose, "duration_days": days}
    _send((api, token, org), "/v1/sharing-requests", body, idempotency_key, wait, timeout)


@request_app.command("list")
def request_list(
    status: Annotated[str | None, typer.Option(help="pending|granted|refused|revoked|active|expired")] = None,
    entry: Annotated[int | None, typer.Option(help="catalog entry id")] = None,
    requester: Annotated[str | None, typer.Option(help="requester org code")] = None,
    owner: Annotated[str | None, typer.Option(help="owner org code")] = None,
    pending_for_me: Annotated[bool, typer.Option("--pending-for-me", help="my org's approvers' queue")] = False,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sharing requests your org may see (as requester or owner; all for auditors), newest first."""
    page = _call(
        api, token, org, "get", "/v1/sharing-requests", status=status, entry=entry, requester=requester,
        owner=owner, pending_for_me=pending_for_me or None, limit=limit, offset=offset,
    )  # fmt: skip
    if as_json:
        _print_json(page)
    else:
        _show_requests(page, "sharing requests")


@request_app.command("get")
def request_get(
    request_id: Annotated[int, typer.Argument(help="request id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show one sharing request with its signed decisions (JSON)."""
    _print_json(_call(api, token, org, "get", f"/v1/sharing-requests/{request_id}"))


DEV_KEYSTORE_PASSWORD = "dev-only-password"  # the dev profile's (chain_gateway.settings default)


def _approver_key(approver: str, keystore: Path | None, from_credentials: bool) -> str:
    """The approver's private key: from the dev credentials file, or decrypted from its keystore file."""
    from eth_utils import to_checksum_address
    from pydantic import SecretStr

    from chain_gateway.errors import GatewayConfigError
    from chain_gateway.keystore import Keystore
    from chain_gateway.settings import VAR_DIR
    from registry_api import client as client_module

    account = to_checksum_address(approver)
    if from_credentials:
        path: Path = client_module.CREDENTIALS_PATH
        if not path.exists():
            raise typer.BadParameter(
                f"{path} does not exist (start the dev profile)", param_hint="--key-from-credentials"
            )
        saved = json.loads(path.read_text(encoding="utf-8"))
        for org in saved.get("orgs", {}).values():
            for item in org.get("approvers", []):
                if to_checksum_address(item["account"]) == account:
                    return str(item["private_key"])
        raise typer.BadParameter(f"no approver {account} in {path}", param_hint="--approver")
    directory = keystore or VAR_DIR / "dev" / "keystore"
    password = SecretStr(os.environ.get("DIRCHAIN_KEYSTORE_PASSWORD", DEV_KEYSTORE_PASSWORD))
    try:
        return "0x" + bytes(Keystore(directory, password).signer(account).key).hex()
    except GatewayConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--keystore") from exc


def _decide(
    client_args: tuple[str | None, str | None, str | None],
    request_id: int,
    approver: str,
    decision: str,
    reason: str,
    key: str,
    deadline_seconds: int,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Fetch the typed data, sign it here with the approver's key, and post the signature (the API relays it)."""
    from chain_gateway.eip712 import recover_signer, sign_typed_data

    typed = _call(*client_args, "approval_typed_data", request_id, approver, decision, reason, deadline_seconds)
    signature = sign_typed_data(key, typed)
    if recover_signer(typed, signature).lower() != approver.lower():
        err.print(f"[red]the key given is not {approver}'s[/]")
        raise typer.Exit(1)
    body: dict[str, Any] = {
        "approver": approver,
        "signature": signature,
        "nonce": typed["message"]["nonce"],
        "deadline": typed["message"]["deadline"],
    }
    if decision != "approve":
        body["reason"] = reason
    path = {
        "approve": f"/v1/sharing-requests/{request_id}/approvals",
        "refuse": f"/v1/sharing-requests/{request_id}/refusals",
        "revoke": f"/v1/grants/{request_id}/revoke",
    }[decision]
    console.print(f"{decision} of request {request_id} signed locally by {approver} (nonce {body['nonce']})")
    result: dict[str, Any] = _call(*client_args, "post", path, body, idempotency_key)
    return result


ApproverOpt = Annotated[str, typer.Option("--approver", help="the approver's account (0x...) that signs")]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        help="keystore directory holding the approver's key (default var/dev/keystore); password from "
        "DIRCHAIN_KEYSTORE_PASSWORD (default: the dev password)",
    ),
]
FromCredentialsOpt = Annotated[
    bool, typer.Option("--key-from-credentials", help="dev only: take the approver's key from var/dev/credentials.json")
]
DeadlineOpt = Annotated[int, typer.Option(help="seconds the signature stays valid (chain time)")]


@app.command("approve")
def approve(
    request_id: Annotated[int, typer.Argument(help="sharing request id")],
    approver: ApproverOpt,
    refuse: Annotated[bool, typer.Option("--refuse", help="refuse instead of approving (needs --reason)")] = False,
    reason: Annotated[str, typer.Option(help="why (signed with the decision)")] = "",
    keystore: KeystoreOpt = None,
    key_from_credentials: FromCredentialsOpt = False,
    deadline_seconds: DeadlineOpt = 600,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Approve (or --refuse) a sharing request: the EIP-712 decision is signed HERE with the approver's own key,
    and the API only relays the signature (the contract verifies it)."""
    if refuse and not reason.strip():
        raise typer.BadParameter("a refusal needs --reason", param_hint="--reason")
    key = _approver_key(approver, keystore, key_from_credentials)
    decision = "refuse" if refuse else "approve"
    accepted = _decide(
        (api, token, org), request_id, approver, decision, reason, key, deadline_seconds, idempotency_key
    )
    _finish((api, token, org), accepted, wait, timeout)


@grants_app.command("list")
def grants_list(
    status: Annotated[str, typer.Option(help="active|expired|revoked|all")] = "active",
    entry: Annotated[int | None, typer.Option(help="catalog entry id")] = None,
    requester: Annotated[str | None, typer.Option(help="requester org code")] = None,
    owner: Annotated[str | None, typer.Option(help="owner org code")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants your org may see, with their approvers (expiry judged by the chain's time)."""
    page = _call(
        api, token, org, "get", "/v1/grants", status=status, entry=entry, requester=requester, owner=owner,
        limit=limit, offset=offset,
    )  # fmt: skip
    if as_json:
        _print_json(page)
    else:
        _show_requests(page, f"{status} grants (chain time {page.get('chain_time')})")


@grants_app.command("revoke")
def grants_revoke(
    grant_id: Annotated[int, typer.Argument(help="grant (request) id")],
    approver: ApproverOpt,
    reason: Annotated[str, typer.Option(help="why (signed with the revocation)")],
    keystore: KeystoreOpt = None,
    key_from_credentials: FromCredentialsOpt = False,
    deadline_seconds: DeadlineOpt = 600,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Revoke a grant: the approver signs the revocation here, the API relays it."""
    key = _approver_key(approver, keystore, key_from_credentials)
    accepted = _decide((api, token, org), grant_id, approver, "revoke", reason, key, deadline_seconds, idempotency_key)
    _finish((api, token, org), accepted, wait, timeout)


# ---------------------------------------------------------------- client: algorithm center


def _show_algorithms(page: dict[str, Any], offset: int) -> None:
    table = Table(title=f"{page['count']} algorithms")
    for column in ("id", "name", "version", "submitter", "status", "score", "code hash", "block"):
        table.add_column(column)
    for a in page["data"]:
        score = "" if a["score"] is None else str(a["score"])
        table.add_row(
            str(a["id"]), a["name"], a["version"], a["submitter_org"] or "", a["status"], score,
            a["code_hash"][:18] + "…", str(a["block_number"]),
        )  # fmt: skip
    console.print(table)
    shown_to = offset + len(page["data"])
    if shown_to < page["count"]:
        console.print(f"{offset + 1}-{shown_to} of {page['count']}; next page: --offset {shown_to}")


def _show_algorithm(a: dict[str, Any]) -> None:
    reason = f" ({a['status_reason']})" if a["status_reason"] else ""
    console.print(f"[bold]{a['id']}[/] {a['name']} {a['version']}: [bold]{a['status']}[/]{reason}")
    for key in ("submitter_org", "submitter", "code_hash", "input_hash", "score", "report_hash", "submitted_at",
                "tx_hash", "updated_at"):  # fmt: skip
        console.print(f"  {key}: {a[key]}")
    console.print(f"  outputs: {json.dumps(a['outputs'], ensure_ascii=False)}")
    evaluations = Table("reviewer", "score", "passed", "report hash", "time", "tx", title="evaluations")
    for e in a["evaluations"]:
        evaluations.add_row(
            e["reviewer_org"] or e["reviewer"], str(e["score"]), "yes" if e["passed"] else "no",
            e["report_hash"][:18] + "…", e["time"], e["tx_hash"][:18] + "…",
        )  # fmt: skip
    console.print(evaluations)
    admissions = Table("entry", "title", "owner", "admitted by", "block", title="admitted by entries")
    for m in a["admissions"]:
        admissions.add_row(
            str(m["entry_id"]), m["entry_title"] or "", m["owner_org"] or "", m["admitted_by"], str(m["block_number"])
        )
    console.print(admissions)


@algorithms_app.command("submit")
def algorithms_submit(
    name: Annotated[str, typer.Option("--name", help="algorithm name, e.g. grouped_count")],
    version: Annotated[str, typer.Option("--version", help="version; name and version are unique together")],
    outputs: Annotated[str, typer.Option("--outputs", help="declared outputs: a JSON object, or @file holding one")],
    code_hash: Annotated[
        str | None, typer.Option("--code-hash", help="keccak256 of the implementation (0x + 64 hex)")
    ] = None,
    code_file: Annotated[
        Path | None, typer.Option("--code-file", help="the implementation file: its keccak256 is the code hash")
    ] = None,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Submit an algorithm of your org for evaluation (give --code-hash or --code-file)."""
    from eth_utils import keccak

    if (code_hash is None) == (code_file is None):
        raise typer.BadParameter("give --code-hash or --code-file (one of them)", param_hint="--code-hash")
    if code_file is not None:
        if not code_file.is_file():
            raise typer.BadParameter(f"{code_file} is not a file", param_hint="--code-file")
        code_hash = "0x" + keccak(code_file.read_bytes()).hex()
    try:
        declared = json.loads(_read_text(Path(outputs[1:]), "--outputs") if outputs.startswith("@") else outputs)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--outputs") from exc
    body = {"name": name, "version": version, "code_hash": code_hash, "outputs": declared}
    _send((api, token, org), "/v1/algorithms", body, idempotency_key, wait, timeout)


def _read_text(path: Path, param_hint: str) -> str:
    """A UTF-8 text file's content, or a usage error naming the option it came from."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint=param_hint) from exc


@algorithms_app.command("list")
def algorithms_list(
    status: Annotated[str | None, typer.Option(help="submitted|evaluated|listed|delisted")] = None,
    name: Annotated[str | None, typer.Option(help="exact algorithm name (every version)")] = None,
    submitter: Annotated[str | None, typer.Option(help="submitter org code")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List algorithms with their status and latest score, as a table (or --json)."""
    page = _call(
        api, token, org, "get", "/v1/algorithms", status=status, name=name, submitter=submitter, limit=limit,
        offset=offset,
    )  # fmt: skip
    if as_json:
        _print_json(page)
    else:
        _show_algorithms(page, offset)


@algorithms_app.command("show")
def algorithms_show(
    algorithm_id: Annotated[int, typer.Argument(help="algorithm id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one algorithm with every evaluation and the entries that admit it."""
    algorithm = _call(api, token, org, "get", f"/v1/algorithms/{algorithm_id}")
    if as_json:
        _print_json(algorithm)
    else:
        _show_algorithm(algorithm)


@algorithms_app.command("evaluate")
def algorithms_evaluate(
    algorithm_id: Annotated[int, typer.Argument(help="algorithm id")],
    score: Annotated[int, typer.Option("--score", help="0..100; 60 or more passes")],
    report: Annotated[
        str | None, typer.Option("--report", help="the report text (its keccak256 goes on-chain)")
    ] = None,
    report_file: Annotated[Path | None, typer.Option("--report-file", help="a file holding the report text")] = None,
    report_hash: Annotated[
        str | None, typer.Option("--report-hash", help="keccak256 of a report kept elsewhere (0x + 64 hex)")
    ] = None,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Record an evaluation (测评) as a REVIEWER of another org than the submitter's: report and score."""
    given = [v for v in (report, report_file, report_hash) if v is not None]
    if len(given) != 1:
        raise typer.BadParameter("give one of --report, --report-file, --report-hash", param_hint="--report")
    body: dict[str, Any] = {"score": score}
    if report_hash is not None:
        body["report_hash"] = report_hash
    elif report_file is not None:
        body["report"] = _read_text(report_file, "--report-file")
    else:
        body["report"] = report
    path = f"/v1/algorithms/{algorithm_id}/evaluations"
    _send((api, token, org), path, body, idempotency_key, wait, timeout)


@algorithms_app.command("publish")
def algorithms_publish(
    algorithm_id: Annotated[int, typer.Argument(help="algorithm id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """List (上架) an evaluated algorithm whose latest score passes, as a REVIEWER."""
    _send((api, token, org), f"/v1/algorithms/{algorithm_id}/listing", {}, idempotency_key, wait, timeout)


@algorithms_app.command("delist")
def algorithms_delist(
    algorithm_id: Annotated[int, typer.Argument(help="algorithm id")],
    reason: Annotated[str, typer.Option("--reason", help="why it is taken down (final)")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Delist (下架) an algorithm as a REVIEWER: every admission of it stops counting at once."""
    path = f"/v1/algorithms/{algorithm_id}/delisting"
    _send((api, token, org), path, {"reason": reason}, idempotency_key, wait, timeout)


@algorithms_app.command("admit")
def algorithms_admit(
    entry_id: Annotated[int, typer.Argument(help="catalog entry id (of your org)")],
    algorithm_id: Annotated[int, typer.Argument(help="a listed algorithm's id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Admit a listed algorithm for one of your org's catalog entries in the data zone (REGISTRAR)."""
    body = {"algorithm_id": algorithm_id}
    _send((api, token, org), f"/v1/catalog/{entry_id}/algorithms", body, idempotency_key, wait, timeout)


@algorithms_app.command("withdraw")
def algorithms_withdraw(
    entry_id: Annotated[int, typer.Argument(help="catalog entry id (of your org)")],
    algorithm_id: Annotated[int, typer.Argument(help="the admitted algorithm's id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Withdraw an algorithm's admission for one of your org's catalog entries (REGISTRAR)."""
    path = f"/v1/catalog/{entry_id}/algorithms/{algorithm_id}"
    accepted = _call(api, token, org, "delete", path, idempotency_key)
    _finish((api, token, org), accepted, wait, timeout)


@algorithms_app.command("admitted")
def algorithms_admitted(
    entry_id: Annotated[int, typer.Argument(help="catalog entry id")],
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The algorithms a catalog entry admits; only listed ones are usable in the data zone."""
    page = _call(api, token, org, "get", f"/v1/catalog/{entry_id}/algorithms", limit=limit, offset=offset)
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"entry {entry_id}: {page['count']} admitted, {page['usable']} usable")
    for column in ("id", "name", "version", "status", "usable", "admitted by", "block"):
        table.add_column(column)
    for item in page["data"]:
        a = item["algorithm"]
        table.add_row(
            str(a["id"]), a["name"], a["version"], a["status"], "[green]yes[/]" if item["usable"] else "[red]no[/]",
            item["admitted_by"], str(item["block_number"]),
        )  # fmt: skip
    console.print(table)


# ---------------------------------------------------------------- client: resolver and data zone


def _line(text: str) -> None:
    """One line of output that is never wrapped (hashes and tokens stay whole for copying)."""
    console.print(text, soft_wrap=True, highlight=False)


def _show_or_json(answer: Any, as_json: bool, show: Any) -> None:
    if as_json:
        _print_json(answer)
    else:
        show(answer)


def _show_decision(answer: dict[str, Any]) -> None:
    permit = answer["decision"] == "permit"
    verdict = "[green]permit[/]" if permit else f"[red]deny[/] [bold]{answer['reason']}[/]"
    _line(f"{verdict}: {answer['action']} on entry {answer['entry_id']} as {answer['form']} — {answer['message']}")
    proof, constraints = answer["proof"], answer["constraints"]
    block = proof["block"]
    _line(f"  decided at block {block['number']} ({block['hash']}), chain time {proof['chain_time']}")
    if proof["grant_id"] is not None:
        _line(f"  grant {proof['grant_id']} ({proof['grant_form']}): request tx {proof['request_tx_hash']}")
        for tx_hash in proof["approval_tx_hashes"]:
            _line(f"    approval tx {tx_hash}")
        _line(f"    grant tx {proof['grant_tx_hash']} (block {proof['grant_block']})")
    elif proof["basis"] == "owner":
        _line("  basis: the entry's owner org")
    shown = {k: v for k, v in constraints.items() if v is not None}
    if shown:
        _line(f"  constraints: {json.dumps(shown, ensure_ascii=False)}")
    capability = answer.get("capability")
    if capability:
        _line(f"  capability token (kid {capability['kid']}, expires {capability['expires_at']}, "
              f"receipt {capability['receipt_id']}):")  # fmt: skip
        _line(capability["token"])


@app.command("resolve")
def resolve(
    entry: Annotated[int, typer.Argument(help="catalog entry id")],
    action: Annotated[str, typer.Option("--action", help="read_raw | read_desensitized | compute")],
    algorithm: Annotated[int | None, typer.Option("--algorithm", help="compute: the algorithm id")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="compute: the epsilon to spend")] = None,
    token_only: Annotated[bool, typer.Option("--token-only", help="print only the capability token")] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the resolver whether your org may read or compute on an entry; a permit prints its capability token.

    Exit code 0 for a permit, 3 for a deny (the reason is printed), 1 for an error."""
    body: dict[str, Any] = {"entry_id": entry, "action": action}
    if algorithm is not None:
        body["algorithm_id"] = algorithm
    if epsilon is not None:
        body["epsilon"] = epsilon
    answer = _call(api, token, org, "post", "/v1/resolve", body)
    if token_only and answer["decision"] == "permit":
        _line(answer["capability"]["token"])
    elif as_json:
        _print_json(answer)
    else:
        _show_decision(answer)
    if answer["decision"] != "permit":
        if token_only:
            err.print(f"[red]deny {answer['reason']}[/]: {answer['message']}")
        raise typer.Exit(3)


def _show_job(job: dict[str, Any]) -> None:
    result = job["result"]
    table = Table(title=f"job {job['id']}: {result['algorithm']} on entry {job['entry_id']}")
    groups = result["groups"]
    keys = list(groups[0]["key"]) if groups else []
    values = list(groups[0]["values"]) if groups else []
    for column in (*keys, *values):
        table.add_column(column)
    for group in groups:
        table.add_row(*(str(group["key"][k]) for k in keys), *(str(group["values"][v]) for v in values))
    console.print(table)
    left = f", {job['remaining_epsilon']:g} left" if job.get("remaining_epsilon") is not None else ""
    _line(f"suppressed groups: {job['suppressed']} (k = {result['k']}); epsilon {job['epsilon_spent']:g}{left}")
    _line(f"mechanism: {result['mechanism']}")
    _line(f"receipt {job['receipt_id']}, decided at block {job['decided_block']}, grant {job['grant_id']}")


@zone_jobs_app.command("run")
def zone_jobs_run(
    entry: Annotated[int, typer.Option("--entry", help="catalog entry id")],
    algorithm: Annotated[int, typer.Option("--algorithm", help="a listed algorithm admitted for the entry")],
    params: Annotated[
        str, typer.Option("--params", help='the algorithm\'s params as JSON, e.g. {"group_by":["street"]}')
    ] = "{}",
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="default: the entry's per-job maximum")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run an algorithm where the data is; only results under disclosure control come back."""
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params") from exc
    body: dict[str, Any] = {"entry_id": entry, "algorithm_id": algorithm, "params": parsed}
    if epsilon is not None:
        body["epsilon"] = epsilon
    _show_or_json(_call(api, token, org, "post", "/v1/zone/jobs", body), as_json, _show_job)


@zone_jobs_app.command("show")
def zone_jobs_show(
    job_id: Annotated[str, typer.Argument(help="job id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One job of your org and its released result."""
    _show_or_json(_call(api, token, org, "get", f"/v1/zone/jobs/{job_id}"), as_json, _show_job)


@zone_receipts_app.command("show")
def zone_receipts_show(
    receipt_id: Annotated[int, typer.Argument(help="usage receipt id")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A usage receipt, its hash and, once anchored, its batch and Merkle inclusion proof."""
    _show_or_json(_call(api, token, org, "get", f"/v1/zone/receipts/{receipt_id}"), as_json, _show_receipt)


def _show_receipt(receipt: dict[str, Any]) -> None:
    _line(f"receipt {receipt['id']}: {receipt['kind']} {receipt['action']} ({receipt['form']}) of entry "
          f"{receipt['entry_id']} by {receipt['org']} ({receipt['account']}), grant {receipt['grant_id']}, "
          f"epsilon {receipt['epsilon_spent']:g}, block {receipt['decided_block']}")  # fmt: skip
    _line(f"  receipt hash {receipt['receipt_hash']}\n  leaf         {receipt['leaf']}")
    batch = receipt.get("batch")
    if not receipt["anchored"] or batch is None:
        _line(f"  [yellow]not anchored yet[/] ({receipt.get('anchor_status')})")
        return
    mismatch = "" if receipt["root_matches"] else " [red]ROOT MISMATCH[/]"
    _line(f"  [green]anchored[/] in batch {batch['batch_id']} (receipts {batch['first_receipt']}.."
          f"{batch['last_receipt']}), root {batch['merkle_root']}, tx {batch['tx_hash']} "
          f"block {batch['block_number']}{mismatch}")  # fmt: skip
    for sibling in receipt["proof"]:
        _line(f"    proof {sibling}")


@zone_app.command("rows")
def zone_rows(
    entry: Annotated[int, typer.Argument(help="catalog entry id")],
    capability: Annotated[str, typer.Option("--capability", help="a capability token from `dirchain resolve`")],
    form: Annotated[str, typer.Option("--form", help="desensitized | raw")] = "desensitized",
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Rows of an entry as a data holder serves them against a capability token (JSON)."""
    with _client(api, token, org) as client:
        try:
            page = client.request(
                "GET", f"/v1/zone/entries/{entry}/rows", params={"form": form, "limit": limit, "offset": offset},
                headers={"X-Capability": capability},
            )  # fmt: skip
        except ApiClientError as exc:
            _fail(exc)
    _print_json(page)


@zone_app.command("anchor")
def zone_anchor() -> None:
    """Anchor the usage receipts not anchored yet, once (the API's job does it every interval).

    Follows the batch in flight, or records the next batch and queues SharingAgreements.anchorReceipts."""
    from chain_gateway.gateway import Gateway
    from registry_api.anchoring import AnchoringError, ReceiptAnchorer
    from registry_api.app import create_read_engine
    from registry_api.receipts import create_receipt_tables

    settings = _settings()
    engine = create_read_engine(settings.database_url)
    try:
        create_receipt_tables(engine)
        with Gateway.from_settings(settings) as gateway:
            gateway.create_tables()
            anchorer = ReceiptAnchorer(engine, gateway, settings.zone_operator_org, settings.receipt_anchor_batch_max)
            try:
                result = anchorer.run_once()
            except AnchoringError as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    if result is None:
        _line("nothing to anchor")
        return
    colour = {"failed": "red", "anchored": "green"}.get(result.status, "yellow")
    _line(f"receipts {result.first_receipt}..{result.last_receipt}: [{colour}]{result.status}[/] "
          f"({result.note}); root {result.merkle_root}; operation {result.operation_id}")  # fmt: skip
    if result.status == "failed":
        raise typer.Exit(1)


# ---------------------------------------------------------------- dev profile (registry_api/devnet.py)


def _add_devnet() -> None:
    """`dirchain devnet ...` and `dirchain deploy` come from registry_api.devnet when it is present."""
    try:
        from registry_api import devnet
    except ModuleNotFoundError as exc:
        if exc.name != "registry_api.devnet":
            raise
        return
    app.add_typer(devnet.app, name="devnet", help="The local dev profile: anvil, demo consortium, indexer and API.")
    deploy = getattr(devnet, "deploy", None)
    if deploy is not None:
        app.command("deploy", help="Deploy the contracts and write deployments/<chainId>.json.")(deploy)


_add_devnet()
__import__("registry_api.cli_report").cli_report.register(app)  # dirchain report (registry_api/cli_report.py)
__import__("registry_api.cli_audit").cli_audit.register(app)  # dirchain audit (registry_api/cli_audit.py)
__import__("registry_api.cli_synth").cli_synth.register(app)  # dirchain synth (registry_api/cli_synth.py)
__import__("registry_api.cli_db").cli_db.register(app)  # dirchain db (registry_api/cli_db.py)
__import__("registry_api.cli_config").cli_config.register(app)  # dirchain config (registry_api/cli_config.py)
import registry_api.cli_reviews  # noqa: E402, F401, I001 - adds `dirchain reviews` and `dirchain carriers`
import registry_api.cli_imports  # noqa: E402, F401, I001 - adds `dirchain import` and `dirchain imports`
import registry_api.cli_governance  # noqa: E402, F401, I001 - adds `dirchain proposals` and `dirchain code-rules`
import registry_api.cli_genesis  # noqa: E402, F401, I001 - adds `dirchain genesis` (Besu QBFT, Clique alloc)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
