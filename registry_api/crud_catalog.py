"""Reads of the catalog mirror (entries, versions, lineage, search with facets) and the contract's EntryInput.

Catalog entries are visible to every member; drafts only to their owner org.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, or_, text
from sqlmodel import Session, col, select

from indexer.models import CatalogEntry, CatalogEntryVersion, CatalogLineage, CodeRule, Device, Member
from registry_api import search
from registry_api.encoding import canonical_json, from_unix
from registry_api.schemas.catalog import (
    FORM_BITS,
    SHARE_CONDITIONS,
    CatalogEntryBase,
    CatalogEntryPublic,
    CatalogFacets,
    CatalogVersionPublic,
    FacetCount,
    LineagePublic,
    LineageRef,
)

__all__ = [
    "CatalogFilter",
    "entry_input",
    "get_entry",
    "lineage",
    "list_entries",
    "list_versions",
    "org_codes",
]


def org_codes(session: Session, org_ids: set[int] | None = None) -> dict[int, str]:
    """Member org ids to codes (all, or those of `org_ids`)."""
    query = select(Member.org_id, Member.code)
    if org_ids is not None:
        if not org_ids:
            return {}
        query = query.where(col(Member.org_id).in_(sorted(org_ids)))
    return {int(org_id): code for org_id, code in session.exec(query).all()}


def entry_input(body: CatalogEntryBase) -> dict[str, Any]:
    """The contract's EntryInput struct (JSON form) of an entry as a client sends it."""
    return {
        "title": body.title,
        "classification": body.classification,
        "grade": body.grade,
        "shareCondition": SHARE_CONDITIONS.index(body.share_condition),
        "forms": sum(FORM_BITS[f] for f in body.forms),
        "schema": canonical_json(body.schema_),
        "deviceCodes": list(body.device_codes),
        "upstream": list(body.upstream),
    }


def _json(value: str, default: Any) -> Any:
    try:
        return json.loads(value) if value else default
    except ValueError:
        return default


def _schema(value: str) -> dict[str, Any]:
    parsed = _json(value, {})
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _entry_public(entry: CatalogEntry, owner: str | None) -> CatalogEntryPublic:
    return CatalogEntryPublic(
        id=entry.entry_id,
        owner_org=owner,
        title=entry.title,
        classification=entry.classification,
        grade=entry.grade,
        share_condition=entry.share_condition,
        forms=_json(entry.forms, []),
        schema_=_schema(entry.schema_),
        schema_hash=entry.schema_hash,
        device_codes=_json(entry.device_codes, []),
        upstream=[int(u) for u in _json(entry.upstream, [])],
        status=entry.status,
        version=f"{entry.major}.{entry.minor}",
        version_hash=entry.version_hash,
        tx_hash=entry.created_tx_hash,
        block_number=entry.created_block,
        updated_tx_hash=entry.updated_tx_hash,
        updated_block=entry.updated_block,
    )


@dataclass(frozen=True)
class CatalogFilter:
    """Filters of GET /v1/catalog; `viewer_org_id` sees its own drafts."""

    viewer_org_id: int | None
    q: str | None = None
    classification: str | None = None
    grade: int | None = None
    owner: str | None = None
    share_condition: str | None = None
    form: str | None = None
    status: str | None = None
    device: str | None = None


def _where(query: Any, f: CatalogFilter, engine: Engine) -> Any:
    visible = col(CatalogEntry.status) != "draft"
    if f.viewer_org_id is not None:
        visible = or_(visible, col(CatalogEntry.owner_org_id) == f.viewer_org_id)
    query = query.where(visible)
    if f.q:
        clause = search.match_clause(engine, f.q)
        if clause is not None:
            sql, params = clause
            query = query.where(text(sql).bindparams(**params))
    if f.classification is not None:  # a classification and everything below it ("城市脉搏" finds "城市脉搏/供水管网")
        query = query.where(
            or_(
                col(CatalogEntry.classification) == f.classification,
                col(CatalogEntry.classification).startswith(f.classification.rstrip("/") + "/", autoescape=True),
            )
        )
    if f.grade is not None:
        query = query.where(CatalogEntry.grade == f.grade)
    if f.owner is not None:
        org_id = select(Member.org_id).where(Member.code == f.owner).scalar_subquery()
        query = query.where(col(CatalogEntry.owner_org_id) == org_id)
    if f.share_condition is not None:
        query = query.where(CatalogEntry.share_condition == f.share_condition)
    if f.form is not None:
        query = query.where(col(CatalogEntry.forms_mask).op("&")(FORM_BITS[f.form]) != 0)
    if f.status is not None:
        query = query.where(CatalogEntry.status == f.status)
    if f.device is not None:
        ids = select(CatalogLineage.entry_id).where(CatalogLineage.kind == "device", CatalogLineage.ref == f.device)
        query = query.where(col(CatalogEntry.entry_id).in_(ids))
    return query


