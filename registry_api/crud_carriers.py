"""Reads of the carrier mirror (感知载体) and the contract arguments of carrier writes.

Near queries take the carriers in a bounding box of the circle (on the indexed micro-degree columns) and keep
those whose great-circle distance (`crud.haversine_m`) is within the radius, nearest first. Reuse requests are
seen only by their requester org and the carrier's owner org.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from indexer.handlers import CARRIER_KINDS
from indexer.models import Carrier, CarrierReuseRequest, Member
from registry_api.crud import EARTH_RADIUS_M, haversine_m
from registry_api.crud_algorithms import _outputs as json_object  # JSON text as an object, whatever it holds
from registry_api.crud_catalog import org_codes
from registry_api.encoding import canonical_json, from_micro_degrees, from_unix, to_micro_degrees
from registry_api.schemas.carriers import (
    CarrierCreate,
    CarrierDetailPublic,
    CarrierPublic,
    ReuseRequestPublic,
)
from registry_api.schemas.devices import LocationPublic

__all__ = [
    "CarrierFilter",
    "ReuseFilter",
    "carrier_detail",
    "carrier_input",
    "get_carrier",
    "get_reuse_request",
    "list_carriers",
    "list_reuse_requests",
]

MAX_REQUESTS_SHOWN = 100  # reuse requests listed with a carrier


def carrier_input(body: CarrierCreate) -> dict[str, Any]:
    """The contract's CarrierInput struct (JSON form); attributes as canonical JSON, as the mirror keeps them."""
    return {
        "code": body.code,
        "kind": CARRIER_KINDS.index(body.kind),
        "district": body.district,
        "lat": to_micro_degrees(body.location.lat),
        "lon": to_micro_degrees(body.location.lon),
        "slots": body.slots,
        "ports": body.ports,
        "attributes": canonical_json(body.attributes),
    }


# ---------------------------------------------------------------- carriers


@dataclass(frozen=True)
class CarrierFilter:
    """Filters of GET /v1/carriers: owner org code, district, kind, a spare slot, near (lat, lon, radius_m)."""

    owner: str | None = None
    district: int | None = None
    kind: str | None = None
    has_spare: bool | None = None
    near: tuple[float, float, float] | None = None


def _public(row: Carrier, owner: str | None, distance_m: float | None = None) -> CarrierPublic:
    return CarrierPublic(
        code=row.code,
        kind=row.kind,
        owner_org=owner,
        district=row.district,
        location=LocationPublic(lat=from_micro_degrees(row.lat_e6), lon=from_micro_degrees(row.lon_e6)),
        slots=row.slots,
        slots_used=row.slots_used,
        slots_free=row.slots - row.slots_used,
        ports=row.ports,
        ports_used=row.ports_used,
        ports_free=row.ports - row.ports_used,
        attributes=json_object(row.attributes),
        attributes_hash=row.attributes_hash,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        updated_block=row.updated_block,
        distance_m=None if distance_m is None else round(distance_m, 1),
    )


def _where(query: Any, f: CarrierFilter) -> Any:
    if f.owner is not None:
        org_id = select(Member.org_id).where(Member.code == f.owner).scalar_subquery()
        query = query.where(col(Carrier.owner_org_id) == org_id)
    if f.district is not None:
        query = query.where(Carrier.district == f.district)
    if f.kind is not None:
        query = query.where(Carrier.kind == f.kind)
    if f.has_spare is not None:
        spare = col(Carrier.slots_used) < col(Carrier.slots)
        query = query.where(spare if f.has_spare else ~spare)
    if f.near is not None:
        lat, lon, radius_m = f.near
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)  # the box holds the circle: carriers are few, no index
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        query = query.where(
            col(Carrier.lat_e6).between(to_micro_degrees(lat - dlat), to_micro_degrees(lat + dlat)),
            col(Carrier.lon_e6).between(to_micro_degrees(lon - dlon), to_micro_degrees(lon + dlon)),
        )
    return query


