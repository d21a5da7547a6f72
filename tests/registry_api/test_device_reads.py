"""The hot device reads: answers written from plain rows equal their documented models; cached tokens; indexes."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import create_engine, exc, text
from sqlmodel import Session

from indexer.service import create_mirror_engine
from indexer.store import Store
from registry_api import crud, device_sql
from registry_api.auth import PrincipalCache, hash_token, issue_token, revoke_token
from registry_api.crud import create_device_read_indexes
from registry_api.device_sql import Reader
from registry_api.encoding import from_micro_degrees, from_unix
from registry_api.schemas.devices import DevicePublic, DevicesPublic
from tests.registry_api.support import Api, device
from tests.support.mirror_rows import device_row, insert_devices, seed_reference_rows


def test_device_answers_are_their_models_json(api: Api) -> None:
    """GET /v1/devices/{code} and GET /v1/devices write JSON themselves: it is exactly the models' JSON."""
    api.register([device(1, attributes={"vendor": "海康威视", "ports": [1, 2]}), device(2)])
    one = api.get("/v1/devices/BJ-CAMR-110105000001")
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert DevicePublic.model_validate(one.json()).model_dump(mode="json") == one.json()
    assert one.json()["attributes"] == {"vendor": "海康威视", "ports": [1, 2]}
    listed = api.get("/v1/devices", params={"district": 110105, "type": "camera.road"})
    assert DevicesPublic.model_validate(listed.json()).model_dump(mode="json") == listed.json()
    assert [d["code"] for d in listed.json()["data"]] == ["BJ-CAMR-110105000001", "BJ-CAMR-110105000002"]


def test_cached_token_stays_until_revoked_here_or_expired(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        Store(engine).create_tables()
        token = issue_token(engine, "BJ-PSB", "0x" + "11" * 20, "cache")
        cache = PrincipalCache(seconds=3_600)
        first = cache.resolve(engine, token)
        assert first is not None and first.org_code == "BJ-PSB"
        with engine.begin() as conn:  # revoked behind the cache's back (another process): kept until it expires
            conn.execute(
                text("UPDATE api_tokens SET revoked = :r WHERE token_hash = :h"), {"r": True, "h": hash_token(token)}
            )
        assert cache.resolve(engine, token) == first
        assert PrincipalCache(seconds=0).resolve(engine, token) is None
        other = issue_token(engine, "BJ-PSB", "0x" + "11" * 20, "cache 2")
        assert cache.resolve(engine, other) is not None
        assert revoke_token(engine, other)  # revoked in this process: forgotten at once
        assert cache.resolve(engine, other) is None
        assert cache.resolve(engine, "dct_unknown") is None
    finally:
        engine.dispose()


def test_district_list_indexes_are_made_once(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        Store(engine).create_tables()
        create_device_read_indexes(engine)
        create_device_read_indexes(engine)
        query = (
            "SELECT name FROM sqlite_master WHERE tbl_name = 'devices'"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE tablename = 'devices'"
        )
        with engine.connect() as conn:
            names = set(conn.execute(text(query)).scalars())
        assert {"devices_district_type_code", "devices_district_owner_code", "devices_district_status_code"} <= names
    finally:
        engine.dispose()


def test_every_page_counts_all_matches_whether_the_page_or_a_count_tells(database_url: str) -> None:
    """Pages that are full, partial, empty or past the end all report the same total as a full listing."""
    engine = create_mirror_engine(database_url)
    try:
        seed_reference_rows(engine)
        insert_devices(
            engine,
            (
                device_row(i, 39_900_000 + i, 116_400_000 + i, status="planned" if i % 3 else "active")
                for i in range(23)
            ),
        )
        create_device_read_indexes(engine)
        with Session(engine) as session:
            for f in (crud.DeviceFilter(district=110105, status="planned"), crud.DeviceFilter(district=110105)):
                whole, total = crud.list_devices(session, f, limit=1000, offset=0)
                assert total == len(whole) > 0
                for limit in (1, 5, total, total + 1):
                    for offset in range(0, total + 3):
                        page, count = crud.list_devices(session, f, limit, offset)
                        assert count == total and page == whole[offset : offset + limit]
            assert crud.list_devices(session, crud.DeviceFilter(district=999_999), 5, 0) == ([], 0)
            assert crud.list_devices(session, crud.DeviceFilter(type="no.such.type"), 5, 10) == ([], 0)
    finally:
        engine.dispose()


def test_device_times_and_degrees_equal_the_encoding_functions() -> None:
    rnd = random.Random(7)
    for seconds in [0, 1, 59, 60, 3_599, 86_399, 86_400, 253_402_300_799] + [
        rnd.randrange(0, 253_402_300_800) for _ in range(20_000)
    ]:
        assert crud.iso_time(seconds) == from_unix(seconds)
    row = device_row(1, 0, 0)
    for _ in range(20_000):
        lat_e6, lon_e6 = rnd.randrange(-90_000_000, 90_000_001), rnd.randrange(-180_000_000, 180_000_001)
        values = (row["code"], "camera.road", 1, "BJ-PSB", 110105, lat_e6, lon_e6, 0, "active", "{}", "0x", "0x", 1,
                  None, None, 1)  # fmt: skip
        location = crud.device_dict(values)["location"]
        assert location == {"lat": from_micro_degrees(lat_e6), "lon": from_micro_degrees(lon_e6)}


def test_a_failing_device_read_raises_sqlalchemys_error(database_url: str) -> None:
    """DB-API errors of the prepared reads reach the API's handlers as SQLAlchemy's (the mirror has no tables)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, pytest.raises(exc.DBAPIError):
            crud.read_device(Reader.of(conn), "BJ-CAMR-110105000001")
        shape = device_sql.ListShape(district=True)
        with engine.connect() as conn, pytest.raises(exc.DBAPIError):
            Reader.of(conn).rows(
                device_sql.list_statement(shape, conn.dialect), {"district": 1, "limit": 1, "offset": 0}
            )
    finally:
        engine.dispose()
