"""The catalog API against anvil and each database: filing, full-text search of Chinese titles, facets, lineage."""

from __future__ import annotations

from registry_api.search import segment, to_query
from tests.registry_api.catalog_support import create_entry, entry, register_camera
from tests.registry_api.support import Api


def test_segment_splits_chinese_into_bigrams_and_keeps_other_words() -> None:
    assert segment("卡口过车流量（小时统计）PM2.5") == "卡口 口过 过车 车流 流量 小时 时统 统计 pm2 5"
    assert to_query("过车 PM", postgres=False) == ('"过车" "pm"*', [])
    assert to_query("车流量", postgres=True) == ("('车流' <-> '流量')", [])
    assert to_query("车", postgres=False) == (None, ["车"])


def test_search_finds_chinese_titles_by_a_word_with_facets(api: Api) -> None:
    camera = register_camera(api)
    traffic = create_entry(api, entry(device_codes=[camera]))
    create_entry(
        api,
        entry(
            "空气质量监测站小时数据",
            classification="城市脉搏/环境空气质量",
            grade=1,
            share_condition="unconditional",
            forms=["raw", "desensitized", "result_only"],
        ),
        org="BJ-EIB",
    )
    create_entry(api, entry("人脸抓拍点位分布", grade=4, share_condition="not_shareable", forms=["result_only"]))

    found = api.get("/v1/catalog", params={"q": "过车"}).json()
    assert [e["id"] for e in found["data"]] == [traffic] and found["count"] == 1
    assert found["data"][0]["title"] == "卡口过车流量（小时统计）"
    assert found["data"][0]["device_codes"] == [camera] and found["data"][0]["version"] == "1.0"
    assert api.get("/v1/catalog", params={"q": "车流量"}).json()["count"] == 1
    assert api.get("/v1/catalog", params={"q": "车"}).json()["count"] == 1  # one character: substring match
    assert api.get("/v1/catalog", params={"q": "流车"}).json()["count"] == 0

    hourly = api.get("/v1/catalog", params={"q": "小时"}).json()
    assert hourly["count"] == 2
    facets = hourly["facets"]
    assert {f["value"]: f["count"] for f in facets["owner"]} == {"BJ-PSB": 1, "BJ-EIB": 1}
    assert {f["value"]: f["count"] for f in facets["grade"]} == {"3": 1, "1": 1}
    assert {f["value"]: f["count"] for f in facets["share_condition"]} == {"conditional": 1, "unconditional": 1}
    assert {f["value"]: f["count"] for f in facets["form"]} == {"desensitized": 2, "result_only": 2, "raw": 1}
    assert {f["value"] for f in facets["classification"]} == {"城市影像/交通卡口", "城市脉搏/环境空气质量"}

    everything = api.get("/v1/catalog").json()
    assert everything["count"] == 3
    assert {f["value"]: f["count"] for f in everything["facets"]["share_condition"]}["not_shareable"] == 1
    assert api.get("/v1/catalog", params={"classification": "城市影像"}).json()["count"] == 2
    assert api.get("/v1/catalog", params={"form": "raw"}).json()["count"] == 1
    assert api.get("/v1/catalog", params={"device": camera}).json()["data"][0]["id"] == traffic


def test_lineage_to_an_unknown_device_is_refused(api: Api) -> None:
    camera = register_camera(api)
    answer = api.post("/v1/catalog", entry(device_codes=[camera, "BJ-CAMR-110105999999"]))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "UNKNOWN_DEVICE" and body["field"] == "device_codes[1]"
    assert body["contract_error"]["name"] == "CatalogUnknownDevice"
    upstream = api.post("/v1/catalog", entry(upstream=[42]))
    assert upstream.status_code == 422 and upstream.json()["code"] == "UNKNOWN_UPSTREAM"
    assert upstream.json()["field"] == "upstream[0]"


def test_schema_the_zone_cannot_honour_is_refused_before_signing(api: Api) -> None:
    fields = [{"name": "caller_phone", "type": "string", "personal": True, "mask": "rot13"}]
    answer = api.post("/v1/catalog", entry(schema={"fields": fields}))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "schema.fields[0].mask"
    budget = api.post("/v1/catalog", entry(schema={"fields": [], "disclosure": {"epsilon_budget": -1}}))
    assert budget.status_code == 422, budget.text
    assert (budget.json()["code"], budget.json()["field"]) == ("INVALID_DISCLOSURE", "schema.disclosure.epsilon_budget")
    no_fields = api.post("/v1/catalog", entry(schema={"columns": []}))
    assert no_fields.status_code == 422 and no_fields.json()["field"] == "schema.fields"


def test_revisions_versions_status_and_lineage_both_ways(api: Api) -> None:
    camera = register_camera(api)
    base = create_entry(api, entry(device_codes=[camera]))
    derived = create_entry(api, entry("城市运行综合指数（日）", upstream=[base], publish=False), org="BJ-CMC")
    revised = api.patch(f"/v1/catalog/{base}", {**entry("卡口过车流量（小时）", device_codes=[camera]), "major": True})
    assert revised.status_code == 422  # publish is not a member of a revision
    body = {k: v for k, v in entry("卡口过车流量（小时）", device_codes=[camera]).items() if k != "publish"}
    answer = api.patch(f"/v1/catalog/{base}", {**body, "major": True})
    assert answer.status_code == 202, answer.text
    assert api.settle(answer.json()["operation_id"])["status"] == "confirmed"
    versions = api.get(f"/v1/catalog/{base}/versions").json()
    assert [v["version"] for v in versions["data"]] == ["1.0", "2.0"]
    assert versions["data"][1]["title"] == "卡口过车流量（小时）" and versions["data"][0]["tx_hash"]

    not_owner = api.post(f"/v1/catalog/{base}/status", {"status": "deprecated"}, org="BJ-CMC")
    assert not_owner.status_code == 403 and not_owner.json()["code"] == "ENTRY_NOT_OWNED"
    assert api.get(f"/v1/catalog/{derived}").status_code == 404  # another org's draft
    published = api.post(f"/v1/catalog/{derived}/status", {"status": "published"}, org="BJ-CMC")
    assert api.settle(published.json()["operation_id"], "BJ-CMC")["status"] == "confirmed"
    again = api.post(f"/v1/catalog/{derived}/status", {"status": "published"}, org="BJ-CMC")
    assert again.status_code == 409 and again.json()["code"] == "ILLEGAL_STATUS"

    lineage = api.get(f"/v1/catalog/{base}/lineage").json()
    assert [(d["ref"], d["owner_org"], d["status"]) for d in lineage["devices"]] == [(camera, "BJ-PSB", "active")]
    assert [d["ref"] for d in lineage["downstream"]] == [str(derived)]
    up = api.get(f"/v1/catalog/{derived}/lineage").json()["upstream"]
    assert up[0]["ref"] == str(base) and up[0]["title"] == "卡口过车流量（小时）"
    assert api.get("/v1/catalog/999").json()["code"] == "ENTRY_NOT_FOUND"
