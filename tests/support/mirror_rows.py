"""Mirror rows written straight into SQL, for query tests and benchmarks that need many devices fast.

The rows have the shape the indexer writes (`indexer.handlers.device_registered`), but they do not come from a
chain: use them only where the test is about reading the mirror (spatial queries, statistics), never to test
the indexer or the audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Engine

from indexer.models import CodeRule, Device, Member
from indexer.store import Store, bulk_insert

__all__ = ["TYPES", "ORGS", "device_row", "insert_devices", "seed_reference_rows"]

TYPES = ((1, "camera.road", "BJ-CAMR-"), (2, "camera.checkpoint", "BJ-CAMK-"))
ORGS = ((1, "BJ-PSB", "公安局", "department"), (2, "BJ-CY", "朝阳区", "district"))
_ATTRIBUTES = json.dumps({"vendor": "hik", "model": "DS-2CD3T47G2"}, separators=(",", ":"))
_BATCH = 20_000  # rows per INSERT/COPY


def device_row(
    serial: int,
    lat_e6: int,
    lon_e6: int,
    *,
    type_id: int = 1,
    owner_org_id: int = 1,
    status: str = "active",
    district: int = 110105,
    block_number: int = 1,
    last_inspected_at: int | None = None,
) -> dict[str, Any]:
    """A `devices` row with code <type prefix><serial, 12 digits>."""
    prefix = {t: p for t, _, p in TYPES}[type_id]
    return {
        "code": f"{prefix}{serial:012d}",
        "type_id": type_id,
        "owner_org_id": owner_org_id,
        "status": status,
        "district": district,
        "lat_e6": lat_e6,
        "lon_e6": lon_e6,
        "built_at": 1_700_000_000,
        "attributes": _ATTRIBUTES,
        "attributes_hash": "0x" + "ab" * 32,
        "replaced_by": None,
        "last_inspected_at": last_inspected_at,
        "tx_hash": f"0x{block_number:064x}",
        "block_number": block_number,
        "updated_block": block_number,
        "updated_tx_hash": f"0x{block_number:064x}",
    }


def seed_reference_rows(engine: Engine) -> None:
    """The mirror's tables (with the spatial index), two device types and two member orgs."""
    Store(engine).create_tables()
    with engine.begin() as conn:
        bulk_insert(
            conn,
            CodeRule.__table__,  # type: ignore[attr-defined]
            [
                {"type_id": t, "type_name": name, "prefix": prefix, "length": 20, "charset": 1, "block_number": 1,
                 "tx_hash": "0x" + "00" * 32}
                for t, name, prefix in TYPES
            ],
        )  # fmt: skip
        bulk_insert(
            conn,
            Member.__table__,  # type: ignore[attr-defined]
            [
                {"org_id": org_id, "code": code, "name": name, "kind": kind, "active": True, "block_number": 1,
                 "tx_hash": "0x" + "00" * 32}
                for org_id, code, name, kind in ORGS
            ],
        )  # fmt: skip


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def insert_devices(engine: Engine, rows: Iterable[dict[str, Any]]) -> int:
    """Insert `devices` rows in batches (SQLite executemany, PostgreSQL COPY); returns how many."""
    count = 0
    for chunk in _chunks(rows):
        with engine.begin() as conn:
            bulk_insert(conn, Device.__table__, chunk)  # type: ignore[attr-defined]
        count += len(chunk)
    return count