def list_carriers(session: Session, f: CarrierFilter, limit: int, offset: int) -> tuple[list[CarrierPublic], int]:
    """One page of carriers matching `f` (by code, or nearest first with `near`) and how many match in all."""
    if f.near is None:
        total = session.exec(_where(select(func.count()).select_from(Carrier), f)).one()
        rows = session.exec(_where(select(Carrier), f).order_by(col(Carrier.code)).offset(offset).limit(limit)).all()
        owners = org_codes(session, {r.owner_org_id for r in rows})
        return [_public(r, owners.get(r.owner_org_id)) for r in rows], int(total)
    lat, lon, radius_m = f.near
    found: list[tuple[float, Carrier]] = []
    for row in session.exec(_where(select(Carrier), f)).all():
        distance = haversine_m(lat, lon, from_micro_degrees(row.lat_e6), from_micro_degrees(row.lon_e6))
        if distance <= radius_m:
            found.append((distance, row))
    found.sort(key=lambda item: (item[0], item[1].code))
    page = found[offset : offset + limit]
    owners = org_codes(session, {r.owner_org_id for _, r in page})
    return [_public(r, owners.get(r.owner_org_id), d) for d, r in page], len(found)


def get_carrier(session: Session, code: str) -> Carrier | None:
    return session.get(Carrier, code)


def carrier_detail(session: Session, code: str, viewer_org_id: int | None) -> CarrierDetailPublic | None:
    """A carrier with its reuse requests as `viewer_org_id` may see them (all for the owner), newest first."""
    row = get_carrier(session, code)
    if row is None:
        return None
    query = select(CarrierReuseRequest).where(CarrierReuseRequest.carrier_code == code)
    if viewer_org_id != row.owner_org_id:
        query = query.where(CarrierReuseRequest.requester_org_id == viewer_org_id)
    requests = session.exec(query.order_by(col(CarrierReuseRequest.request_id).desc()).limit(MAX_REQUESTS_SHOWN)).all()
    orgs = org_codes(session, {row.owner_org_id, *(r.requester_org_id for r in requests)})
    return CarrierDetailPublic(
        **_public(row, orgs.get(row.owner_org_id)).model_dump(),
        reuse_requests=[_request_public(r, orgs) for r in requests],
    )


# ---------------------------------------------------------------- reuse requests


@dataclass(frozen=True)
class ReuseFilter:
    """Filters of GET /v1/carrier-reuse-requests: the viewer's requests as requester, as owner, or both."""

    viewer_org_id: int
    role: str | None = None  # requester | owner | None (both)
    status: str | None = None
    carrier: str | None = None


def _request_public(row: CarrierReuseRequest, orgs: dict[int, str]) -> ReuseRequestPublic:
    return ReuseRequestPublic(
        id=row.request_id,
        carrier_code=row.carrier_code,
        requester_org=orgs.get(row.requester_org_id),
        owner_org=orgs.get(row.owner_org_id),
        requester=row.requester,
        slots=row.slots,
        ports=row.ports,
        purpose=row.purpose,
        status=row.status,
        reason=row.reason,
        decided_by=row.decided_by,
        requested_at=from_unix(row.requested_at),
        closed_at=from_unix(row.closed_at) if row.closed_at is not None else None,
        tx_hash=row.request_tx_hash,
        block_number=row.request_block,
        closed_tx_hash=row.closed_tx_hash,
        closed_block=row.closed_block,
    )


def _request_where(query: Any, f: ReuseFilter) -> Any:
    requester = CarrierReuseRequest.requester_org_id == f.viewer_org_id
    owner = CarrierReuseRequest.owner_org_id == f.viewer_org_id
    query = query.where({"requester": requester, "owner": owner}.get(f.role or "", or_(requester, owner)))
    if f.status is not None:
        query = query.where(CarrierReuseRequest.status == f.status)
    if f.carrier is not None:
        query = query.where(CarrierReuseRequest.carrier_code == f.carrier)
    return query


def list_reuse_requests(
    session: Session, f: ReuseFilter, limit: int, offset: int
) -> tuple[list[ReuseRequestPublic], int]:
    """One page of the reuse requests the viewer's org made or received, newest first, and how many in all."""
    total = session.exec(_request_where(select(func.count()).select_from(CarrierReuseRequest), f)).one()
    rows = session.exec(
        _request_where(select(CarrierReuseRequest), f)
        .order_by(col(CarrierReuseRequest.request_id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    orgs = org_codes(session, {o for r in rows for o in (r.requester_org_id, r.owner_org_id)})
    return [_request_public(r, orgs) for r in rows], int(total)


def get_reuse_request(session: Session, request_id: int, viewer_org_id: int | None) -> ReuseRequestPublic | None:
    """The reuse request if the viewer's org is its requester or the carrier's owner, else None."""
    row = session.get(CarrierReuseRequest, request_id)
    if row is None or viewer_org_id not in (row.requester_org_id, row.owner_org_id):
        return None
    return _request_public(row, org_codes(session, {row.requester_org_id, row.owner_org_id}))