def _facets(session: Session, f: CatalogFilter, engine: Engine, owners: dict[int, str]) -> CatalogFacets:
    def grouped(column: Any) -> list[tuple[Any, int]]:
        query = _where(select(column, func.count()).select_from(CatalogEntry), f, engine).group_by(column)
        rows = [(value, int(n)) for value, n in session.exec(query).all()]
        return sorted(rows, key=lambda r: (-r[1], str(r[0])))

    form_counts = []
    for name, bit in FORM_BITS.items():
        query = _where(select(func.count()).select_from(CatalogEntry), f, engine).where(
            col(CatalogEntry.forms_mask).op("&")(bit) != 0
        )
        n = int(session.exec(query).one())
        if n:
            form_counts.append(FacetCount(value=name, count=n))
    return CatalogFacets(
        classification=[FacetCount(value=str(v), count=n) for v, n in grouped(CatalogEntry.classification)],
        grade=[FacetCount(value=str(v), count=n) for v, n in grouped(CatalogEntry.grade)],
        owner=[FacetCount(value=owners.get(int(v), str(v)), count=n) for v, n in grouped(CatalogEntry.owner_org_id)],
        share_condition=[FacetCount(value=str(v), count=n) for v, n in grouped(CatalogEntry.share_condition)],
        form=sorted(form_counts, key=lambda c: -c.count),
    )


def list_entries(
    session: Session, engine: Engine, f: CatalogFilter, limit: int, offset: int
) -> tuple[list[CatalogEntryPublic], int, CatalogFacets]:
    """One page of entries matching `f` (by id), how many match in all, and the facets of all that match."""
    if f.q:
        search.refresh_index(engine)
    owners = org_codes(session)
    total = session.exec(_where(select(func.count()).select_from(CatalogEntry), f, engine)).one()
    rows = session.exec(
        _where(select(CatalogEntry), f, engine).order_by(col(CatalogEntry.entry_id)).offset(offset).limit(limit)
    ).all()
    data = [_entry_public(e, owners.get(e.owner_org_id)) for e in rows]
    return data, int(total), _facets(session, f, engine, owners)


def get_entry(session: Session, entry_id: int, viewer_org_id: int | None) -> CatalogEntryPublic | None:
    """An entry of the mirror, or None if there is none (or it is another org's draft)."""
    entry = session.get(CatalogEntry, entry_id)
    if entry is None or (entry.status == "draft" and entry.owner_org_id != viewer_org_id):
        return None
    return _entry_public(entry, org_codes(session, {entry.owner_org_id}).get(entry.owner_org_id))


def list_versions(session: Session, entry_id: int, limit: int, offset: int) -> tuple[list[CatalogVersionPublic], int]:
    """Every version of an entry, oldest first, each with its full record and transaction."""
    where = CatalogEntryVersion.entry_id == entry_id
    total = session.exec(select(func.count()).select_from(CatalogEntryVersion).where(where)).one()
    rows = session.exec(
        select(CatalogEntryVersion)
        .where(where)
        .order_by(col(CatalogEntryVersion.block_number), col(CatalogEntryVersion.log_index))
        .offset(offset)
        .limit(limit)
    ).all()
    data = [
        CatalogVersionPublic(
            version=f"{v.major}.{v.minor}",
            major=v.major,
            minor=v.minor,
            title=v.title,
            classification=v.classification,
            grade=v.grade,
            share_condition=v.share_condition,
            forms=_json(v.forms, []),
            schema_=_schema(v.schema_),
            schema_hash=v.schema_hash,
            device_codes=_json(v.device_codes, []),
            upstream=[int(u) for u in _json(v.upstream, [])],
            version_hash=v.version_hash,
            tx_hash=v.tx_hash,
            block_number=v.block_number,
            time=from_unix(v.block_time),
        )
        for v in rows
    ]
    return data, int(total)


def _entry_refs(session: Session, ids: list[int], viewer_org_id: int | None) -> list[LineageRef]:
    if not ids:
        return []
    entries = {e.entry_id: e for e in session.exec(select(CatalogEntry).where(col(CatalogEntry.entry_id).in_(ids)))}
    owners = org_codes(session, {e.owner_org_id for e in entries.values()})
    refs = []
    for entry_id in ids:
        e = entries.get(entry_id)
        if e is not None and e.status == "draft" and e.owner_org_id != viewer_org_id:
            continue
        refs.append(
            LineageRef(
                kind="entry",
                ref=str(entry_id),
                title=e.title if e else None,
                owner_org=owners.get(e.owner_org_id) if e else None,
                status=e.status if e else None,
            )
        )
    return refs


def lineage(session: Session, entry: CatalogEntryPublic, viewer_org_id: int | None) -> LineagePublic:
    """The entry's devices and upstream entries (current version) and the entries whose lineage names it."""
    devices: list[LineageRef] = []
    if entry.device_codes:
        rows = session.exec(
            select(Device, CodeRule.type_name, Member.code)
            .outerjoin(CodeRule, col(CodeRule.type_id) == col(Device.type_id))
            .outerjoin(Member, col(Member.org_id) == col(Device.owner_org_id))
            .where(col(Device.code).in_(entry.device_codes))
        ).all()
        found = {d.code: (d, type_name, owner) for d, type_name, owner in rows}
        for code in entry.device_codes:
            hit = found.get(code)
            devices.append(
                LineageRef(
                    kind="device",
                    ref=code,
                    title=hit[1] if hit else None,
                    owner_org=hit[2] if hit else None,
                    status=hit[0].status if hit else None,
                )
            )
    downstream_ids = sorted(
        int(i)
        for i in session.exec(
            select(CatalogLineage.entry_id).where(CatalogLineage.kind == "entry", CatalogLineage.ref == str(entry.id))
        ).all()
    )
    return LineagePublic(
        id=entry.id,
        devices=devices,
        upstream=_entry_refs(session, entry.upstream, viewer_org_id),
        downstream=_entry_refs(session, downstream_ids, viewer_org_id),
    )
