"""Bulk import through the API: every good row on-chain once, every bad row reported with its reason and column,
refused uploads, other orgs' imports invisible, a batch refused by the chain split, and a streaming parser."""

from __future__ import annotations

import csv
import inspect
import io
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from chain_gateway.deployments import send_transaction
from chain_gateway.devnet import DEMO_CODE_RULES
from chain_gateway.errors import ContractRevert
from chain_gateway.settings import Settings
from indexer.handlers import DEVICE_STATUSES
from registry_api.imports.formats import Position, RawRecord, inspect_file, iter_records
from registry_api.imports.rows import AcceptedRow, RowValidator
from registry_api.imports.store import code_rules
from tests.indexer.support import contract
from tests.registry_api.import_support import registrations, sample_rows, write_csv, write_ndjson
from tests.registry_api.support import Api, device

TERMINAL = ("done", "failed")


@pytest.fixture
def api_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    """The runner is driven by the test (`run_once`), like the gateway and the indexer."""
    return api_settings.model_copy(update={"run_imports_in_api": False, "import_dir": tmp_path / "imports"})


def _upload(
    api: Api,
    body: bytes,
    org: str = "BJ-PSB",
    content_type: str = "text/csv",
    filename: str | None = None,
    key: str | None = None,
) -> Any:
    headers = {**api.auth(org), "Content-Type": content_type}
    if key is not None:
        headers["Idempotency-Key"] = key
    params = {"filename": filename} if filename else {}
    return api.client.post("/v1/imports", content=body, headers=headers, params=params)


def _run(api: Api, import_id: str, org: str = "BJ-PSB", timeout: float = 240.0) -> dict[str, Any]:
    """Drive runner, gateway and blocks until the import is done or failed; index; return its progress."""
    runner, gateway = api.app.state.imports, api.app.state.gateway
    deadline = time.monotonic() + timeout
    while True:
        changed = runner.run_once() + gateway.process_once()
        job: dict[str, Any] = api.get(f"/v1/imports/{import_id}", org).json()
        if job["status"] in TERMINAL:
            api.sync()
            return job
        assert time.monotonic() < deadline, f"import stuck: {job}"
        if not changed:  # confirmations need a block on top of the last batch
            api.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _report(api: Api, import_id: str, outcome: str | None = None, org: str = "BJ-PSB") -> list[dict[str, str]]:
    answer = api.get(f"/v1/imports/{import_id}/report", org, params={"outcome": outcome} if outcome else {})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def _preregister(api: Api, codes: list[str]) -> None:
    """Register devices with `codes` (as BJ-PSB) before the import: the ledger duplicates."""
    types = {prefix: name for _, name, prefix, _, _ in DEMO_CODE_RULES}
    for start in range(0, len(codes), 100):
        api.register([device(0, code=code, type=types[code[:8]]) for code in codes[start : start + 100]])


