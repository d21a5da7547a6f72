"""Reads of the mirror for the routes, and the translation of API device objects into contract arguments.

Reads never touch the chain: everything here is SQL over the indexer's tables.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from chain_gateway.outbox import Operation
from indexer import spatial
from indexer.models import Account, AccountRole, CodeRule, Device, DeviceEvent, Member
from indexer.spatial import EARTH_RADIUS_M, haversine_m
from registry_api import device_sql
from registry_api.device_sql import Reader
from registry_api.encoding import (
    canonical_json,
    charset_names,
    code_example,
    code_pattern,
    from_unix,
    to_micro_degrees,
    to_unix,
)
from registry_api.errors import describe_revert
from registry_api.schemas.code_rules import CodeRulePublic
from registry_api.schemas.common import Links
from registry_api.schemas.devices import (
    DeviceCreate,
    DeviceEventPublic,
    DevicePublic,
)
from registry_api.schemas.members import AccountPublic, MemberPublic
from registry_api.schemas.operations import OperationError, OperationPublic

__all__ = [
    "EARTH_RADIUS_M",
    "DeviceFilter",
    "code_rule_public",
    "code_rules_by_type",
    "create_device_read_indexes",
    "device_dict",
    "device_input",
    "get_device",
    "haversine_m",
    "iso_time",
    "list_code_rules",
    "list_device_events",
    "list_devices",
    "list_members",
    "operation_public",
    "read_device",
    "read_devices",
]

METRES_PER_DEGREE_LAT = 111_320.0  # approximate; exact circle boxes: indexer.spatial.near_box
STATUS_CODES = {"planned": 1, "active": 2}  # IDeviceRegistry.Status of a new device
SECONDS_PER_DAY = 86_400


# ---------------------------------------------------------------- devices


@dataclass(frozen=True)
class DeviceFilter:
    """Filters of GET /v1/devices; bbox is (min_lon, min_lat, max_lon, max_lat), near (lat, lon, radius_m)."""

    type: str | None = None
    owner: str | None = None
    status: str | None = None
    district: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float, float] | None = None


def _loads_attributes(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses and the standard library reads (NaN, huge integers)
        return json.loads(text)


@lru_cache(maxsize=16_384)
def _iso_day(days: int) -> str:
    return from_unix(days * SECONDS_PER_DAY)[:10]


def iso_time(seconds: int) -> str:
    """`encoding.from_unix`, equal for every value, in a fraction of its time: dates repeat, so each day's text
    is made once and the time of day is formatted from integers."""
    days, rest = divmod(seconds, SECONDS_PER_DAY)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return f"{_iso_day(days)}T{hours:02d}:{minutes:02d}:{secs:02d}Z"


def device_dict(row: Sequence[Any], distance_m: float | None = None) -> dict[str, Any]:
    """A device row (`device_sql.DEVICE_COLUMNS`) as the JSON object of `DevicePublic` (same members, same order)."""
    (code, type_name, type_id, owner, district, lat_e6, lon_e6, built_at, status_, attributes, attributes_hash,
     tx_hash, block_number, replaced_by, last_inspected_at, updated_block) = row[:16]  # fmt: skip
    return {
        "code": code,
        "type": type_name,
        "type_id": type_id,
        "owner_org": owner,
        "district": district,
        # v / 1e6 is already the double nearest v's 6-decimal value: from_micro_degrees' round() would keep it
        "location": {"lat": lat_e6 / 1e6, "lon": lon_e6 / 1e6},
        "built_at": iso_time(built_at),
        "status": status_,
        "attributes": _loads_attributes(attributes),
        "attributes_hash": attributes_hash,
        "tx_hash": tx_hash,
        "block_number": block_number,
        "replaced_by": replaced_by or None,
        "last_inspected_at": iso_time(last_inspected_at) if last_inspected_at else None,
        "updated_block": updated_block,
        "distance_m": distance_m,
    }


# The list's filters by district (every district-scoped list), each in code order: SQLite and PostgreSQL page
# and count from the index alone instead of sorting every device of the district.
_DEVICE_READ_INDEXES = {
    "devices_district_type_code": "district, type_id, code",
    "devices_district_owner_code": "district, owner_org_id, code",
    "devices_district_status_code": "district, status, code",
}


def create_device_read_indexes(engine: Engine) -> None:
    """The indexes of GET /v1/devices' district filters on the mirror (idempotent; the API makes them at start)."""
    for name, columns in _DEVICE_READ_INDEXES.items():
        spatial.create_index_if_missing(engine, name, f"devices ({columns})")


