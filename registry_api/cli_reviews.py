"""`dirchain reviews ...` and `dirchain carriers ...`: joint review (联审) and carriers (感知载体) through the API.

The command groups are added to `registry_api.cli.app` when that module imports this one (its last import), and
use its client helpers and options; the review `show` renders the existing devices near each planned one as a
rich table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from registry_api.cli import (
    ApiOpt,
    JsonOpt,
    KeyOpt,
    LimitOpt,
    OffsetOpt,
    OrgOpt,
    TimeoutOpt,
    TokenOpt,
    WaitOpt,
    _call,
    _read_json,
    _send,
    _show_or_json,
    app,
    console,
)

__all__ = ["carriers_app", "reviews_app"]

reviews_app = typer.Typer(
    help="Joint review (联审) of projects of planned devices: file, list, show (with the existing devices and spare "
    "carriers near each planned one), approve, refuse, withdraw.",
    no_args_is_help=True,
)
carriers_app = typer.Typer(
    help="Carriers (感知载体): register, list, show, usage, and reuse requests (request-reuse, requests, decide, "
    "withdraw).",
    no_args_is_help=True,
)

DOMAINS = "imagery|city_management|emergency|other"
RadiusOpt = Annotated[float, typer.Option("--radius-m", help="metres around each planned device")]


def _more(page: dict[str, Any], offset: int) -> None:
    shown_to = offset + len(page["data"])
    if shown_to < page["count"]:
        console.print(f"{offset + 1}-{shown_to} of {page['count']}; next page: --offset {shown_to}")


def _metres(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f} m"


# ---------------------------------------------------------------- reviews


@reviews_app.command("file")
def reviews_file(
    file: Annotated[
        Path, typer.Argument(help="JSON: a list of planned devices, or {domain, title, devices}", exists=True)
    ],
    domain: Annotated[str | None, typer.Option(help=f"{DOMAINS} (overrides the file's)")] = None,
    title: Annotated[str | None, typer.Option(help="project title (overrides the file's)")] = None,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """File a project of 1..200 planned devices (device objects as `devices register` takes them; status planned,
    attributes.carrier names the carrier a device will be mounted on) for the domain's lead org to review."""
    data = _read_json(file)
    body: dict[str, Any] = {"devices": data} if isinstance(data, list) else dict(data)
    body.update({k: v for k, v in (("domain", domain), ("title", title)) if v is not None})
    if "domain" not in body or "title" not in body:
        raise typer.BadParameter("give --domain and --title (or put them in the file)", param_hint="--domain")
    _send((api, token, org), "/v1/reviews", body, idempotency_key, wait, timeout)


