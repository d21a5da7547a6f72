"""/v1/devices: register (one or many), list with filters, read one, history, update, life cycle, inspections.

The two hot reads (a device by code, the filtered list) run on the event loop: a mirror read is an indexed query
of well under a millisecond, cheaper than the hop to a worker thread that a sync route costs. They run SQL compiled
once per filter shape on the pooled DB-API connection (`registry_api.device_sql`), and write the JSON themselves
(`crud.device_dict`, the members and order of `DevicePublic`, which documents them).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from indexer.handlers import INSPECTION_RESULTS, LIFECYCLE_ACTIONS
from registry_api import crud
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, ReaderDep, RegistrarDep, SessionDep, read_connection
from registry_api.encoding import canonical_json, code_rule_violation, to_micro_degrees, to_unix
from registry_api.errors import ApiError
from registry_api.responses import json_response
from registry_api.schemas.common import ErrorPublic, OperationAccepted
from registry_api.schemas.devices import (
    DeviceBatchCreate,
    DeviceEventsPublic,
    DevicePublic,
    DevicesCreateBody,
    DevicesPublic,
    DeviceUpdate,
    InspectionCreate,
    LifecycleChange,
)
from registry_api.writes import IdempotencyKey, accepted, enqueue

__all__ = ["parse_bbox", "router"]

router = APIRouter(prefix="/v1/devices", tags=["devices"])

CONTRACT = "DeviceRegistry"
MAX_NEAR_RADIUS_M = 50_000.0
NO_REPORT = "0x" + "00" * 32
DeviceStatus = Literal["planned", "active", "suspended", "replaced", "retired"]
CodePath = Annotated[str, Path(min_length=1, max_length=64, description="the device's city-wide code")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "role missing (ROLE_REQUIRED) or the device belongs to another org (DEVICE_NOT_OWNED)",
        404: "no such device (DEVICE_NOT_FOUND)",
        409: "ILLEGAL_TRANSITION, DUPLICATE_CODE or IDEMPOTENCY_CONFLICT",
        422: "VALIDATION_ERROR, CODE_RULE_VIOLATION, PERSONAL_DATA_NOT_ALLOWED, CONTRACT_REJECTED, ...",
        503: "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE",
    }.items()
}


def _parse_floats(name: str, raw: str, count: int) -> list[float]:
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if len(values) != count or any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise ApiError(422, "VALIDATION_ERROR", f"{name} takes {count} comma-separated numbers", field=name)
    return values


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """`minLon,minLat,maxLon,maxLat` in degrees, ordered and in range (422 at field `bbox` otherwise)."""
    min_lon, min_lat, max_lon, max_lat = _parse_floats("bbox", raw, 4)
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ApiError(422, "VALIDATION_ERROR", "bbox must be minLon,minLat,maxLon,maxLat in range", field="bbox")
    return min_lon, min_lat, max_lon, max_lat


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Register one device or a batch",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def register_devices(
    body: DevicesCreateBody,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """File devices on-chain for the caller's org: one device object, or `{"devices": [...]}` (1..500, all or none).

    Each code is checked against its type's code rule (GET /v1/code-rules) before the call is simulated; the
    answer is an operation to follow until `confirmed`.
    """
    started = time.time()
    batch = isinstance(body, DeviceBatchCreate)
    devices = body.devices if isinstance(body, DeviceBatchCreate) else [body]

    def at(i: int, name: str) -> str:
        return f"devices[{i}].{name}" if batch else name

    first_seen: dict[str, int] = {}
    for i, device in enumerate(devices):
        if device.code in first_seen:
            raise ApiError(
                422,
                "DUPLICATE_CODE_IN_REQUEST",
                f"code {device.code} appears twice in the request",
                field=at(i, "code"),
                first=at(first_seen[device.code], "code"),
            )
        first_seen[device.code] = i
    rules = crud.code_rules_by_type(session, [d.type for d in devices])
    for i, device in enumerate(devices):
        rule = rules.get(device.type)
        if rule is None:
            raise ApiError(
                422,
                "UNKNOWN_TYPE",
                f"no code rule for device type {device.type!r}; see GET /v1/code-rules",
                field=at(i, "type"),
            )
        why = code_rule_violation(device.code, rule.prefix, rule.length, rule.charset)
        if why is not None:
            public = crud.code_rule_public(rule)
            raise ApiError(
                422,
                "CODE_RULE_VIOLATION",
                f"code {device.code!r} breaks the rule of {rule.type_name}: {why} (e.g. {public.example})",
                field=at(i, "code"),
                rule=public.model_dump(),
            )
    inputs = [crud.device_input(d, rules[d.type].type_id) for d in devices]
    function, args = ("registerDevices", [inputs]) if batch else ("registerDevice", [inputs[0]])
    paths = {d.code: (f"devices[{i}]" if batch else "") for i, d in enumerate(devices)}
    try:
        op = enqueue(gateway, principal, CONTRACT, function, args, idempotency_key, paths)
    except ApiError as exc:
        revert = exc.extra.get("contract_error", {})
        if exc.field is None and revert.get("name") == "DeviceRegistryBadTime":
            i = next((i for i, d in enumerate(inputs) if d["builtAt"] == revert["args"].get("time")), 0)
            exc.field = at(i, "built_at")
            exc.message = "built_at is later than the chain's latest block time"
        raise
    return accepted(op, response, started)


@router.get("", summary="List devices", response_model=DevicesPublic, responses=_ERRORS)  # type: ignore[arg-type]
async def list_devices(
    request: Request,
    _: ReaderDep,
    page: PageDep,
    type: Annotated[str | None, Query(description="type name, e.g. camera.road")] = None,
    owner: Annotated[str | None, Query(description="owner org code, e.g. BJ-PSB")] = None,
    status: Annotated[DeviceStatus | None, Query()] = None,
    district: Annotated[int | None, Query(ge=100_000, le=999_999, description="6-digit division code")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (degrees)")] = None,
    near: Annotated[str | None, Query(description="lat,lon,radius_m: nearest first, with distance_m")] = None,
) -> Response:
    """Devices of the mirror, by code (or by distance with `near`), `{"data": [...], "count": total}`."""
    box = parse_bbox(bbox) if bbox is not None else None
    point = None
    if near is not None:
        lat, lon, radius = _parse_floats("near", near, 3)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius <= MAX_NEAR_RADIUS_M):
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                f"near must be lat,lon,radius_m with 0 < radius_m <= {MAX_NEAR_RADIUS_M:.0f}",
                field="near",
            )
        point = (lat, lon, radius)
    filters = crud.DeviceFilter(type=type, owner=owner, status=status, district=district, bbox=box, near=point)
    with read_connection(request) as reader:
        data, count = crud.read_devices(reader, filters, page.limit, page.offset)
    return json_response({"data": data, "count": count})


@router.get("/{code}", summary="One device", response_model=DevicePublic, responses=_ERRORS)  # type: ignore[arg-type]
async def get_device(code: CodePath, request: Request, _: ReaderDep) -> Response:
    with read_connection(request) as reader:
        device = crud.read_device(reader, code)
    if device is None:
        raise ApiError(404, "DEVICE_NOT_FOUND", f"device {code} is not registered (or not indexed yet)", field="code")
    return json_response(device)


@router.get("/{code}/history", summary="A device's on-chain events", responses=_ERRORS)  # type: ignore[arg-type]
def device_history(code: CodePath, session: SessionDep, _: PrincipalDep, page: PageDep) -> DeviceEventsPublic:
    """Every DeviceRegistry event about the device in chain order, with tx hash, block and decoded arguments."""
    data, count = crud.list_device_events(session, code, page.limit, page.offset)
    if count == 0 and crud.device_owner(session, code) is None:
        raise ApiError(404, "DEVICE_NOT_FOUND", f"device {code} is not registered (or not indexed yet)", field="code")
    return DeviceEventsPublic(data=data, count=count)


@router.patch(
    "/{code}", status_code=status.HTTP_202_ACCEPTED, summary="Update location or attributes", responses=_ERRORS
)  # type: ignore[arg-type]
def update_device(
    code: CodePath,
    body: DeviceUpdate,
    principal: RegistrarDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """New district, location and/or attributes (attributes are replaced as a whole); the rest keeps its value."""
    started = time.time()
    current = crud.get_device(session, code)
    if current is None:
        raise ApiError(404, "DEVICE_NOT_FOUND", f"device {code} is not registered (or not indexed yet)", field="code")
    location = body.location or current.location
    args = [
        code,
        body.district if body.district is not None else current.district,
        to_micro_degrees(location.lat),
        to_micro_degrees(location.lon),
        canonical_json(body.attributes if body.attributes is not None else current.attributes),
    ]
    op = enqueue(gateway, principal, CONTRACT, "updateDevice", args, idempotency_key)
    return accepted(op, response, started)


@router.post(
    "/{code}/lifecycle",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Move a device through its life cycle",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def change_lifecycle(
    code: CodePath,
    body: LifecycleChange,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """activate (planned->active), suspend, resume, upgrade (in place), replace (by `replaced_by`), retire.

    An illegal move answers 409 ILLEGAL_TRANSITION with the contract's DeviceRegistryIllegalTransition.
    """
    started = time.time()
    args = [code, LIFECYCLE_ACTIONS.index(body.action), body.replaced_by or "", body.note]
    op = enqueue(gateway, principal, CONTRACT, "changeLifecycle", args, idempotency_key)
    return accepted(op, response, started)


@router.post(
    "/{code}/inspections",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Record an inspection",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def record_inspection(
    code: CodePath,
    body: InspectionCreate,
    principal: RegistrarDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """A periodic inspection (巡检) of an active or suspended device: result, time, report hash, note."""
    started = time.time()
    args = [
        code,
        INSPECTION_RESULTS.index(body.result),
        to_unix(body.inspected_at),
        body.report_hash or NO_REPORT,
        body.note,
    ]
    try:
        op = enqueue(gateway, principal, CONTRACT, "recordInspection", args, idempotency_key)
    except ApiError as exc:
        if exc.extra.get("contract_error", {}).get("name") == "DeviceRegistryBadTime":
            exc.field = "inspected_at"
            exc.message = "inspected_at is in the future or before the device's previous inspection"
        raise
    return accepted(op, response, started)
