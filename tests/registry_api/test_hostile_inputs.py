"""Hostile uploads and inputs: each is a 4xx with the error body and the field at fault, and nothing is written.

Broken files (NUL bytes, binary, duplicate or BOM-prefixed headers, CRLF, a 1 MB line, broken NDJSON), odd
unicode (RTL override, zero-width joiner, combining marks, lone surrogates, emoji) in codes, attributes and
query parameters, SQL injection and path traversal in filters and ids, absurd pagination, deeply nested JSON.
File-level faults are refused at upload (tests/registry_api/test_imports.py has the plain ones); a file whose
header is sound but whose rows are hostile is accepted and every such row is rejected in the report.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from chain_gateway.settings import Settings
from tests.registry_api.support import Api, device
from tests.registry_api.test_hostile_auth import _outbox_rows

HEADER = b"code,type,district,lat,lon,built_at"
ROW = b"BJ-CAMR-110105000001,camera.road,110105,39.9219,116.4436,2023-06-01"
ODD = {
    "rtl override": "BJ-CAMR-110105\u202e000001",
    "zero-width joiner": "BJ-CAMR-1101050\u200d00001",
    "combining mark": "BJ-CAMR-1101050000\u03010",
    "emoji": "BJ-CAMR-11010500000\U0001f4f7",
    "fullwidth digits": "BJ-CAMR-１１０１０５000001",
    "NUL": "BJ-CAMR-110105\x00000001",
}
INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE devices; --",
    "BJ-PSB' UNION SELECT token_hash FROM api_tokens --",
    "%",
    "_",
]
TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "..%5C..%5Cwindows", "%2e%2e%2f%2e%2e%2f", "....//....//etc"]


@pytest.fixture
def api_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    return api_settings.model_copy(update={"run_imports_in_api": False, "import_dir": tmp_path / "imports"})


def _refused(answer: Any, status: int, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert isinstance(body["code"], str) and isinstance(body["message"], str), body
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def _upload(api: Api, body: bytes, content_type: str = "text/csv") -> Any:
    return api.client.post("/v1/imports", content=body, headers={**api.auth("BJ-PSB"), "Content-Type": content_type})


BROKEN_FILES = [
    pytest.param(
        b"code,type,dis\x00trict,lat,lon,built_at\n" + ROW, "text/csv", "UNSUPPORTED_FORMAT", id="nul-in-header"
    ),
    pytest.param(
        HEADER + b"\n" + ROW.replace(b"camera", b"cam\x00era"), "text/csv", "UNSUPPORTED_FORMAT", id="nul-in-row"
    ),
    pytest.param(HEADER + b",code\n" + ROW + b",x\n", "text/csv", "DUPLICATE_COLUMN", id="duplicate-header"),
    pytest.param(b"\xef\xbb\xbf" + HEADER + b",type\r\n", "text/csv", "DUPLICATE_COLUMN", id="bom-crlf-duplicate"),
    pytest.param(
        b"code,type,district,lat,built_at\r\n" + ROW + b"\r\n", "text/csv", "MISSING_COLUMN", id="crlf-missing"
    ),
    pytest.param(b"code," + b"x" * 1_048_576 + b"\n" + ROW, "text/csv", None, id="1mb-header-line"),
    pytest.param(bytes(range(256)) * 64, "text/csv", None, id="binary-garbage"),
    pytest.param(b'{"code": "BJ-CAMR-110105000001", "type":\n', "application/x-ndjson", None, id="broken-ndjson"),
    pytest.param(b'"code,type,district,lat,lon,built_at\n' + ROW, "text/csv", None, id="unclosed-quote-header"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
def test_broken_files_are_refused_at_upload_and_leave_nothing(api: Api, tmp_path: Path) -> None:
    for case in BROKEN_FILES:
        _refused_upload(api, *case.values, tmp_path)


def _refused_upload(api: Api, body: bytes, content_type: str, code: str | None, tmp_path: Path) -> None:
    answer = api.client.post("/v1/imports", content=body, headers={**api.auth("BJ-PSB"), "Content-Type": content_type})
    assert 400 <= answer.status_code < 500, answer.text
    _refused(answer, answer.status_code, code)
    assert api.get("/v1/imports").json()["count"] == 0
    assert not list((tmp_path / "imports").iterdir())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
def test_upload_over_the_limit_is_413_with_its_code(api: Api, tmp_path: Path) -> None:
    api.app.state.settings = api.app.state.settings.model_copy(update={"import_max_bytes": 64 * 1024})
    _refused(_upload(api, HEADER + b"\n" + (ROW + b"\n") * 2_000), 413, "IMPORT_TOO_LARGE")
    assert not list((tmp_path / "imports").iterdir())


def test_hostile_rows_of_a_sound_file_are_each_rejected_and_nothing_reaches_the_chain(api: Api) -> None:
    """BOM and CRLF are fine; rows with bad quoting, an extra field, a 1 MB field and odd unicode codes (a NUL makes
    the file binary: refused whole, above) are each rejected."""
    rows = [
        b'"BJ-CAMR-110105000001,camera.road,110105,39.9,116.4,2023-06-01',  # unclosed quote: swallows the rest
        b"BJ-CAMR-110105000002,camera.road,110105,39.9,116.4,2023-06-01,extra",
        b"BJ-CAMR-110105000004,camera.road,110105," + b"9" * 1_048_576 + b",116.4,2023-06-01",
        *(f"{code},camera.road,110105,39.9,116.4,2023-06-01".encode() for code in ODD.values()),
    ]
    body = b"\xef\xbb\xbf" + HEADER + b"\r\n" + b"\r\n".join(rows[1:] + rows[:1]) + b"\r\n"
    before = _outbox_rows(api)
    accepted = _upload(api, body)
    assert accepted.status_code == 202, accepted.text
    import_id = accepted.json()["import_id"]
    runner = api.app.state.imports
    for _ in range(50):
        runner.run_once()
        job = api.get(f"/v1/imports/{import_id}").json()
        if job["status"] in ("done", "failed"):
            break
    assert job["status"] in ("done", "failed"), job
    assert job["rows"]["accepted"] == 0 and job["rows"]["rejected"] == job["rows"]["read"] >= len(rows) - 1, job
    report = list(csv.DictReader(io.StringIO(api.get(f"/v1/imports/{import_id}/report").text)))
    assert report and all(r["outcome"] == "rejected" and r["reason_code"] for r in report), report
    assert _outbox_rows(api) == before


def test_odd_unicode_codes_are_422_at_the_code(api: Api) -> None:
    before = _outbox_rows(api)
    for code in ODD.values():
        _refused(api.post("/v1/devices", device(1, code=code)), 422, field="code")
        _refused(api.post("/v1/devices", {"devices": [device(1), device(2, code=code)]}), 422, field="devices[1].code")
    assert _outbox_rows(api) == before


def test_odd_unicode_in_attributes_names_and_queries_is_safe(api: Api) -> None:
    before = _outbox_rows(api)
    lone = b'{"code": "BJ-CAMR-110105000001", "attributes": {"vendor": "\\ud800"}}'
    answer = api.client.post(
        "/v1/devices", content=lone, headers={**api.auth("BJ-PSB"), "Content-Type": "application/json"}
    )
    assert 400 <= answer.status_code < 500 and answer.json()["code"], answer.text
    for key in ("\u202evendor", "ven\u200ddor", "\ud800"):
        body = json.dumps(device(1, attributes={key: "x"})).encode()  # \ud800 stays escaped: a lone surrogate
        answer = api.client.post(
            "/v1/devices", content=body, headers={**api.auth("BJ-PSB"), "Content-Type": "application/json"}
        )
        assert answer.status_code < 500, answer.text
    values = [quote(v) for v in ODD.values()] + ["%ED%A0%80", "%FF%FE"]  # + a lone surrogate and bad UTF-8
    for value in values:
        for path, name in (("/v1/devices", "owner"), ("/v1/devices", "type"), ("/v1/catalog", "owner")):
            answer = api.client.get(f"{path}?{name}={value}", headers=api.auth("BJ-PSB"))
            assert answer.status_code in (200, 422), (path, name, answer.text)
            if answer.status_code == 200:
                assert answer.json()["count"] == 0
            if value == quote(ODD["NUL"]):  # PostgreSQL cannot even compare text with NUL: refused up front
                _refused(answer, 422, "VALIDATION_ERROR", name)
    assert _outbox_rows(api) - before <= 3  # only the well-formed attribute keys can be queued


def test_sql_injection_in_filters_and_ids_finds_nothing(api: Api) -> None:
    filters = {
        "/v1/devices": ("owner", "type", "status", "bbox", "near"),
        "/v1/catalog": ("owner", "classification", "device", "q"),
        "/v1/sharing-requests": ("requester", "owner"),
        "/v1/carriers": ("near",),
    }
    for injection in INJECTIONS:
        for path, names in filters.items():
            for name in names:
                answer = api.client.get(path, params={name: injection}, headers=api.auth("BJ-PSB"))
                assert answer.status_code in (200, 422), (path, name, answer.text)
                if answer.status_code == 200:
                    assert answer.json()["count"] == 0, (path, name, injection)
                else:
                    _refused(answer, 422, field=name)
        for path in ("/v1/devices/{}", "/v1/members/{}", "/v1/imports/{}", "/v1/carriers/{}", "/v1/catalog/{}"):
            answer = api.client.get(path.format(injection.replace("/", "%2F")), headers=api.auth("BJ-PSB"))
            assert answer.status_code in (404, 422), (path, answer.text)
    assert api.get("/v1/members").json()["count"] > 0  # every table is still there


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
def test_path_traversal_ids_are_not_found(api: Api, tmp_path: Path) -> None:
    for traversal in TRAVERSALS:
        for path in ("/v1/imports/{}", "/v1/imports/{}/report", "/v1/devices/{}", "/v1/zone/jobs/{}"):
            answer = api.client.get(path.format(traversal), headers=api.auth("BJ-PSB"))
            assert answer.status_code in (404, 422), (path, traversal, answer.status_code)
            assert "root:" not in answer.text


PAGES = [
    ({"limit": "-1"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": str(10**30)}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-5"}, "offset"),
    ({"offset": str(2**63)}, "offset"),
    ({"offset": "1e3"}, "offset"),
    ({"offset": "NaN"}, "offset"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
def test_absurd_pagination_is_422_at_the_parameter(api: Api) -> None:
    for params, field in PAGES:
        for path in ("/v1/devices", "/v1/catalog", "/v1/members", "/v1/imports", "/v1/proposals"):
            answer = api.client.get(path, params=params, headers=api.auth("BJ-PSB"))
            _refused(answer, 422, "VALIDATION_ERROR", field)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # refused before any SQL
def test_deeply_nested_json_is_refused_without_a_500(api: Api) -> None:
    before = _outbox_rows(api)
    for depth in (64, 10_000, 200_000):
        nested = "[" * depth + "]" * depth
        body = f'{{"code": "BJ-CAMR-110105000001", "attributes": {{"x": {nested}}}}}'
        for path in ("/v1/devices", "/v1/catalog", "/v1/resolve"):
            answer = api.client.post(
                path, content=body, headers={**api.auth("BJ-PSB"), "Content-Type": "application/json"}
            )
            assert 400 <= answer.status_code < 500 and answer.json()["code"], (path, depth, answer.text[:200])
    assert _outbox_rows(api) == before
