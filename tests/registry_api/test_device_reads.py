"""The hot device reads: answers written from plain rows equal their documented models; cached tokens; indexes."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from indexer.store import Store
from registry_api.auth import PrincipalCache, hash_token, issue_token, revoke_token
from registry_api.crud import create_device_read_indexes
from registry_api.schemas.devices import DevicePublic, DevicesPublic
from tests.registry_api.support import Api, device


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
