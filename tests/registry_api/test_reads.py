"""Members, code rules, health, metrics and the OpenAPI docs."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from chain_gateway.devnet import DEMO_CODE_RULES, DEMO_ORGS, free_port
from chain_gateway.settings import Settings
from registry_api.app import create_app
from tests.registry_api.support import Api, device
from tests.support.postgres import PostgresServer


def test_members_list_orgs_with_accounts_and_roles(api: Api) -> None:
    page = api.get("/v1/members").json()
    assert page["count"] == len(DEMO_ORGS)
    by_code = {m["code"]: m for m in page["data"]}
    psb = by_code["BJ-PSB"]
    assert psb["name"] == "北京市公安局" and psb["kind"] == "department" and psb["active"] is True
    main = next(a for a in psb["accounts"] if a["address"] == api.chain.orgs["BJ-PSB"].account)
    assert set(main["roles"]) == {"ADMIN", "REGISTRAR", "REVIEWER"}
    approvers = [a for a in psb["accounts"] if a["roles"] == ["APPROVER"]]
    assert len(approvers) == 2
    assert by_code["CO-ZHCS"]["kind"] == "company"
    one = api.get("/v1/members/AU-BJ").json()
    assert one["kind"] == "auditor" and one["accounts"][0]["roles"] == ["AUDITOR"]
    missing = api.get("/v1/members/NOPE")
    assert missing.status_code == 404 and missing.json()["code"] == "MEMBER_NOT_FOUND"
    paged = api.get("/v1/members", params={"limit": 2, "offset": 2}).json()
    assert paged["count"] == len(DEMO_ORGS) and len(paged["data"]) == 2


def test_code_rules_give_a_regex_that_matches_their_example(api: Api) -> None:
    page = api.get("/v1/code-rules").json()
    assert page["count"] == len(DEMO_CODE_RULES)
    road = next(r for r in page["data"] if r["type"] == "camera.road")
    assert road == {
        "type": "camera.road",
        "type_id": 1,
        "prefix": "BJ-CAMR-",
        "length": 20,
        "charset": ["digits"],
        "pattern": r"^BJ\-CAMR\-[0-9]{12}$",
        "example": "BJ-CAMR-110105000001",
    }
    for rule in page["data"]:
        assert re.fullmatch(rule["pattern"], rule["example"]), rule
        assert not re.fullmatch(rule["pattern"], rule["example"] + "0")
    assert api.get("/v1/code-rules/sensor.gas").json()["prefix"] == "BJ-GASS-"
    assert api.get("/v1/code-rules/sensor.none").json()["code"] == "UNKNOWN_TYPE"
    # the example registers as is
    answer = api.post("/v1/devices", device(0, code=road["example"]))
    assert answer.status_code == 202, answer.text


def test_healthz_reports_database_chain_indexer_and_outbox(api: Api) -> None:
    api.post("/v1/devices", device(1))
    answer = api.client.get("/healthz")
    assert answer.status_code == 200
    health = answer.json()
    assert health["database"]["ok"] is True and health["chain"]["ok"] is True
    assert health["chain"]["head"] >= health["indexer"]["last_indexed_block"] > 0
    assert health["indexer"]["lag"] == health["chain"]["head"] - health["indexer"]["last_indexed_block"]
    assert health["outbox"]["queue_depth"] == 1 and health["outbox"]["by_status"]["queued"] == 1
    assert health["status"] == "ok"
    assert health["indexer"]["running_here"] is False and health["outbox"]["running_here"] is False


def test_healthz_is_503_when_the_chain_is_down(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rpc_urls": [f"http://127.0.0.1:{free_port()}"]})
    with TestClient(create_app(settings)) as client:
        answer = client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "down" and answer.json()["chain"]["ok"] is False
        assert answer.json()["database"]["ok"] is True


def test_writes_answer_503_chain_unavailable_when_the_node_is_gone(api: Api, api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"rpc_urls": [f"http://127.0.0.1:{free_port()}"]})
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/devices", json=device(1), headers=api.auth("BJ-PSB"))
        assert answer.status_code == 503
        assert answer.json()["code"] == "CHAIN_UNAVAILABLE"
        assert client.get("/v1/devices", headers=api.auth("BJ-PSB")).status_code == 200  # reads need no chain


def test_database_down_answers_503(api_settings: Settings, request: pytest.FixtureRequest) -> None:
    """The app's PostgreSQL database is dropped under it: reads answer 503 DATABASE_UNAVAILABLE, health 503."""
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = "gone_" + uuid.uuid4().hex[:12]
    settings = api_settings.model_copy(update={"database_url": postgres.create_database(name)})
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.engine.dispose()
        app.state.services.outbox_engine.dispose()
        with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        answer = client.get("/v1/devices", headers={"Authorization": "Bearer dct_anything"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "DATABASE_UNAVAILABLE"
        assert "Traceback" not in answer.text
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["database"]["ok"] is False


def test_metrics_count_requests_per_route_and_show_queue_and_lag(api: Api) -> None:
    api.get("/v1/devices")
    api.get("/v1/devices/BJ-CAMR-110105000009")
    api.post("/v1/devices", device(1))
    text = api.client.get("/metrics").text
    assert 'dirchain_http_requests_total{method="GET",route="/v1/devices",status="200"} 1.0' in text
    assert 'dirchain_http_requests_total{method="GET",route="/v1/devices/{code}",status="404"} 1.0' in text
    assert 'dirchain_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/devices"}' in text
    assert 'dirchain_gateway_queue_depth{status="queued"} 1.0' in text
    assert "dirchain_indexer_lag_blocks 0.0" in text
    assert "dirchain_indexer_checkpoint_block" in text


def test_openapi_docs_describe_the_surface(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    schema = api.client.get("/openapi.json").json()
    assert {t["name"] for t in schema["tags"]} >= {"devices", "operations", "members", "code rules", "health"}
    post = schema["paths"]["/v1/devices"]["post"]
    assert post["tags"] == ["devices"] and post["description"]
    assert {"202", "401", "403", "409", "422"} <= set(post["responses"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
