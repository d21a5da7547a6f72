"""Demo data of the dev profile, filed through the public API as the departments would file it.

A deterministic fleet of devices per owner org, a realistic data catalog linked to them (traffic checkpoint
counts, air quality, water-pipe pressure, flooding, 12345 hotline complaints, ...), and sharing requests:
some pending, one granted by its owner's approver signing the EIP-712 decision locally.
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from typing import Any

import httpx

from chain_gateway.devnet import DEMO_CODE_RULES
from chain_gateway.eip712 import sign_typed_data
from registry_api.city import DISTRICTS
from registry_api.zone.algorithms import BUILTIN_ALGORITHMS

__all__ = [
    "DEMO_ADMISSIONS",
    "DEMO_CATALOG",
    "DEMO_FLEET",
    "DEMO_REQUESTS",
    "DemoFilingError",
    "demo_devices",
    "file_demo_data",
]

# Which demo org files which device types (lead departments own imagery / city management sensors).
DEMO_FLEET: dict[str, tuple[str, ...]] = {
    "BJ-PSB": ("camera.road", "camera.checkpoint", "camera.face"),
    "BJ-CMC": ("sensor.water-pressure", "sensor.gas"),
    "BJ-EMB": ("sensor.flood",),
    "BJ-EIB": ("sensor.air",),
    "BJ-CY": ("camera.road", "sensor.traffic"),
}
VENDORS = {
    "camera": [("海康威视", "DS-2CD3T47G2"), ("大华", "DH-IPC-HFW5442"), ("宇视", "IPC2124SR3")],
    "sensor": [("聚光科技", "AQMS-900"), ("汉威科技", "HW-P100"), ("威胜信息", "WS-IOT-3")],
}


def _field(name: str, kind: str, **rule: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **rule}


# (owner, entry without lineage, device types whose demo devices are its lineage). Entry ids follow this
# order on the fresh dev chain (1, 2, ...), which `upstream` relies on.
DEMO_CATALOG: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...] = (
    (
        "BJ-PSB",
        {
            "title": "卡口过车流量（小时统计）",
            "classification": "城市影像/交通卡口",
            "grade": 3,
            "share_condition": "conditional",
            "forms": ["desensitized", "result_only"],
            "schema": {
                "fields": [
                    _field("hour", "datetime"),
                    _field("checkpoint_code", "string"),
                    _field("direction", "string"),
                    _field("vehicle_count", "integer"),
                    _field("plate_number", "string", personal=True, mask="hash"),
                ]
            },
        },
        ("camera.checkpoint",),
    ),
    (
        "BJ-EIB",
        {
            "title": "空气质量监测站小时数据",
            "classification": "城市脉搏/环境空气质量",
            "grade": 1,
            "share_condition": "unconditional",
            "forms": ["raw", "desensitized", "result_only"],
            "schema": {
                "fields": [
                    _field("hour", "datetime"),
                    _field("station_code", "string"),
                    _field("pm25", "number", unit="µg/m³"),
                    _field("pm10", "number", unit="µg/m³"),
                    _field("no2", "number", unit="µg/m³"),
                    _field("aqi", "integer"),
                ]
            },
        },
        ("sensor.air",),
    ),
    (
        "BJ-CMC",
        {
            "title": "供水管网压力监测",
            "classification": "城市脉搏/供水管网",
            "grade": 2,
            "share_condition": "conditional",
            "forms": ["raw", "result_only"],
            "schema": {
                "fields": [
                    _field("time", "datetime"),
                    _field("sensor_code", "string"),
                    _field("pressure_mpa", "number", unit="MPa"),
                ]
            },
        },
        ("sensor.water-pressure",),
    ),
    (
        "BJ-EMB",
        {
            "title": "城市积水点监测告警",
            "classification": "城市脉搏/内涝积水",
            "grade": 2,
            "share_condition": "conditional",
            "forms": ["raw", "desensitized", "result_only"],
            "schema": {
                "fields": [
                    _field("time", "datetime"),
                    _field("sensor_code", "string"),
                    _field("water_depth_cm", "number", unit="cm"),
                    _field("alarm_level", "integer"),
                ]
            },
        },
        ("sensor.flood",),
    ),
    (
        "BJ-CY",
        {
            "title": "朝阳区12345热线诉求工单",
            "classification": "城市体征/热线诉求",
            "grade": 4,
            "share_condition": "conditional",
            "forms": ["result_only"],
            "schema": {
                "fields": [
                    _field("received_at", "datetime"),
                    _field("category", "string"),
                    _field("street", "string"),
                    _field("caller_name", "string", personal=True, mask="drop"),
                    _field("caller_phone", "string", personal=True, mask="keep_last_4"),
                    _field("content", "text", personal=True, mask="drop"),
                ]
            },
        },
        (),
    ),
    (
        "BJ-PSB",
        {
            "title": "人脸抓拍点位分布",
            "classification": "城市影像/人脸抓拍",
            "grade": 4,
            "share_condition": "not_shareable",
            "forms": ["result_only"],
            "schema": {"fields": [_field("point_code", "string"), _field("district", "integer")]},
        },
        ("camera.face",),
    ),
    (
        "BJ-CMC",
        {
            "title": "城市运行综合指数（日）",
            "classification": "城市体征/运行指数",
            "grade": 2,
            "share_condition": "conditional",
            "forms": ["result_only"],
            "schema": {"fields": [_field("day", "date"), _field("district", "integer"), _field("index", "number")]},
            "upstream": [1, 2, 3],
        },
        (),
    ),
)

# (requester, entry id, form, purpose, days, approvals by the owner's approvers to sign now)
DEMO_REQUESTS: tuple[tuple[str, int, str, str, int, int], ...] = (
    ("BJ-CMC", 1, "desensitized", "交通拥堵治理：主干道早晚高峰流量分析", 90, 0),
    ("CO-ZHCS", 2, "raw", "智慧出行应用：空气质量出行提示", 365, 0),
    ("CO-ZHCS", 1, "result_only", "城市交通研究：区域流量模型", 180, 2),
    ("BJ-EMB", 5, "result_only", "汛期热线诉求与积水点关联分析", 60, 0),
    ("BJ-EMB", 3, "raw", "汛期供水管网压力异常联动处置", 120, 1),
)


# The built-in zone algorithms are submitted by the platform (BJ-EIB), evaluated and listed by a reviewer of
# another org (BJ-PSB); each entry's owner then admits the ones that fit its data: entry id -> algorithm names.
DEMO_ALGORITHM_SUBMITTER, DEMO_ALGORITHM_REVIEWER = "BJ-EIB", "BJ-PSB"
DEMO_ADMISSIONS: dict[int, tuple[str, ...]] = {
    1: ("grouped_count", "histogram", "top_k"),
    2: ("grouped_count", "mean", "histogram", "quantile"),
    3: ("mean", "histogram"),
    4: ("grouped_count", "mean"),
    5: ("grouped_count", "top_k"),
    7: ("mean",),
}


def demo_devices(count: int, seed: int = 2026) -> dict[str, list[dict[str, Any]]]:
    """A deterministic, realistic set of demo devices per owner org, in the API's device format."""
    rng = random.Random(seed)
    prefixes = {rule[1]: rule[2] for rule in DEMO_CODE_RULES}
    fleet: dict[str, list[dict[str, Any]]] = {org: [] for org in DEMO_FLEET}
    owners = list(DEMO_FLEET)
    chaoyang = next(d for d in DISTRICTS if d.code == 110105)
    for serial in range(1, count + 1):
        org = owners[(serial - 1) % len(owners)]
        dtype = rng.choice(DEMO_FLEET[org])
        district = chaoyang if org == "BJ-CY" else rng.choice(DISTRICTS)
        min_lon, min_lat, max_lon, max_lat = district.bbox
        vendor, model = rng.choice(VENDORS[dtype.split(".")[0]])
        fleet[org].append(
            {
                "code": f"{prefixes[dtype]}{district.code}{serial:06d}",
                "type": dtype,
                "district": district.code,
                "location": {
                    "lat": round(rng.uniform(min_lat, max_lat), 6),
                    "lon": round(rng.uniform(min_lon, max_lon), 6),
                },
                "built_at": (date(2018, 1, 1) + timedelta(days=rng.randrange(0, 2500))).isoformat(),
                "status": "active" if rng.random() > 0.1 else "planned",
                "attributes": {"vendor": vendor, "model": model, "network": "政务外网", "power": "市电"},
            }
        )
    return fleet


