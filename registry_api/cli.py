"""`dirchain`: serve the API, run the gateway and indexer, compile, deploy, issue tokens, and call the API.

Server commands read the one settings object (DIRCHAIN_* environment or .env). Client commands talk HTTP to
the API given by --api/--token, DIRCHAIN_API/DIRCHAIN_TOKEN, or the dev profile's var/dev/credentials.json
(pick the org with --org).
"""

from __future__ import annotations

import json
import signal
import threading
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
app.add_typer(gateway_app, name="gateway")
app.add_typer(indexer_app, name="indexer")
app.add_typer(tokens_app, name="tokens")
app.add_typer(devices_app, name="devices")
app.add_typer(operations_app, name="operations")

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

    settings = _settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port)


@gateway_app.command("run")
def gateway_run() -> None:
    """Process the outbox until Ctrl-C: sign, send, follow receipts, confirm."""
    from chain_gateway.gateway import Gateway

    stop = _stop_on_signals()
    with Gateway.from_settings(_settings()) as gateway:
        gateway.create_tables()
        console.print(f"gateway running against {gateway.rpc.url} (Ctrl-C stops)")
        gateway.run(stop)


@indexer_app.command("run")
def indexer_run() -> None:
    """Mirror the chain into SQL until Ctrl-C (follows the head, rewinds reorgs)."""
    from indexer.service import Indexer

    stop = _stop_on_signals()
    with Indexer.from_settings(_settings()) as indexer:
        indexer.create_tables()
        console.print(f"indexer running against {indexer.rpc.url} (Ctrl-C stops)")
        indexer.run(stop)


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
) -> None:
    """Issue a bearer token; it is printed once and only its sha256 is stored."""
    from registry_api.app import create_read_engine
    from registry_api.auth import issue_token

    engine = create_read_engine(_settings().database_url)
    try:
        token = issue_token(engine, org, account, label)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()
    err.print(f"token for {org} (signing with {account}); shown once, store it now:")
    console.print(token, soft_wrap=True, highlight=False)


@tokens_app.command("list")
def tokens_list(org: Annotated[str | None, typer.Option("--org", help="only this org")] = None) -> None:
    """List tokens (hash prefix, org, account, label, revoked); never the tokens themselves."""
    from registry_api.app import create_read_engine
    from registry_api.auth import create_token_table, list_tokens

    engine = create_read_engine(_settings().database_url)
    try:
        create_token_table(engine)
        rows = list_tokens(engine, org)
    finally:
        engine.dispose()
    table = Table("hash", "org", "account", "label", "revoked")
    for row in rows:
        table.add_row(row.token_hash[:12], row.org_code, row.account, row.label, "yes" if row.revoked else "")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
