"""Reads of the joint-review mirror (联审) and the contract arguments of review writes.

The review view puts next to each planned device the existing devices of the same type within a radius (the
device near-query of `crud.list_devices`, nearest first) and the carriers with a spare slot within it
(`crud_carriers.list_carriers`). The approval re-sends the planned devices exactly as the mirror holds them from
the ProjectFiled event, which the contract checks against the filed hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from indexer.models import CodeRule, Device, Member, Project, ProjectDevice, ReviewLead
from registry_api import crud, crud_carriers
from registry_api.crud_algorithms import _outputs as json_object  # JSON text as an object, whatever it holds
from registry_api.crud_catalog import org_codes
from registry_api.encoding import from_micro_degrees, from_unix
from registry_api.schemas.devices import LocationPublic
from registry_api.schemas.reviews import (
    REVIEW_DOMAINS,
    NearbyCarrierPublic,
    NearbyDevicePublic,
    PlannedDevicePublic,
    ReviewCreate,
    ReviewDetailPublic,
    ReviewPublic,
)

__all__ = [
    "ReviewFilter",
    "codes_in_open_projects",
    "codes_on_ledger",
    "file_args",
    "filed_devices",
    "get_project",
    "list_reviews",
    "review_detail",
]

PLANNED = 1  # IDeviceRegistry.Status
NEARBY_DEVICES_SHOWN = 20
NEARBY_DEVICES_FETCHED = 1_000  # same-type devices read per planned device (the count is exact up to this many)
NEARBY_CARRIERS_SHOWN = 10
GONE = ("retired", "replaced")  # statuses that no longer count as an existing device


def file_args(body: ReviewCreate, type_ids: dict[str, int]) -> list[Any]:
    """ReviewBoard.file's arguments: domain index, title, the planned DeviceInputs (JSON form)."""
    devices = [crud.device_input(d, type_ids[d.type]) for d in body.devices]
    return [REVIEW_DOMAINS.index(body.domain), body.title, devices]


def codes_on_ledger(session: Session, codes: Sequence[str]) -> set[str]:
    """Which of `codes` the mirrored ledger already holds."""
    return set(session.exec(select(Device.code).where(col(Device.code).in_(sorted(set(codes))))).all())


