"""Reads of the mirror for the routes, and the translation of API device objects into contract arguments.

Reads never touch the chain: everything here is SQL over the indexer's tables.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, literal, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from chain_gateway.outbox import Operation
from indexer import spatial
from indexer.models import Account, AccountRole, CodeRule, Device, DeviceEvent, Member
from indexer.spatial import EARTH_RADIUS_M, haversine_m
from registry_api.encoding import (
    canonical_json,
    charset_names,
    code_example,
    code_pattern,
    from_micro_degrees,
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


# The columns of a device as the API shows it: read as plain rows (no ORM objects) and turned into dicts.
_DEVICE_COLUMNS = (
    col(Device.code),
    col(CodeRule.type_name),
    col(Device.type_id),
    col(Member.code).label("owner_org"),
    col(Device.district),
    col(Device.lat_e6),
    col(Device.lon_e6),
    col(Device.built_at),
    col(Device.status),
    col(Device.attributes),
    col(Device.attributes_hash),
    col(Device.tx_hash),
    col(Device.block_number),
    col(Device.replaced_by),
    col(Device.last_inspected_at),
    col(Device.updated_block),
)


def device_dict(row: Sequence[Any], distance_m: float | None = None) -> dict[str, Any]:
    """A device row of `_device_select` as the JSON object of `DevicePublic` (same members, same order)."""
    (code, type_name, type_id, owner, district, lat_e6, lon_e6, built_at, status_, attributes, attributes_hash,
     tx_hash, block_number, replaced_by, last_inspected_at, updated_block) = row[:16]  # fmt: skip
    return {
        "code": code,
        "type": type_name,
        "type_id": type_id,
        "owner_org": owner,
        "district": district,
        "location": {"lat": from_micro_degrees(lat_e6), "lon": from_micro_degrees(lon_e6)},
        "built_at": from_unix(built_at),
        "status": status_,
        "attributes": json.loads(attributes) if attributes else {},
        "attributes_hash": attributes_hash,
        "tx_hash": tx_hash,
        "block_number": block_number,
        "replaced_by": replaced_by or None,
        "last_inspected_at": from_unix(last_inspected_at) if last_inspected_at else None,
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
    with engine.begin() as conn:
        for name, columns in _DEVICE_READ_INDEXES.items():
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON devices ({columns})"))


def _device_select() -> Any:
    return (
        sa_select(*_DEVICE_COLUMNS)
        .select_from(Device)
        .outerjoin(CodeRule, col(CodeRule.type_id) == col(Device.type_id))
        .outerjoin(Member, col(Member.org_id) == col(Device.owner_org_id))
    )


def _where(query: Any, f: DeviceFilter, dialect: str) -> tuple[Any, dict[str, Any]]:
    """`query` narrowed by the filters, and the values of the spatial conditions' named parameters.

    With a place filter the spatial index is the way in. SQLite's planner has no statistics and would take an
    equality index (type, owner, status, district) over the spatial one, then read every device of that type in the
    city; there the other filters are written so that no index serves them (`+ 0`, `|| ''`). PostgreSQL's planner
    chooses by its statistics.
    """
    params: dict[str, Any] = {}
    blind = (f.bbox is not None or f.near is not None) and dialect == "sqlite"

    def number(column: Any) -> Any:
        return column + 0 if blind else column

    if f.type is not None:
        type_id = select(CodeRule.type_id).where(CodeRule.type_name == f.type).scalar_subquery()
        query = query.where(number(col(Device.type_id)) == type_id)
    if f.owner is not None:
        org_id = select(Member.org_id).where(Member.code == f.owner).scalar_subquery()
        query = query.where(number(col(Device.owner_org_id)) == org_id)
    if f.status is not None:
        query = query.where((col(Device.status).concat("") if blind else col(Device.status)) == f.status)
    if f.district is not None:
        query = query.where(number(col(Device.district)) == f.district)
    if f.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = (to_micro_degrees(v) for v in f.bbox)
        condition, values = spatial.box_condition("bbox", min_lat, max_lat, min_lon, max_lon)
        query = query.where(condition)
        params.update(values)
    if f.near is not None:
        condition, values = spatial.box_condition("near", *spatial.near_box(*f.near))
        distance = spatial.distance_m(dialect)
        query = query.where(condition, distance <= bindparam("near_radius"))
        params.update(values, near_radius=f.near[2], **spatial.distance_params(f.near[0], f.near[1]))
    return query, params


def read_devices(conn: Connection, f: DeviceFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of devices matching `f` (by code, or by distance with `near`) as JSON objects, and how many match.

    `near` is answered in SQL: the circle's bounding box through the spatial index, then the exact great-circle
    distance (`indexer.spatial.distance_m`) filters, counts, orders (nearest first, then by code) and pages. With a
    place filter the few matches are counted in the page's own statement (a window count); otherwise, and for a page
    past the end, by a count statement.
    """
    dialect = conn.dialect.name
    query, params = _where(_device_select(), f, dialect)
    counter, _ = _where(sa_select(func.count()).select_from(Device), f, dialect)
    if f.bbox is None and f.near is None:
        total = conn.execute(counter).scalar_one()
        rows = conn.execute(query.order_by(col(Device.code)).offset(offset).limit(limit)).all()
        return [device_dict(row) for row in rows], int(total)
    distance = spatial.distance_m(dialect) if f.near is not None else literal(None)
    order = (distance, col(Device.code)) if f.near is not None else (col(Device.code),)
    page = query.add_columns(distance.label("distance_m"), func.count().over().label("matches"))
    rows = conn.execute(page.order_by(*order).offset(offset).limit(limit), params).all()
    total = rows[0][-1] if rows else conn.execute(counter, params).scalar_one()
    found = [device_dict(row, None if row[16] is None else round(float(row[16]), 1)) for row in rows]
    return found, int(total)


_DEVICE_BY_CODE = _device_select().where(col(Device.code) == bindparam("code"))  # built once: the hottest read


def read_device(conn: Connection, code: str) -> dict[str, Any] | None:
    """One device as its JSON object, or None if the mirror does not hold it."""
    row = conn.execute(_DEVICE_BY_CODE, {"code": code}).first()
    return device_dict(row) if row else None


def list_devices(session: Session, f: DeviceFilter, limit: int, offset: int) -> tuple[list[DevicePublic], int]:
    """`read_devices` as models (for callers in Python rather than HTTP)."""
    data, total = read_devices(session.connection(), f, limit, offset)
    return [DevicePublic.model_validate(d) for d in data], total


def get_device(session: Session, code: str) -> DevicePublic | None:
    device = read_device(session.connection(), code)
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