def read_devices(reader: Reader, f: DeviceFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of devices matching `f` (by code, or by distance with `near`) as JSON objects, and how many match.

    `near` is answered in SQL: the circle's bounding box through the spatial index, then the exact great-circle
    distance (`indexer.spatial.distance_m`) filters, counts, orders (nearest first, then by code) and pages. With a
    place filter the few matches are counted in the page's own statement (a window count). Otherwise a page that
    is neither empty nor full tells the count itself; the rest is counted by a count statement (from the district
    indexes when a district is given).
    """
    values: dict[str, Any] = {"limit": limit, "offset": offset}
    for name in ("type", "owner", "status", "district"):
        value = getattr(f, name)
        if value is not None:
            values[name] = value
    bbox_cells = near_cells = None
    if f.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = (to_micro_degrees(v) for v in f.bbox)
        bbox_cells, box = device_sql.box_values("bbox", min_lat, max_lat, min_lon, max_lon)
        values.update(box)
    if f.near is not None:
        near_cells, box = device_sql.box_values("near", *spatial.near_box(*f.near))
        values.update(box, near_radius=f.near[2], **spatial.distance_params(f.near[0], f.near[1]))
    shape = device_sql.ListShape(
        type=f.type is not None,
        owner=f.owner is not None,
        status=f.status is not None,
        district=f.district is not None,
        bbox_cells=bbox_cells,
        near_cells=near_cells,
    )
    rows = reader.rows(device_sql.list_statement(shape, reader.dialect), values)
    placed = bbox_cells is not None or near_cells is not None
    if placed and rows:
        total = rows[0][-1]
    elif rows and len(rows) < limit or not rows and offset == 0:
        total = offset + len(rows)
    else:
        counter = device_sql.list_statement(replace(shape, count=True), reader.dialect)
        total = reader.rows(counter, values)[0][0]
    if placed:
        return [device_dict(row, None if row[16] is None else round(float(row[16]), 1)) for row in rows], int(total)
    return [device_dict(row) for row in rows], int(total)


def read_device(reader: Reader, code: str) -> dict[str, Any] | None:
    """One device as its JSON object, or None if the mirror does not hold it."""
    rows = reader.rows(device_sql.by_code(reader.dialect), {"code": code}, limit=1)
    return device_dict(rows[0]) if rows else None


def list_devices(session: Session, f: DeviceFilter, limit: int, offset: int) -> tuple[list[DevicePublic], int]:
    """`read_devices` as models (for callers in Python rather than HTTP)."""
    data, total = read_devices(Reader.of(session.connection()), f, limit, offset)
    return [DevicePublic.model_validate(d) for d in data], total


def get_device(session: Session, code: str) -> DevicePublic | None:
    device = read_device(Reader.of(session.connection()), code)
    return DevicePublic.model_validate(device) if device else None


def device_owner(session: Session, code: str) -> int | None:
    """The owner org id of a mirrored device, or None if the mirror does not hold it."""
    device = session.get(Device, code)
    return device.owner_org_id if device else None


def list_device_events(session: Session, code: str, limit: int, offset: int) -> tuple[list[DeviceEventPublic], int]:
    """A device's on-chain events in chain order."""
    total = session.exec(select(func.count()).select_from(DeviceEvent).where(DeviceEvent.code == code)).one()
    rows = session.exec(
        select(DeviceEvent)
        .where(DeviceEvent.code == code)
        .order_by(col(DeviceEvent.block_number), col(DeviceEvent.log_index))
        .offset(offset)
        .limit(limit)
    ).all()
    events = [
        DeviceEventPublic(
            event=e.event,
            tx_hash=e.tx_hash,
            block_number=e.block_number,
            block_hash=e.block_hash,
            log_index=e.log_index,
            time=from_unix(e.block_time),
            sender=e.sender,
            args=json.loads(e.data),
        )
        for e in rows
    ]
    return events, int(total)


def device_input(device: DeviceCreate, type_id: int) -> dict[str, Any]:
    """The contract's DeviceInput struct (JSON form) for a device as a client sends it."""
    return {
        "code": device.code,
        "typeId": type_id,
        "status": STATUS_CODES[device.status],
        "district": device.district,
        "lat": to_micro_degrees(device.location.lat),
        "lon": to_micro_degrees(device.location.lon),
        "builtAt": to_unix(device.built_at),
        "attributes": canonical_json(device.attributes),
    }


# ---------------------------------------------------------------- code rules


def code_rule_public(rule: CodeRule) -> CodeRulePublic:
    return CodeRulePublic(
        type=rule.type_name,
        type_id=rule.type_id,
        prefix=rule.prefix,
        length=rule.length,
        charset=charset_names(rule.charset),
        pattern=code_pattern(rule.prefix, rule.length, rule.charset),
        example=code_example(rule.prefix, rule.length, rule.charset),
    )


def code_rules_by_type(session: Session, names: Sequence[str]) -> dict[str, CodeRule]:
    rows = session.exec(select(CodeRule).where(col(CodeRule.type_name).in_(sorted(set(names))))).all()
    return {rule.type_name: rule for rule in rows}


def list_code_rules(session: Session, limit: int, offset: int) -> tuple[list[CodeRulePublic], int]:
    total = session.exec(select(func.count()).select_from(CodeRule)).one()
    rows = session.exec(select(CodeRule).order_by(col(CodeRule.type_id)).offset(offset).limit(limit)).all()
    return [code_rule_public(rule) for rule in rows], int(total)


# ---------------------------------------------------------------- members


def _members_public(session: Session, members: Sequence[Member]) -> list[MemberPublic]:
    ids = [m.org_id for m in members]
    accounts = session.exec(
        select(Account).where(col(Account.org_id).in_(ids)).order_by(col(Account.block_number), col(Account.address))
    ).all()
    roles: dict[str, list[str]] = defaultdict(list)
    if accounts:
        for address, role in session.exec(
            select(AccountRole.address, AccountRole.role)
            .where(col(AccountRole.address).in_([a.address for a in accounts]))
            .order_by(col(AccountRole.role))
        ).all():
            roles[address].append(role)
    by_org: dict[int, list[AccountPublic]] = defaultdict(list)
    for account in accounts:
        by_org[account.org_id].append(AccountPublic(address=account.address, roles=roles[account.address]))
    return [
        MemberPublic(code=m.code, org_id=m.org_id, name=m.name, kind=m.kind, active=m.active, accounts=by_org[m.org_id])
        for m in members
    ]


def list_members(session: Session, limit: int, offset: int, code: str | None = None) -> tuple[list[MemberPublic], int]:
    query = select(Member)
    counter = select(func.count()).select_from(Member)
    if code is not None:
        query = query.where(Member.code == code)
        counter = counter.where(Member.code == code)
    total = session.exec(counter).one()
    members = session.exec(query.order_by(col(Member.org_id)).offset(offset).limit(limit)).all()
    return _members_public(session, members), int(total)


# ---------------------------------------------------------------- operations


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def operation_public(op: Operation) -> OperationPublic:
    error = None
    if op.error_code is not None:
        args = op.error_args or {}
        info = describe_revert(op.error_code, args)
        if op.error_code == "GatewayTxRejected":
            code, message = "TX_REJECTED", f"the node refused the transaction: {args.get('message', '')}"
        else:
            code, message = info.code, info.message
        error = OperationError(code=code, name=op.error_code, args=args, message=message)
    return OperationPublic(
        id=op.id,
        status=op.status,
        contract=op.contract,
        function=op.function,
        org_code=op.org_code,
        account=op.account,
        idempotency_key=op.idempotency_key,
        nonce=op.nonce,
        tx_hash=op.tx_hash,
        block_number=op.block_number,
        block_hash=op.block_hash,
        error=error,
        created_at=_iso(op.created_at),
        updated_at=_iso(op.updated_at),
        links=Links(operation=f"/v1/operations/{op.id}"),
    )