@reviews_app.command("list")
def reviews_list(
    status: Annotated[str | None, typer.Option(help="filed|approved|refused|withdrawn")] = None,
    domain: Annotated[str | None, typer.Option(help=DOMAINS)] = None,
    applicant: Annotated[str | None, typer.Option(help="applicant org code")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List review projects with their status, lead org and decision, as a table (or --json)."""
    params = {"status": status, "domain": domain, "applicant": applicant, "limit": limit, "offset": offset}
    page = _call(api, token, org, "get", "/v1/reviews", **params)

    def show(page: dict[str, Any]) -> None:
        table = Table(title=f"{page['count']} review projects")
        for column in ("id", "title", "domain", "applicant", "devices", "status", "lead", "reviewer", "filed"):
            table.add_column(column)
        for r in page["data"]:
            table.add_row(
                str(r["id"]), r["title"], r["domain"], r["applicant_org"] or "", str(r["device_count"]), r["status"],
                r["lead_org"] or "", r["reviewer_org"] or "", r["filed_at"],
            )  # fmt: skip
        console.print(table)
        _more(page, offset)

    _show_or_json(page, as_json, show)


def _show_review(review: dict[str, Any]) -> None:
    colour = {"approved": "green", "refused": "red", "withdrawn": "dim"}.get(review["status"], "yellow")
    console.print(
        f"[bold]project {review['id']}[/] {review['title']} — {review['domain']}, filed by {review['applicant_org']} "
        f"at {review['filed_at']}: [{colour}]{review['status']}[/]"
    )
    decided = f" by {review['reviewer_org']}" if review["reviewer_org"] else f" (lead org {review['lead_org']})"
    console.print(
        f"  {review['device_count']} planned devices{decided}{': ' + review['reason'] if review['reason'] else ''}"
    )
    console.print(
        f"  filed in tx {review['tx_hash']} (block {review['block_number']}); devices hash {review['devices_hash']}"
    )
    radius = review["radius_m"]
    planned = Table(
        title=f"planned devices ({review['devices_with_neighbours']} with existing ones within {radius:g} m)"
    )
    for column in ("#", "code", "type", "lat", "lon", "carrier", "on ledger", f"same type ≤ {radius:g} m"):
        planned.add_column(column)
    for d in review["devices"]:
        planned.add_row(
            str(d["position"]), d["code"], d["type"] or str(d["type_id"]), f"{d['location']['lat']:.6f}",
            f"{d['location']['lon']:.6f}", d["carrier"] or "", "yes" if d["on_ledger"] else "",
            str(d["nearby_devices_count"]),
        )  # fmt: skip
    console.print(planned)
    nearby = Table(title=f"existing devices of the same type within {radius:g} m")
    for column in ("planned", "existing", "type", "owner", "status", "distance"):
        nearby.add_column(column)
    for d in review["devices"]:
        for n in d["nearby_devices"]:
            nearby.add_row(
                d["code"], n["code"], n["type"] or "", n["owner_org"] or "", n["status"], _metres(n["distance_m"])
            )
    console.print(nearby if nearby.row_count else f"no existing device of the same type within {radius:g} m")
    carriers = Table(title=f"carriers with a spare slot within {radius:g} m")
    for column in ("planned", "carrier", "kind", "owner", "free slots", "free ports", "distance"):
        carriers.add_column(column)
    for d in review["devices"]:
        for c in d["nearby_carriers"]:
            carriers.add_row(
                d["code"], c["code"], c["kind"], c["owner_org"] or "", str(c["slots_free"]), str(c["ports_free"]),
                _metres(c["distance_m"]),
            )  # fmt: skip
    if carriers.row_count:
        console.print(carriers)


@reviews_app.command("show")
def reviews_show(
    project_id: Annotated[int, typer.Argument(help="review project id")],
    radius_m: RadiusOpt = 100.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The review view: the project, its planned devices, the existing devices of the same type within --radius-m of
    each (nearest first) and the carriers with a spare slot nearby."""
    review = _call(api, token, org, "get", f"/v1/reviews/{project_id}", radius_m=radius_m)
    _show_or_json(review, as_json, _show_review)


@reviews_app.command("approve")
def reviews_approve(
    project_id: Annotated[int, typer.Argument(help="review project id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Approve a filed project as a REVIEWER of its domain's lead org: its devices go on the ledger as planned
    devices of the applicant, all or none."""
    _send((api, token, org), f"/v1/reviews/{project_id}/approval", {}, idempotency_key, wait, timeout)


@reviews_app.command("refuse")
def reviews_refuse(
    project_id: Annotated[int, typer.Argument(help="review project id")],
    reason: Annotated[str, typer.Option("--reason", help="why, e.g. the same type already stands 30 m away")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Refuse a filed project for a reason, as a REVIEWER of its domain's lead org."""
    path = f"/v1/reviews/{project_id}/refusal"
    _send((api, token, org), path, {"reason": reason}, idempotency_key, wait, timeout)


@reviews_app.command("withdraw")
def reviews_withdraw(
    project_id: Annotated[int, typer.Argument(help="review project id")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Withdraw your org's project while it is filed (REGISTRAR)."""
    _send((api, token, org), f"/v1/reviews/{project_id}/withdrawal", {}, idempotency_key, wait, timeout)


# ---------------------------------------------------------------- carriers


@carriers_app.command("register")
def carriers_register(
    code: Annotated[str, typer.Option("--code", help="carrier code, e.g. BJ-POLE-110105-000001")],
    kind: Annotated[str, typer.Option("--kind", help="pole|mount|cabinet|building")],
    district: Annotated[int, typer.Option("--district", help="6-digit division code, e.g. 110105")],
    lat: Annotated[float, typer.Option("--lat", help="latitude, WGS-84 degrees")],
    lon: Annotated[float, typer.Option("--lon", help="longitude, WGS-84 degrees")],
    slots: Annotated[int, typer.Option("--slots", help="mounting positions")],
    ports: Annotated[int, typer.Option("--ports", help="network ports")],
    attributes: Annotated[str, typer.Option(help="a JSON object (no personal data)")] = "{}",
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Register a carrier of your org (REGISTRAR), nothing in use yet."""
    try:
        extra = json.loads(attributes)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--attributes") from exc
    body = {
        "code": code, "kind": kind, "district": district, "location": {"lat": lat, "lon": lon}, "slots": slots,
        "ports": ports, "attributes": extra,
    }  # fmt: skip
    _send((api, token, org), "/v1/carriers", body, idempotency_key, wait, timeout)


@carriers_app.command("list")
def carriers_list(
    owner: Annotated[str | None, typer.Option(help="owner org code")] = None,
    district: Annotated[int | None, typer.Option(help="6-digit division code")] = None,
    kind: Annotated[str | None, typer.Option(help="pole|mount|cabinet|building")] = None,
    spare: Annotated[
        bool | None, typer.Option("--spare/--full", help="with a free slot / without", show_default=False)
    ] = None,
    near: Annotated[str | None, typer.Option(help="lat,lon,radius_m: nearest first")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List carriers with their capacity and use, as a table (or --json)."""
    params = {
        "owner": owner, "district": district, "kind": kind, "near": near, "limit": limit, "offset": offset,
        "has_spare": None if spare is None else str(spare).lower(),
    }  # fmt: skip
    page = _call(api, token, org, "get", "/v1/carriers", **params)

    def show(page: dict[str, Any]) -> None:
        table = Table(title=f"{page['count']} carriers")
        for column in ("code", "kind", "owner", "district", "slots used/all", "ports used/all", "distance"):
            table.add_column(column)
        for c in page["data"]:
            table.add_row(
                c["code"], c["kind"], c["owner_org"] or "", str(c["district"]), f"{c['slots_used']}/{c['slots']}",
                f"{c['ports_used']}/{c['ports']}", _metres(c["distance_m"]),
            )  # fmt: skip
        console.print(table)
        _more(page, offset)

    _show_or_json(page, as_json, show)


def _requests_table(requests: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "carrier", "requester", "owner", "slots", "ports", "purpose", "status", "reason"):
        table.add_column(column)
    for r in requests:
        table.add_row(
            str(r["id"]), r["carrier_code"], r["requester_org"] or "", r["owner_org"] or "", str(r["slots"]),
            str(r["ports"]), r["purpose"], r["status"], r["reason"],
        )  # fmt: skip
    return table


@carriers_app.command("show")
def carriers_show(
    code: Annotated[str, typer.Argument(help="carrier code")],
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One carrier with its capacity, use and the reuse requests you may see."""

    def show(c: dict[str, Any]) -> None:
        console.print(
            f"[bold]{c['code']}[/] {c['kind']} of {c['owner_org']} in {c['district']} at "
            f"{c['location']['lat']:.6f},{c['location']['lon']:.6f}: slots {c['slots_used']}/{c['slots']} used, "
            f"ports {c['ports_used']}/{c['ports']} used; attributes {json.dumps(c['attributes'], ensure_ascii=False)}"
        )
        if c["reuse_requests"]:
            console.print(_requests_table(c["reuse_requests"], "reuse requests"))

    _show_or_json(_call(api, token, org, "get", f"/v1/carriers/{code}"), as_json, show)


@carriers_app.command("usage")
def carriers_usage(
    code: Annotated[str, typer.Argument(help="carrier code (of your org)")],
    slots_used: Annotated[int, typer.Option("--slots-used", help="slots your devices use")],
    ports_used: Annotated[int, typer.Option("--ports-used", help="ports your devices use")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Set how many slots and ports of your org's carrier are in use (at most its capacity)."""
    body = {"slots_used": slots_used, "ports_used": ports_used}
    _send((api, token, org), f"/v1/carriers/{code}/usage", body, idempotency_key, wait, timeout)


@carriers_app.command("request-reuse")
def carriers_request_reuse(
    code: Annotated[str, typer.Argument(help="another org's carrier code")],
    purpose: Annotated[str, typer.Option("--purpose", help="what you will mount or connect")],
    slots: Annotated[int, typer.Option(help="mounting slots wanted")] = 0,
    ports: Annotated[int, typer.Option(help="network ports wanted")] = 0,
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Apply to reuse spare slots and/or ports of another org's carrier (REGISTRAR); its owner decides."""
    body = {"slots": slots, "ports": ports, "purpose": purpose}
    _send((api, token, org), f"/v1/carriers/{code}/reuse-requests", body, idempotency_key, wait, timeout)


@carriers_app.command("requests")
def carriers_requests(
    role: Annotated[str | None, typer.Option(help="requester (made) | owner (received); both if absent")] = None,
    status: Annotated[str | None, typer.Option(help="requested|granted|refused|withdrawn")] = None,
    carrier: Annotated[str | None, typer.Option(help="carrier code")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The reuse requests your org made or received, newest first."""
    params = {"role": role, "status": status, "carrier": carrier, "limit": limit, "offset": offset}
    page = _call(api, token, org, "get", "/v1/carrier-reuse-requests", **params)

    def show(page: dict[str, Any]) -> None:
        console.print(_requests_table(page["data"], f"{page['count']} reuse requests"))
        _more(page, offset)

    _show_or_json(page, as_json, show)


@carriers_app.command("decide")
def carriers_decide(
    request_id: Annotated[int, typer.Argument(help="reuse request id")],
    grant: Annotated[bool, typer.Option("--grant/--refuse", help="grant (takes the capacity) or refuse")],
    reason: Annotated[str, typer.Option(help="why (required to refuse)")] = "",
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Grant or refuse a reuse request of your org's carrier (REGISTRAR of the owner)."""
    path = f"/v1/carrier-reuse-requests/{request_id}/decision"
    _send((api, token, org), path, {"grant": grant, "reason": reason}, idempotency_key, wait, timeout)


@carriers_app.command("withdraw")
def carriers_withdraw(
    request_id: Annotated[int, typer.Argument(help="reuse request id (of your org)")],
    idempotency_key: KeyOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
    api: ApiOpt = None,
    token: TokenOpt = None,
    org: OrgOpt = None,
) -> None:
    """Withdraw your org's open reuse request."""
    path = f"/v1/carrier-reuse-requests/{request_id}/withdrawal"
    _send((api, token, org), path, {}, idempotency_key, wait, timeout)


app.add_typer(reviews_app, name="reviews")
app.add_typer(carriers_app, name="carriers")