def test_import_puts_every_good_row_on_chain_once_and_reports_every_bad_row(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    sample = write_csv(path, sample_rows(3_000, bad_every=8, seed=11))
    _preregister(api, list(sample.on_ledger.values()))

    answer = _upload(api, path.read_bytes(), filename="devices.csv")
    assert answer.status_code == 202, answer.text
    import_id = answer.json()["import_id"]
    assert answer.headers["Location"] == f"/v1/imports/{import_id}"
    job = _run(api, import_id)

    assert job["status"] == "done", job
    assert job["rows"] == {
        "read": 3_000,
        "accepted": len(sample.good),
        "rejected": len(sample.bad),
        "confirmed": len(sample.good),
        "pending": 0,
    }
    assert len(sample.bad) == 375 and {r for r, _ in sample.bad.values()} >= {"NOT_UTF8", "MALFORMED_ROW"}
    counts = registrations(api.w3, api.chain.deployment, sample.good + list(sample.on_ledger.values()))
    assert all(counts[code] == 1 for code in sample.good), "a good row is missing or registered twice"
    assert all(counts[code] == 1 for code in sample.on_ledger.values())  # the pre-registration only

    rejected = _report(api, import_id, "rejected")
    assert {int(r["row"]): (r["reason_code"], r["column"] or None) for r in rejected} == sample.bad
    assert all(r["message"] and r["outcome"] == "rejected" and r["confirmed"] == "false" for r in rejected)
    accepted = _report(api, import_id, "accepted")
    assert [r["code"] for r in accepted] == sample.good
    assert all(r["confirmed"] == "true" and r["tx_hash"].startswith("0x") and r["operation_id"] for r in accepted)
    assert len(_report(api, import_id)) == 3_000
    one = api.get(f"/v1/devices/{sample.good[-1]}").json()
    assert one["owner_org"] == "BJ-PSB" and one["status"] in DEVICE_STATUSES
    assert one["tx_hash"] == accepted[-1]["tx_hash"]
    assert not list((tmp_path / "imports").glob("*.csv"))  # the upload is removed once done


def test_ndjson_import_reports_json_paths(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "devices.ndjson"
    sample = write_ndjson(path, sample_rows(450, bad_every=6, seed=3, serial_base=10_000))
    _preregister(api, list(sample.on_ledger.values()))

    answer = _upload(api, path.read_bytes(), content_type="application/x-ndjson")
    assert answer.status_code == 202, answer.text
    job = _run(api, answer.json()["import_id"])

    assert job["status"] == "done" and job["format"] == "ndjson"
    assert job["rows"]["confirmed"] == len(sample.good) and job["rows"]["rejected"] == len(sample.bad)
    rejected = _report(api, job["import_id"], "rejected")
    assert {int(r["row"]): (r["reason_code"], r["column"] or None) for r in rejected} == sample.bad
    assert {r["column"] for r in rejected} >= {"location.lat", "attributes.phone"}
    counts = registrations(api.w3, api.chain.deployment, sample.good)
    assert all(counts[code] == 1 for code in sample.good)


def test_batch_refused_by_the_chain_is_split_and_the_raced_row_rejected(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "race.csv"
    sample = write_csv(path, sample_rows(40, bad_every=1_000, seed=5, serial_base=20_000))
    import_id = _upload(api, path.read_bytes()).json()["import_id"]
    runner = api.app.state.imports
    runner.run_once()  # reads, records and queues the one batch; the gateway has not sent it yet
    raced = sample.good[17]
    # meanwhile another org registers one of the codes directly on the chain
    org = api.chain.orgs["BJ-CMC"]
    registry = contract(api.w3, api.chain.deployment, "DeviceRegistry")
    type_ids = {prefix: type_id for type_id, _, prefix, _, _ in DEMO_CODE_RULES}
    raced_input = (raced, type_ids[raced[:8]], 2, int(raced[8:14]), 39_921_000, 116_443_000, 1_700_000_000, "{}")
    tx = registry.functions.registerDevice(raced_input).build_transaction(
        {"from": Account.from_key(org.private_key).address}
    )
    send_transaction(api.w3, org.private_key, tx)

    job = _run(api, import_id)

    assert job["status"] == "done"
    assert job["batches"]["split"] == 1 and job["batches"]["total"] == 2 and job["batches"]["confirmed"] == 1
    assert job["rows"]["rejected"] == 1 and job["rows"]["confirmed"] == 39
    (row,) = _report(api, import_id, "rejected")
    assert (row["code"], row["reason_code"], row["column"]) == (raced, "DUPLICATE_CODE", "code")
    assert row["operation_id"]  # the refused batch's operation
    counts = registrations(api.w3, api.chain.deployment, sample.good)
    assert all(counts[code] == 1 for code in sample.good)
    assert api.get(f"/v1/devices/{raced}").json()["owner_org"] == "BJ-CMC"


BAD_UPLOADS = [
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", None, 415, "UNSUPPORTED_MEDIA_TYPE", id="png"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "application/octet-stream", None, 422, "UNSUPPORTED_FORMAT",
                 id="binary"),
    pytest.param(b"", "text/csv", None, 422, "EMPTY_FILE", id="empty"),
    pytest.param(b"BJ-CAMR-110105000001,camera.road,110105,39.92,116.44,2023-06-01\n", "text/csv", None, 422,
                 "NO_HEADER", id="no-header"),
    pytest.param(b"code,type,district,lon,built_at\nX,camera.road,110105,116.4,2023-06-01\n", "text/csv", "lat",
                 422, "MISSING_COLUMN", id="missing-column"),
    pytest.param(b"code,type,district,lat,lon,built_at,colour\n", "text/csv", "colour", 422, "UNKNOWN_COLUMN",
                 id="unknown-column"),
    pytest.param("code,type,district,lat,lon,built_at,attr.厂商\nA,b,1,2,3,4,海康\n".encode("gbk"), "text/csv", None,
                 422, "NOT_UTF8", id="gbk"),
    pytest.param(b'[{"code": "x"}]', "application/octet-stream", None, 422, "UNSUPPORTED_FORMAT", id="json-array"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "field", "status", "code"), BAD_UPLOADS)
def test_upload_that_is_not_csv_or_ndjson_with_a_header_is_refused(
    api: Api, body: bytes, content_type: str, field: str | None, status: int, code: str, tmp_path: Path
) -> None:
    answer = _upload(api, body, content_type=content_type)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    if field is not None:
        assert answer.json()["field"] == field
    assert api.get("/v1/imports").json()["count"] == 0
    assert not list((tmp_path / "imports").iterdir())  # nothing left behind


def test_upload_over_the_size_limit_is_refused_with_413(api: Api, tmp_path: Path) -> None:
    api.app.state.settings = api.app.state.settings.model_copy(update={"import_max_bytes": 1_000})
    body = (
        b"code,type,district,lat,lon,built_at\n"
        + b"BJ-CAMR-110105000001,camera.road,110105,39.9,116.4,2023-06-01\n" * 40
    )
    assert _upload(api, body).json()["code"] == "IMPORT_TOO_LARGE"
    chunks = (body[i : i + 100] for i in range(0, len(body), 100))  # no Content-Length: refused while streaming
    answer = api.client.post("/v1/imports", content=chunks, headers={**api.auth("BJ-PSB"), "Content-Type": "text/csv"})
    assert (answer.status_code, answer.json()["code"]) == (413, "IMPORT_TOO_LARGE")
    assert not list((tmp_path / "imports").iterdir())


def test_upload_needs_a_registrar(api: Api) -> None:
    body = b"code,type,district,lat,lon,built_at\n"
    assert api.client.post("/v1/imports", content=body, headers={"Content-Type": "text/csv"}).status_code == 401
    answer = _upload(api, body, org="CO-ZHCS")
    assert (answer.status_code, answer.json()["code"]) == (403, "ROLE_REQUIRED")


def test_another_orgs_import_is_not_visible(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    write_csv(path, sample_rows(5, bad_every=1_000, serial_base=30_000))
    import_id = _upload(api, path.read_bytes()).json()["import_id"]

    for route in (f"/v1/imports/{import_id}", f"/v1/imports/{import_id}/report"):
        answer = api.get(route, "BJ-CMC")
        assert (answer.status_code, answer.json()["code"]) == (404, "IMPORT_NOT_FOUND"), route
    assert api.get("/v1/imports", "BJ-CMC").json() == {"data": [], "count": 0}
    mine = api.get("/v1/imports").json()
    assert mine["count"] == 1 and mine["data"][0]["import_id"] == import_id
    assert mine["data"][0]["status"] == "queued" and mine["data"][0]["org_code"] == "BJ-PSB"


def test_rows_for_another_org_are_rejected_and_devices_belong_to_the_importer(api: Api, tmp_path: Path) -> None:
    rows = list(sample_rows(6, bad_every=1_000, serial_base=40_000))
    rows[1].values["owner_org"] = "BJ-CMC"
    rows[2].values["owner_org"] = "BJ-PSB"
    path = tmp_path / "devices.csv"
    write_csv(path, rows)
    job = _run(api, _upload(api, path.read_bytes()).json()["import_id"])

    assert job["rows"]["confirmed"] == 5
    (row,) = _report(api, job["import_id"], "rejected")
    assert (row["row"], row["reason_code"], row["column"]) == ("2", "ORG_MISMATCH", "owner_org")
    assert api.get(f"/v1/devices/{rows[2].code}").json()["owner_org"] == "BJ-PSB"
    assert api.get(f"/v1/devices/{rows[1].code}").status_code == 404


def test_multipart_upload_and_idempotent_replay(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    write_csv(path, sample_rows(3, bad_every=1_000, serial_base=50_000))
    headers = {**api.auth("BJ-PSB"), "Idempotency-Key": "monthly-2024-05"}
    files = {"file": ("devices.csv", path.read_bytes(), "text/csv")}

    first = api.client.post("/v1/imports", files=files, headers=headers)
    again = api.client.post("/v1/imports", files=files, headers=headers)
    other = api.client.post("/v1/imports", files={"file": ("x.csv", b"code,type,district,lat,lon,built_at\n")},
                            headers=headers)  # fmt: skip

    assert first.status_code == 202 and again.status_code == 202, (first.text, again.text)
    assert again.json()["import_id"] == first.json()["import_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    job = api.get(f"/v1/imports/{first.json()['import_id']}").json()
    assert job["file_name"] == "devices.csv" and job["format"] == "csv"
    assert len(list((tmp_path / "imports").glob("*.csv"))) == 1


def test_parser_streams_the_file_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, sample_rows(40_000, bad_every=50, seed=2))
    layout = inspect_file(path, None)
    records = iter_records(path, layout, layout.start)
    assert inspect.isgenerator(records)

    tracemalloc.start()
    try:
        count = sum(1 for _ in records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 40_000
    assert path.stat().st_size > 4_000_000
    assert peak < 400_000, f"parsing a {path.stat().st_size} byte file peaked at {peak} bytes"


def test_parser_resumes_at_a_recorded_position(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    write_csv(path, sample_rows(300, bad_every=9))
    layout = inspect_file(path, None)
    everything = list(iter_records(path, layout, layout.start))
    middle = everything[149].after

    rest = list(iter_records(path, layout, middle))

    assert [(r.row, r.line, r.values, r.problem) for r in rest] == [
        (r.row, r.line, r.values, r.problem) for r in everything[150:]
    ]


def test_cancelled_import_lands_what_was_sent_and_rejects_the_rest(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    sample = write_csv(path, sample_rows(1_000, bad_every=10**9, seed=9, serial_base=80_000))
    runner = api.app.state.imports
    runner.batch_rows, runner.max_inflight = 50, 2  # the file is read whole, two batches go to the outbox
    import_id = _upload(api, path.read_bytes()).json()["import_id"]
    while api.get(f"/v1/imports/{import_id}").json()["status"] != "submitting":  # read whole (a slice per pass)
        runner.run_once()

    cancelled = api.client.post(f"/v1/imports/{import_id}/cancel", headers=api.auth("BJ-PSB"))
    assert cancelled.status_code == 202, cancelled.text
    job = _run(api, import_id)

    assert job["status"] == "failed" and job["error"]["code"] == "CANCELLED"
    assert job["rows"]["confirmed"] == 100 and job["rows"]["rejected"] == 900
    assert job["batches"] == {"total": 20, "confirmed": 2, "in_flight": 0, "split": 0, "failed": 18}
    rejected = _report(api, import_id, "rejected")
    assert {r["reason_code"] for r in rejected} == {"CANCELLED"} and len(rejected) == 900
    counts = registrations(api.w3, api.chain.deployment, sample.good)
    assert sum(counts.values()) == 100 and set(counts.values()) == {1}
    again = api.client.post(f"/v1/imports/{import_id}/cancel", headers=api.auth("BJ-PSB"))
    assert (again.status_code, again.json()["code"]) == (409, "IMPORT_FINISHED")
    other = api.client.post(f"/v1/imports/{import_id}/cancel", headers=api.auth("BJ-CMC"))
    assert (other.status_code, other.json()["code"]) == (404, "IMPORT_NOT_FOUND")


CODES = [
    "BJ-CAMR-110105000001",  # valid
    "BJ-CAMR-1101050000011",  # one character too many
    "BJ-CAMF-110105000001",  # another type's prefix
    "BJ-CAMR-11010500000a",  # lower case where digits are allowed
    "BJ-CAMR-11010500000-",  # hyphen
    "BJ-CAMR-11010500000０",  # a full-width digit (three bytes in UTF-8)
    "bj-camr-110105000001",  # the prefix in lower case
]


@pytest.mark.parametrize("code", CODES)
def test_import_code_rule_is_the_contracts(api: Api, code: str) -> None:
    validator = RowValidator(code_rules(api.app.state.engine), "BJ-PSB")
    values = {"code": code, "type": "camera.road", "district": "110105", "lat": "39.92", "lon": "116.44",
              "built_at": "2023-06-01"}  # fmt: skip
    verdict = validator.check(RawRecord(1, 2, Position(0, 0, 0), values))
    device_input = {"code": code, "typeId": 1, "status": 2, "district": 110105, "lat": 39_920_000,
                    "lon": 116_440_000, "builtAt": 1_685_577_600, "attributes": "{}"}  # fmt: skip
    try:
        api.app.state.gateway.simulate(
            api.chain.orgs["BJ-PSB"].account, "DeviceRegistry", "registerDevice", [device_input]
        )
        contract_error = None
    except ContractRevert as exc:
        contract_error = exc.name

    if isinstance(verdict, AcceptedRow):
        assert contract_error is None
    else:
        assert verdict.reason == "CODE_RULE_VIOLATION" and verdict.column == "code"
        assert contract_error in {"DeviceRegistryCodeLength", "DeviceRegistryCodePrefix", "DeviceRegistryCodeCharacter"}


def test_imports_of_two_orgs_run_side_by_side_each_for_its_own_org(api: Api, tmp_path: Path) -> None:
    ids = {}
    samples = {}
    for org, base in (("BJ-PSB", 90_000), ("BJ-CMC", 91_000)):
        path = tmp_path / f"{org}.csv"
        samples[org] = write_csv(path, sample_rows(300, bad_every=10**9, seed=base, serial_base=base))
        ids[org] = _upload(api, path.read_bytes(), org=org).json()["import_id"]
    api.app.state.imports.run_once()
    both = {org: api.get(f"/v1/imports/{i}", org).json()["status"] for org, i in ids.items()}
    assert set(both.values()) <= {"validating", "submitting"}, both  # one pass moved both along

    jobs = {org: _run(api, i, org) for org, i in ids.items()}

    for org, job in jobs.items():
        assert job["status"] == "done" and job["rows"]["confirmed"] == 300
        assert api.get(f"/v1/devices/{samples[org].good[0]}").json()["owner_org"] == org