class DemoFilingError(RuntimeError):
    """The API refused a piece of demo data (printed by the dev profile; the API keeps running)."""


def _wait_confirmed(client: httpx.Client, token: str, response: httpx.Response, timeout: float = 60.0) -> None:
    if response.status_code != 202:
        raise DemoFilingError(f"{response.request.url.path}: {response.status_code} {response.text}")
    operation = response.json()["operation_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/operations/{operation}", headers={"Authorization": f"Bearer {token}"}).json()
        if body["status"] == "confirmed":
            return
        if body["status"] == "failed":
            raise DemoFilingError(f"operation {operation} failed: {body.get('error')}")
        time.sleep(0.25)
    raise DemoFilingError(f"operation {operation} not confirmed within {timeout} s")


def _wait_indexed(client: httpx.Client, token: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(path, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.25)
    raise DemoFilingError(f"{path} not indexed within {timeout} s")


def _wait_members(client: httpx.Client, orgs: dict[str, Any], timeout: float = 60.0) -> None:
    """Until the indexer has mirrored every demo org with its roles: the API refuses a write (ORG_UNKNOWN) before."""
    deadline = time.monotonic() + timeout
    waiting = dict(orgs)
    while waiting and time.monotonic() < deadline:
        for code, org in list(waiting.items()):
            me = client.get("/v1/me", headers={"Authorization": f"Bearer {org['token']}"})
            if me.status_code == 200 and me.json()["org_active"] and set(org["roles"]) <= set(me.json()["roles"]):
                del waiting[code]
        if waiting:
            time.sleep(0.25)
    if waiting:
        raise DemoFilingError(f"orgs not mirrored with their roles within {timeout} s: {sorted(waiting)}")


def file_demo_data(api_url: str, credentials: dict[str, Any], device_count: int) -> str:
    """File devices, catalog, requests and one signed approval through the API; returns a summary line."""
    orgs = credentials["orgs"]

    def auth(org: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {orgs[org]['token']}"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    with httpx.Client(base_url=api_url, timeout=30) as client:
        _wait_members(client, orgs)
        fleet = demo_devices(device_count)
        for org, devices in fleet.items():
            response = client.post("/v1/devices", json={"devices": devices}, headers=auth(org, f"demo-fleet-{org}"))
            _wait_confirmed(client, orgs[org]["token"], response)
        for number, (owner, entry, lineage_types) in enumerate(DEMO_CATALOG, start=1):
            codes = [d["code"] for d in fleet.get(owner, []) if d["type"] in lineage_types][:5]
            body = {**entry, "device_codes": codes, "publish": True}
            response = client.post("/v1/catalog", json=body, headers=auth(owner, f"demo-catalog-{number}"))
            _wait_confirmed(client, orgs[owner]["token"], response)
            _wait_indexed(client, orgs[owner]["token"], f"/v1/catalog/{number}")
        for number, (requester, entry_id, form, purpose, days, approvals) in enumerate(DEMO_REQUESTS, start=1):
            body = {"entry_id": entry_id, "form": form, "purpose": purpose, "duration_days": days}
            response = client.post("/v1/sharing-requests", json=body, headers=auth(requester, f"demo-request-{number}"))
            _wait_confirmed(client, orgs[requester]["token"], response)
            if approvals:
                owner = DEMO_CATALOG[entry_id - 1][0]
                _wait_indexed(client, orgs[owner]["token"], f"/v1/sharing-requests/{number}")
                for approver in orgs[owner]["approvers"][:approvals]:
                    typed = client.get(
                        f"/v1/sharing-requests/{number}/approval-typed-data",
                        params={"approver": approver["account"], "decision": "approve"},
                        headers=auth(owner),
                    ).json()
                    signature = sign_typed_data(approver["private_key"], typed)
                    response = client.post(
                        f"/v1/sharing-requests/{number}/approvals",
                        json={
                            "approver": approver["account"],
                            "signature": signature,
                            "nonce": typed["message"]["nonce"],
                            "deadline": typed["message"]["deadline"],
                        },
                        headers=auth(owner),
                    )
                    _wait_confirmed(client, orgs[owner]["token"], response)
        algorithms = _file_demo_algorithms(client, orgs)
        job = _run_demo_job(client, orgs)
        from registry_api.demo_reviews import file_demo_reviews  # here: demo_reviews builds on this module

        reviews = file_demo_reviews(client, orgs, fleet)
    return (
        f"demo data filed through the API: {device_count} devices, {len(DEMO_CATALOG)} catalog entries, "
        f"{len(DEMO_REQUESTS)} sharing requests (pending ones await their approvers' signatures), "
        f"{algorithms} listed zone algorithms admitted for {len(DEMO_ADMISSIONS)} entries; {job}; {reviews}"
    )


# A data-zone job of the dev profile: the company computes mean PM2.5 per station from the air-quality entry it
# was granted, and gets noisy aggregates only (and a usage receipt that the zone anchors on-chain).
DEMO_JOB = {
    "entry_id": 2,
    "algorithm": "mean",
    "params": {"column": "pm25", "bounds": [0, 500], "group_by": ["station_code"]},
    "epsilon": 0.5,
}


def _run_demo_job(client: httpx.Client, orgs: dict[str, Any], requester: str = "CO-ZHCS") -> str:
    headers = {"Authorization": f"Bearer {orgs[requester]['token']}"}
    listed = client.get("/v1/algorithms", params={"name": DEMO_JOB["algorithm"]}, headers=headers).json()["data"]
    body = {
        "entry_id": DEMO_JOB["entry_id"],
        "algorithm_id": listed[0]["id"],
        "params": DEMO_JOB["params"],
        "epsilon": DEMO_JOB["epsilon"],
    }
    deadline = time.monotonic() + 30.0
    while True:  # the admissions were confirmed; the indexer may still be a block behind
        response = client.post("/v1/zone/jobs", json=body, headers=headers)
        if response.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if response.status_code != 201:
        raise DemoFilingError(f"/v1/zone/jobs: {response.status_code} {response.text}")
    job = response.json()
    return (
        f"zone job {job['id']} by {requester}: {DEMO_JOB['algorithm']} over {len(job['result'].get('groups', []))} "
        f"stations, epsilon {job['epsilon_spent']:g} spent, receipt {job['receipt_id']}"
    )


def _file_demo_algorithms(client: httpx.Client, orgs: dict[str, Any]) -> int:
    """Submit, evaluate, list and admit the zone's built-in algorithms; returns how many were listed.

    Each step is sent for every algorithm at once and then awaited: the gateway orders one org's writes.
    """
    submitter, reviewer = orgs[DEMO_ALGORITHM_SUBMITTER]["token"], orgs[DEMO_ALGORITHM_REVIEWER]["token"]
    implementations = sorted(BUILTIN_ALGORITHMS.values(), key=lambda i: i.name)

    def wave(token: str, writes: list[tuple[str, dict[str, Any] | None, str | None]]) -> None:
        responses = []
        for path, body, key in writes:
            headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
            responses.append(client.post(path, json=body, headers=headers))
        for response in responses:
            _wait_confirmed(client, token, response)

    wave(
        submitter,
        [
            (
                "/v1/algorithms",
                {"name": i.name, "version": i.version, "code_hash": i.code_hash, "outputs": dict(i.outputs)},
                f"demo-algorithm-{i.name}-{i.version}",
            )
            for i in implementations
        ],
    )
    ids = {i.name: _wait_listed(client, submitter, f"/v1/algorithms?name={i.name}", i.version) for i in implementations}
    checks = ["输出仅含聚合结果", "无逐行数据外泄"]
    wave(
        reviewer,
        [
            (
                f"/v1/algorithms/{ids[name]}/evaluations",
                {"report": {"algorithm": name, "checks": checks}, "score": 88},
                None,
            )
            for name in ids
        ],
    )
    wave(reviewer, [(f"/v1/algorithms/{ids[name]}/listing", None, None) for name in ids])
    for entry_id, names in DEMO_ADMISSIONS.items():
        owner = orgs[DEMO_CATALOG[entry_id - 1][0]]["token"]
        admissions = [
            (f"/v1/catalog/{entry_id}/algorithms", {"algorithm_id": ids[name]}, f"demo-admit-{entry_id}-{name}")
            for name in names
        ]
        wave(owner, admissions)
    return len(ids)


def _wait_listed(client: httpx.Client, token: str, path: str, version: str, timeout: float = 30.0) -> int:
    """The id of the mirrored algorithm of `version` found at `path`, once the indexer has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path, headers={"Authorization": f"Bearer {token}"}).json()
        for item in body.get("data", []):
            if item["version"] == version:
                return int(item["id"])
        time.sleep(0.25)
    raise DemoFilingError(f"{path} not indexed within {timeout} s")
