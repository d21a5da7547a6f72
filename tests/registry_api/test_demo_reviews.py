"""The dev profile's demo carriers and review project, filed through a live API: the reviewer sees the existing demo
camera 30 m from the planned one and the pole the other one will be mounted on."""

from __future__ import annotations

import httpx
import pytest
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.auth import issue_token
from registry_api.demo import demo_devices
from registry_api.demo_reviews import DEMO_APPLICANT, file_demo_reviews
from tests.registry_api.live import blocks, scheduled, serve, wait_until

ORGS = ("BJ-PSB", "BJ-CMC", "BJ-CY")


def test_demo_files_carriers_a_reuse_request_and_a_review_project_next_to_a_demo_camera(
    api_settings: Settings, chain: SeededConsortium, w3: Web3
) -> None:
    camera = next(d for d in demo_devices(10)["BJ-PSB"] if d["type"].startswith("camera."))
    fleet = {"BJ-PSB": [camera]}
    with serve(scheduled(api_settings)) as (url, app), blocks(w3):
        orgs = {code: {"token": issue_token(app.state.engine, code, chain.orgs[code].account, "demo")} for code in ORGS}
        with httpx.Client(base_url=url, timeout=30) as client:

            def get(path: str, org: str = "BJ-PSB") -> httpx.Response:
                return client.get(path, headers={"Authorization": f"Bearer {orgs[org]['token']}"})

            registered = client.post(
                "/v1/devices", json=camera, headers={"Authorization": f"Bearer {orgs['BJ-PSB']['token']}"}
            )
            assert registered.status_code == 202, registered.text
            wait_until(lambda: get(f"/v1/devices/{camera['code']}").status_code, lambda status: status == 200)

            summary = file_demo_reviews(client, orgs, fleet)
            project_id = int(summary.split("review project ")[1].split()[0])
            review = get(f"/v1/reviews/{project_id}").json()
            carriers = get("/v1/carriers").json()
            reuse = get("/v1/carrier-reuse-requests", DEMO_APPLICANT).json()

    assert (review["status"], review["applicant_org"], review["lead_org"]) == ("filed", DEMO_APPLICANT, "BJ-PSB")
    first, second = review["devices"]
    assert [(d["code"], d["distance_m"]) for d in first["nearby_devices"]] == [
        (camera["code"], pytest.approx(30, abs=0.5))
    ]
    assert first["type"] == second["type"] == camera["type"]
    pole = f"BJ-POLE-{camera['district']}-900001"
    assert second["carrier"] == pole and [c["code"] for c in second["nearby_carriers"]][0] == pole
    assert carriers["count"] == 4
    assert [(r["carrier_code"], r["status"]) for r in reuse["data"]] == [(pole, "requested")]