def codes_in_open_projects(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """Which of `codes` a filed (undecided) project plans already: code -> project id."""
    rows = session.exec(
        select(ProjectDevice.code, ProjectDevice.project_id)
        .join(Project, col(Project.project_id) == col(ProjectDevice.project_id))
        .where(col(ProjectDevice.code).in_(sorted(set(codes))), Project.status == "filed")
    ).all()
    return {code: int(project_id) for code, project_id in rows}


def get_project(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id)


def _planned_rows(session: Session, project_id: int) -> list[ProjectDevice]:
    return list(
        session.exec(
            select(ProjectDevice).where(ProjectDevice.project_id == project_id).order_by(col(ProjectDevice.position))
        ).all()
    )


def filed_devices(session: Session, project_id: int) -> list[dict[str, Any]]:
    """The project's DeviceInputs exactly as filed (what ReviewBoard.approve must re-send), in filing order."""
    return [
        {
            "code": d.code,
            "typeId": d.type_id,
            "status": PLANNED,
            "district": d.district,
            "lat": d.lat_e6,
            "lon": d.lon_e6,
            "builtAt": d.built_at,
            "attributes": d.attributes,
        }
        for d in _planned_rows(session, project_id)
    ]


# ---------------------------------------------------------------- API reads


@dataclass(frozen=True)
class ReviewFilter:
    """Filters of GET /v1/reviews; `applicant` is an org code."""

    status: str | None = None
    domain: str | None = None
    applicant: str | None = None


def _leads(session: Session) -> dict[str, int]:
    return {r.domain: r.org_id for r in session.exec(select(ReviewLead)).all()}


def _public(row: Project, orgs: dict[int, str], leads: dict[str, int]) -> ReviewPublic:
    lead = leads.get(row.domain)
    return ReviewPublic(
        id=row.project_id,
        domain=row.domain,
        title=row.title,
        status=row.status,
        applicant_org=orgs.get(row.applicant_org_id),
        applicant=row.applicant,
        lead_org=orgs.get(lead) if lead else None,
        reviewer_org=orgs.get(row.reviewer_org_id) if row.reviewer_org_id is not None else None,
        reviewer=row.reviewer,
        reason=row.reason,
        device_count=row.device_count,
        devices_hash=row.devices_hash,
        filed_at=from_unix(row.filed_at),
        closed_at=from_unix(row.closed_at) if row.closed_at is not None else None,
        tx_hash=row.filed_tx_hash,
        block_number=row.filed_block,
        closed_tx_hash=row.closed_tx_hash,
        closed_block=row.closed_block,
    )


def _org_ids(rows: Sequence[Project], leads: dict[str, int]) -> set[int]:
    ids = {r.applicant_org_id for r in rows} | set(leads.values())
    return ids | {r.reviewer_org_id for r in rows if r.reviewer_org_id is not None}


def _where(query: Any, f: ReviewFilter) -> Any:
    if f.status is not None:
        query = query.where(Project.status == f.status)
    if f.domain is not None:
        query = query.where(Project.domain == f.domain)
    if f.applicant is not None:
        org_id = select(Member.org_id).where(Member.code == f.applicant).scalar_subquery()
        query = query.where(col(Project.applicant_org_id) == org_id)
    return query


def list_reviews(session: Session, f: ReviewFilter, limit: int, offset: int) -> tuple[list[ReviewPublic], int]:
    """One page of projects matching `f`, by id, and how many match in all."""
    total = session.exec(_where(select(func.count()).select_from(Project), f)).one()
    rows = session.exec(_where(select(Project), f).order_by(col(Project.project_id)).offset(offset).limit(limit)).all()
    leads = _leads(session)
    orgs = org_codes(session, _org_ids(rows, leads))
    return [_public(r, orgs, leads) for r in rows], int(total)


def _nearby_devices(
    session: Session, planned: ProjectDevice, type_name: str, radius_m: float, own_codes: set[str]
) -> tuple[list[NearbyDevicePublic], int]:
    """Existing devices of `type_name` within `radius_m` of a planned device (not the project's own), nearest first."""
    near = (from_micro_degrees(planned.lat_e6), from_micro_degrees(planned.lon_e6), radius_m)
    found, _ = crud.list_devices(session, crud.DeviceFilter(type=type_name, near=near), NEARBY_DEVICES_FETCHED, 0)
    existing = [d for d in found if d.code not in own_codes and d.status not in GONE]
    shown = [
        NearbyDevicePublic(
            code=d.code,
            type=d.type,
            owner_org=d.owner_org,
            status=d.status,
            location=d.location,
            distance_m=d.distance_m if d.distance_m is not None else 0.0,
        )
        for d in existing[:NEARBY_DEVICES_SHOWN]
    ]
    return shown, len(existing)


def _nearby_carriers(session: Session, planned: ProjectDevice, radius_m: float) -> list[NearbyCarrierPublic]:
    near = (from_micro_degrees(planned.lat_e6), from_micro_degrees(planned.lon_e6), radius_m)
    spare = crud_carriers.CarrierFilter(has_spare=True, near=near)
    found, _ = crud_carriers.list_carriers(session, spare, NEARBY_CARRIERS_SHOWN, 0)
    return [
        NearbyCarrierPublic(
            code=c.code,
            kind=c.kind,
            owner_org=c.owner_org,
            location=c.location,
            distance_m=c.distance_m if c.distance_m is not None else 0.0,
            slots_free=c.slots_free,
            ports_free=c.ports_free,
        )
        for c in found
    ]


def review_detail(session: Session, project_id: int, radius_m: float) -> ReviewDetailPublic | None:
    """The review view of a project (see the module docstring), or None if the mirror does not hold it."""
    row = get_project(session, project_id)
    if row is None:
        return None
    planned_rows = _planned_rows(session, project_id)
    own_codes = {d.code for d in planned_rows}
    type_names = dict(session.exec(select(CodeRule.type_id, CodeRule.type_name)).all())
    on_ledger = codes_on_ledger(session, list(own_codes))
    devices: list[PlannedDevicePublic] = []
    for d in planned_rows:
        type_name = type_names.get(d.type_id)
        nearby, count = _nearby_devices(session, d, type_name, radius_m, own_codes) if type_name else ([], 0)
        devices.append(
            PlannedDevicePublic(
                position=d.position,
                code=d.code,
                type=type_name,
                type_id=d.type_id,
                district=d.district,
                location=LocationPublic(lat=from_micro_degrees(d.lat_e6), lon=from_micro_degrees(d.lon_e6)),
                built_at=from_unix(d.built_at),
                attributes=json_object(d.attributes),
                attributes_hash=d.attributes_hash,
                carrier=d.carrier,
                on_ledger=d.code in on_ledger,
                nearby_devices=nearby,
                nearby_devices_count=count,
                nearby_carriers=_nearby_carriers(session, d, radius_m),
            )
        )
    leads = _leads(session)
    orgs = org_codes(session, _org_ids([row], leads))
    return ReviewDetailPublic(
        **_public(row, orgs, leads).model_dump(),
        radius_m=radius_m,
        devices_with_neighbours=sum(1 for d in devices if d.nearby_devices_count > 0),
        devices=devices,
    )
