"""GET /v1/stats: the assessment indicators, recounted from random histories (past and current periods, filters),
and through the API over a real chain (registrations, life cycle, inspections, catalog, sharing, time)."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from indexer.handlers import SHARE_CONDITIONS
from indexer.models import CatalogEntry, CatalogEntryVersion, DeviceEvent, Inspection, SharingRequest
from indexer.service import create_mirror_engine
from indexer.store import bulk_insert
from registry_api import stats
from registry_api.schemas.stats import DeviceCounts, StatsPublic
from tests.indexer.support import registry_call
from tests.registry_api.catalog_support import approver, create_entry, entry, request_grant, signed
from tests.registry_api.support import Api, device
from tests.support.mirror_rows import ORGS, TYPES, device_row, insert_devices, seed_reference_rows

DAY = 86_400
T0 = int(datetime(2025, 1, 1, tzinfo=stats.CITY_TZ).timestamp())  # 2025-01-01 00:00 Beijing
BLOCK_SECONDS = 17_000  # ~4.7 h between the synthetic blocks
BLOCKS = 600  # ~118 days: January to late April 2025
DISTRICTS = (110101, 110105, 110108)
OVERDUE_DAYS = 30


def block_time(block: int) -> int:
    return T0 + block * BLOCK_SECONDS


# ---------------------------------------------------------------- random histories and their recount


@dataclass
class DeviceHistory:
    row: dict[str, Any]
    statuses: list[tuple[int, str]]  # (block, status), registration first
    inspections: list[tuple[int, int]] = field(default_factory=list)  # (block, inspected_at)

    def status_at(self, as_of: int) -> str | None:
        known = [s for b, s in self.statuses if block_time(b) <= as_of]
        return known[-1] if known else None

    def overdue_at(self, as_of: int, cut: int) -> bool:
        if self.status_at(as_of) != "active":
            return False
        seen = [at for b, at in self.inspections if block_time(b) <= as_of]
        return max(seen) <= cut if seen else block_time(self.statuses[0][0]) <= cut


@dataclass
class Mirror:
    devices: list[DeviceHistory]
    requests: list[dict[str, Any]]
    entries: list[dict[str, Any]]  # catalog entry rows plus "created_at"


def _histories(rnd: random.Random) -> list[DeviceHistory]:
    histories = []
    for serial in range(400):
        registered = rnd.randint(1, BLOCKS - 20)
        row = device_row(
            serial, 39_900_000 + serial, 116_400_000, type_id=rnd.choice(TYPES)[0], owner_org_id=rnd.choice(ORGS)[0],
            status="planned", district=rnd.choice(DISTRICTS), block_number=registered,
        )  # fmt: skip
        statuses = [(registered, rnd.choice(("planned", "active", "active")))]
        for _ in range(rnd.randint(0, 3)):
            statuses.append((rnd.randint(statuses[-1][0], BLOCKS), rnd.choice(stats.STATUSES)))
        statuses.sort(key=lambda s: s[0])
        history = DeviceHistory(row, statuses)
        last_at = 0
        for block in sorted(rnd.randint(registered, BLOCKS) for _ in range(rnd.randint(0, 4))):
            last_at = max(last_at, block_time(block) - rnd.randint(0, 3 * DAY))
            history.inspections.append((block, last_at))
        row["status"] = statuses[-1][1]
        row["last_inspected_at"] = history.inspections[-1][1] if history.inspections else None
        histories.append(history)
    return histories


def _requests(rnd: random.Random, now: int) -> list[dict[str, Any]]:
    rows = []
    for request_id in range(1, 121):
        requested = rnd.randint(T0, now)
        decided = requested + rnd.randint(3_600, 10 * DAY)
        outcome = rnd.choice(("pending", "granted", "granted", "refused", "revoked")) if decided <= now else "pending"
        granted_at = decided if outcome in ("granted", "revoked") else None
        closed_at = decided if outcome == "refused" else min(now, decided + DAY) if outcome == "revoked" else None
        rows.append(
            {"request_id": request_id, "entry_id": 1, "requester_org_id": 2, "owner_org_id": rnd.choice(ORGS)[0],
             "requester": "0x" + "11" * 20, "form": "desensitized", "purpose": "test", "duration": 30 * DAY,
             "approvals_needed": 2, "approvals": 2 if granted_at else 0, "status": outcome, "requested_at": requested,
             "granted_at": granted_at, "expires_at": granted_at + 30 * DAY if granted_at else None,
             "refusal_reason": "no" if outcome == "refused" else None, "revocation_reason": None,
             "closed_at": closed_at, "closed_tx_hash": None, "request_tx_hash": "0x01", "request_block": 1,
             "grant_tx_hash": None, "grant_block": None, "updated_block": 1, "updated_tx_hash": "0x01"}
        )  # fmt: skip
    return rows


def _entries(rnd: random.Random) -> list[dict[str, Any]]:
    rows = []
    for entry_id in range(1, 41):
        rows.append(
            {"entry_id": entry_id, "owner_org_id": rnd.choice(ORGS)[0], "title": f"entry {entry_id}",
             "classification": "城市影像", "grade": 2, "share_condition": rnd.choice(SHARE_CONDITIONS),
             "forms": '["raw"]', "forms_mask": 1, "schema": '{"fields":[]}', "schema_hash": "0x00",
             "device_codes": "[]", "upstream": "[]", "status": rnd.choice(("draft", "published", "deprecated")),
             "major": 1, "minor": rnd.randint(0, 2), "version_hash": "0x00", "created_block": rnd.randint(1, BLOCKS),
             "created_tx_hash": "0x01", "updated_block": BLOCKS, "updated_tx_hash": "0x01"}
        )  # fmt: skip
    return rows


def _write(engine: Engine, mirror: Mirror) -> None:
    seed_reference_rows(engine)
    insert_devices(engine, (h.row for h in mirror.devices))
    log_index: Counter[int] = Counter()
    events, inspections = [], []

    def event(code: str, name: str, block: int, data: dict[str, Any]) -> int:
        index = log_index[block]
        log_index[block] += 1
        events.append({"code": code, "event": name, "block_number": block, "block_hash": f"0x{block:064x}",
                       "block_time": block_time(block), "tx_hash": "0x01", "log_index": index, "sender": None,
                       "data": json.dumps(data)})  # fmt: skip
        return index

    for history in mirror.devices:
        code = history.row["code"]
        timeline = [(b, 0, s) for b, s in history.statuses] + [(b, 1, at) for b, at in history.inspections]
        status = None
        for position, (block, kind, value) in enumerate(sorted(timeline, key=lambda t: t[0])):
            if position == 0:
                event(code, "DeviceRegistered", block, {"code": code, "status": value})
            elif kind == 0:
                event(code, "DeviceLifecycleChanged", block, {"code": code, "fromStatus": status, "toStatus": value})
            else:
                index = event(code, "DeviceInspected", block, {"code": code, "inspectedAt": value})
                inspection = {"code": code, "result": "passed", "inspected_at": value, "block_number": block}
                inspections.append(
                    {**inspection, "report_hash": "0x", "note": "", "tx_hash": "0x1", "log_index": index}
                )
            status = value if kind == 0 else status
    versions = [
        {"entry_id": e["entry_id"], "major": 1, "minor": 0, "owner_org_id": e["owner_org_id"], "title": e["title"],
         "classification": e["classification"], "grade": 2, "share_condition": e["share_condition"], "forms": "[]",
         "forms_mask": 1, "schema": "{}", "schema_hash": "0x00", "device_codes": "[]", "upstream": "[]",
         "version_hash": "0x00", "block_number": e["created_block"], "block_time": block_time(e["created_block"]),
         "tx_hash": "0x01", "log_index": 100 + e["entry_id"], "sender": None}
        for e in mirror.entries
    ]  # fmt: skip
    with engine.begin() as conn:
        for model, rows in (
            (DeviceEvent, events),
            (Inspection, inspections),
            (SharingRequest, mirror.requests),
            (CatalogEntry, mirror.entries),
            (CatalogEntryVersion, versions),
        ):
            bulk_insert(conn, model.__table__, rows)  # type: ignore[attr-defined]


def _recount(
    mirror: Mirror, period: stats.Period, now: int, district: int | None, org_id: int | None
) -> dict[str, Any]:
    """The indicators straight from their definitions over the histories (no SQL)."""
    as_of = min(period.end - 1, now)
    cut = as_of - OVERDUE_DAYS * DAY
    codes = {org_id: code for org_id, code, _, _ in ORGS}
    types = {type_id: name for type_id, name, _ in TYPES}
    cells: dict[tuple[int, str], dict[str, Any]] = defaultdict(
        lambda: {"by_type": defaultdict(Counter), "registered": 0, "overdue": 0}
    )
    for h in mirror.devices:
        row = h.row
        if (district is not None and row["district"] != district) or (
            org_id is not None and row["owner_org_id"] != org_id
        ):
            continue
        cell = cells[(row["district"], codes[row["owner_org_id"]])]
        status = h.status_at(as_of)
        if status is not None:
            cell["by_type"][types[row["type_id"]]][status] += 1
            cell["overdue"] += h.overdue_at(as_of, cut)
        cell["registered"] += period.start <= block_time(h.statuses[0][0]) <= as_of
    sharing: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"requested": 0, "granted": 0, "refused": 0, "pending": 0, "waits": []}
    )
    for r in mirror.requests:
        if org_id is not None and r["owner_org_id"] != org_id:
            continue
        s = sharing[codes[r["owner_org_id"]]]
        s["requested"] += period.start <= r["requested_at"] <= as_of
        if r["granted_at"] is not None and period.start <= r["granted_at"] <= as_of:
            s["granted"] += 1
            s["waits"].append(r["granted_at"] - r["requested_at"])
        s["refused"] += r["status"] == "refused" and period.start <= r["closed_at"] <= as_of
        decided = r["granted_at"] or r["closed_at"]
        s["pending"] += r["requested_at"] <= as_of and (decided is None or decided > as_of)
    catalog: dict[str, Counter[str]] = defaultdict(Counter)
    for e in mirror.entries:
        created = block_time(e["created_block"])
        if (org_id is None or e["owner_org_id"] == org_id) and created <= as_of:
            counts = catalog[codes[e["owner_org_id"]]]
            counts.update({"total": 1, e["status"]: 1, e["share_condition"]: 1, "new": created >= period.start})
    return {"cells": cells, "sharing": sharing, "catalog": catalog}


def _devices_of(counts: DeviceCounts) -> dict[str, Any]:
    return {"by_type": counts.by_type, "registered": counts.registered, "overdue": counts.inspections_overdue}


def _expected_devices(cell: dict[str, Any]) -> dict[str, Any]:
    by_type = {
        t: {s: n for s, n in sorted(c.items(), key=lambda i: stats.STATUSES.index(i[0])) if n}
        for t, c in sorted(cell["by_type"].items())
    }
    return {
        "by_type": {t: c for t, c in by_type.items() if c},
        "registered": cell["registered"],
        "overdue": cell["overdue"],
    }


def _assert_equal(answer: StatsPublic, expected: dict[str, Any]) -> None:
    cells = {k: _expected_devices(c) for k, c in expected["cells"].items()}
    cells = {k: c for k, c in cells.items() if c["by_type"] or c["registered"]}
    assert {(c.district, c.org): _devices_of(c.devices) for c in answer.by_district_org} == cells
    for org in answer.by_org:
        s = expected["sharing"].get(org.org)
        waits = s["waits"] if s else []
        assert org.sharing.model_dump() == {
            "requested": s["requested"] if s else 0, "granted": len(waits), "refused": s["refused"] if s else 0,
            "pending": s["pending"] if s else 0, "median_approval_seconds": statistics.median(waits) if waits else None,
        }, org.org  # fmt: skip
        c = expected["catalog"].get(org.org, Counter())
        assert (org.catalog.total, org.catalog.new) == (c["total"], c["new"])
        assert org.catalog.by_status == {s: c[s] for s in ("draft", "published", "deprecated")}
        assert org.catalog.by_share_condition == {k: c[k] for k in ("unconditional", "conditional", "not_shareable")}
    all_waits = [w for s in expected["sharing"].values() for w in s["waits"]]
    assert answer.totals.sharing.median_approval_seconds == (statistics.median(all_waits) if all_waits else None)
    totals = answer.totals.devices
    assert totals.total == sum(
        sum(sum(c.values()) for c in cell["by_type"].values()) for cell in expected["cells"].values()
    )
    assert totals.inspections_overdue == sum(cell["overdue"] for cell in expected["cells"].values())


@pytest.fixture
def mirror_engine(database_url: str) -> Iterator[Engine]:
    engine = create_mirror_engine(database_url)
    yield engine
    engine.dispose()


def test_indicators_of_past_and_current_periods_equal_a_recount_of_random_histories(mirror_engine: Engine) -> None:
    rnd = random.Random(20_250_501)
    now = block_time(BLOCKS)
    mirror = Mirror(_histories(rnd), _requests(rnd, now), _entries(rnd))
    _write(mirror_engine, mirror)
    periods = [stats.month_period(m) for m in ("2025-01", "2025-02", "2025-03", "2025-04")]
    periods.append(stats.days_period(date(2025, 2, 10), date(2025, 3, 5)))
    cases = [(p, None, None) for p in periods] + [
        (periods[1], 110105, None),
        (periods[2], None, 2),
        (periods[3], 110108, 1),
    ]
    with mirror_engine.connect() as conn:
        for period, district, org_id in cases:
            org = {o: code for o, code, _, _ in ORGS}.get(org_id) if org_id else None
            answer = stats.compute_stats(conn, period, now, OVERDUE_DAYS, district=district, org=org)
            expected = _recount(mirror, period, now, district, org_id)
            _assert_equal(answer, expected)
            assert answer.period.complete == (now >= period.end)
    # the recount is not trivially empty: each month saw registrations, changes, grants and overdue devices
    assert all(_recount(mirror, p, now, None, None)["sharing"] for p in periods)


def test_periods_are_beijing_calendar_months_and_days() -> None:
    may = stats.month_period("2025-05")
    assert (may.first_day, may.last_day) == (date(2025, 5, 1), date(2025, 5, 31))
    assert datetime.fromtimestamp(may.start, UTC) == datetime(2025, 4, 30, 16, tzinfo=UTC)
    assert may.end - may.start == 31 * DAY
    december = stats.month_period("2024-12")
    assert december.last_day == date(2024, 12, 31) and december.end == stats.month_period("2025-01").start
    assert stats.days_period(date(2025, 2, 28), date(2025, 3, 1)).end - stats.month_period("2025-03").start == DAY
    for bad in ("2025-13", "2025-5", "May", "1969-12"):
        with pytest.raises(stats.StatsError) as caught:
            stats.month_period(bad)
        assert caught.value.field == "month"


# ---------------------------------------------------------------- through the API, over the chain


def _ledger_month(api: Api) -> str:
    latest = api.w3.eth.get_block("latest")["timestamp"]
    return datetime.fromtimestamp(latest, stats.CITY_TZ).strftime("%Y-%m")


def _advance(api: Api, seconds: int) -> None:
    api.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    api.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    api.sync()


def _settled(api: Api, path: str, body: dict[str, Any], org: str = "BJ-PSB") -> dict[str, Any]:
    answer = api.post(path, body, org)
    assert answer.status_code == 202, answer.text
    op = api.settle(answer.json()["operation_id"], org)
    assert op["status"] == "confirmed", op
    return op


def test_a_month_of_registrations_changes_catalog_and_sharing_is_counted_per_district_and_org(api: Api) -> None:
    psb = [device(i, district=110105, status="active") for i in range(1, 4)]
    psb.append(device(4, district=110101, status="planned", location={"lat": 39.91, "lon": 116.40}))
    api.register(psb)
    api.register([device(10, district=110105, status="planned")], org="BJ-CY")
    _settled(api, f"/v1/devices/{psb[0]['code']}/lifecycle", {"action": "suspend", "note": "pole repair"})
    entry_id = create_entry(api, entry())
    granted = request_grant(api, entry_id)
    for index in (0, 1):
        _settled(api, f"/v1/sharing-requests/{granted}/approvals", signed(api, granted, approver(api, index=index)))
    request_grant(api, entry_id, requester="BJ-EMB")  # stays pending

    answer = api.get("/v1/stats", params={"month": _ledger_month(api)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    totals = body["totals"]
    assert totals["devices"]["total"] == 5 and totals["devices"]["registered"] == 5
    assert totals["devices"]["by_status"] == {"planned": 2, "active": 2, "suspended": 1, "replaced": 0, "retired": 0}
    assert totals["devices"]["by_type"] == {"camera.road": {"planned": 2, "active": 2, "suspended": 1}}
    assert totals["devices"]["inspections_overdue"] == 0  # all registered minutes ago
    assert (totals["catalog"]["total"], totals["catalog"]["new"]) == (1, 1)
    assert totals["catalog"]["by_status"]["published"] == 1
    sharing = totals["sharing"]
    assert (sharing["requested"], sharing["granted"], sharing["refused"], sharing["pending"]) == (2, 1, 0, 1)
    assert sharing["median_approval_seconds"] is not None and sharing["median_approval_seconds"] >= 0
    cells = {(c["district"], c["org"]): c["devices"]["total"] for c in body["by_district_org"]}
    assert cells == {(110101, "BJ-PSB"): 1, (110105, "BJ-PSB"): 3, (110105, "BJ-CY"): 1}
    districts = {d["district"]: d for d in body["by_district"]}
    assert districts[110105]["name"] == "朝阳区" and districts[110105]["devices"]["total"] == 4
    assert len(districts) == 16 and districts[110119]["devices"]["total"] == 0  # every district, even without devices
    orgs = {o["org"]: o for o in body["by_org"]}
    assert orgs["BJ-PSB"]["devices"]["total"] == 4 and orgs["BJ-PSB"]["sharing"]["granted"] == 1
    assert orgs["BJ-CY"]["devices"]["by_status"]["planned"] == 1 and orgs["BJ-CY"]["catalog"]["total"] == 0

    narrowed = api.get("/v1/stats", "BJ-CMC", params={"district": 110105, "org": "BJ-PSB"}).json()
    assert narrowed["totals"]["devices"]["total"] == 3 and [o["org"] for o in narrowed["by_org"]] == ["BJ-PSB"]
    assert [d["district"] for d in narrowed["by_district"]] == [110105]

    csv_answer = api.get("/v1/stats/report.csv", params={"month": _ledger_month(api)})
    assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith("text/csv")
    assert f"report-{_ledger_month(api)}.csv" in csv_answer.headers["content-disposition"]
    lines = csv_answer.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("period,level,district,district_name,org,org_name,devices_total")
    assert sum(line.split(",")[1] == "district_org" for line in lines[1:]) == 3
    html = api.get("/v1/stats/report.html").text
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2 and "朝阳区" in html


def test_overdue_inspections_follow_the_ledger_time(api: Api) -> None:
    cameras = [device(i, status="active") for i in range(1, 4)]
    api.register(cameras)
    _advance(api, 91 * DAY)
    late = api.get("/v1/stats", params={"month": _ledger_month(api)}).json()
    assert late["totals"]["devices"]["inspections_overdue"] == 3 and late["overdue_days"] == 90
    assert api.get("/v1/stats", params={"overdue_days": 120}).json()["totals"]["devices"]["inspections_overdue"] == 0

    # inspected at the advanced chain time: straight to the contract (the API refuses times ahead of its clock)
    chain_time = api.w3.eth.get_block("latest")["timestamp"]
    registry_call(api.w3, api.chain, "recordInspection", cameras[0]["code"], 0, chain_time, b"\x01" * 32, "ok")
    _settled(api, f"/v1/devices/{cameras[1]['code']}/lifecycle", {"action": "suspend", "note": ""})
    now = api.get("/v1/stats").json()
    assert now["totals"]["devices"]["inspections_overdue"] == 1  # inspected, suspended, and one still overdue
    # the month of registration, counted as of its end: nothing was 90 days old then
    first_month = datetime.fromtimestamp(api.w3.eth.get_block(1)["timestamp"], stats.CITY_TZ).strftime("%Y-%m")
    if first_month != _ledger_month(api):
        before = api.get("/v1/stats", params={"month": first_month}).json()
        assert before["period"]["complete"] and before["totals"]["devices"]["inspections_overdue"] == 0
        assert before["totals"]["devices"]["by_status"]["active"] == 3  # the later suspension is not counted


def test_bad_periods_and_filters_are_refused_with_codes(api: Api) -> None:
    def refused(params: dict[str, Any]) -> tuple[int, str, str | None]:
        answer = api.get("/v1/stats", params=params)
        return answer.status_code, answer.json()["code"], answer.json().get("field")

    future = (datetime.now(stats.CITY_TZ) + timedelta(days=400)).strftime("%Y-%m")
    assert refused({"month": "2025-13"}) == (422, "BAD_MONTH", "month")
    assert refused({"month": "2025-05", "from": "2025-05-01"}) == (422, "CONFLICTING_PERIOD", "month")
    assert refused({"from": "2025-05-01"}) == (422, "BAD_PERIOD", "to")
    assert refused({"from": "2025-05-10", "to": "2025-05-01"}) == (422, "BAD_PERIOD", "to")
    assert refused({"from": "May 1st", "to": "2025-05-02"})[::2] == (422, "from")
    assert refused({"org": "NOBODY"}) == (422, "UNKNOWN_ORG", "org")
    assert refused({"district": 42})[::2] == (422, "district")
    assert refused({"overdue_days": 0})[::2] == (422, "overdue_days")
    assert refused({"month": future}) == (422, "PERIOD_NOT_STARTED", "month")
    assert api.client.get("/v1/stats").status_code == 401
    assert api.get("/v1/stats/report.csv", params={"month": "2025-13"}).json()["code"] == "BAD_MONTH"
