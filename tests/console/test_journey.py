"""The console end to end, as three people use it on one morning (issue 10's journey), one screenshot per step:

1. a district registrar (BJ-CY) logs in and registers a camera;
2. the city management commission (BJ-CMC) asks, on the catalog page, for desensitized use of public security's
   checkpoint counts (grade 3: two approvals);
3. public security (BJ-PSB) opens its inbox; two approvers each load their own keystore file and sign the
   EIP-712 approval in the page; the contract checks both signatures and the grant becomes active;
4. the requester sees the grant, and finds the new camera on the city map.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.console.actions import approve_in_page, log_out, unlock_keystore
from tests.console.conftest import Console, login, screenshot

CODE = "BJ-CAMR-110105732001"  # unique among the console tests, which share one chain per worker
PURPOSE = "控制台全流程 console journey: 卡口过车与城管事件关联分析"
ENTRY = 1  # BJ-PSB's checkpoint counts: grade 3, two approvals
WAIT_S = 60.0


def api(console: Console, org: str, path: str, **params: Any) -> Any:
    with httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token(org)}"}) as client:
        answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def request_id_by_purpose(console: Console) -> int:
    """The id the chain gave the journey's request, once the indexer has mirrored it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        mine = api(console, "BJ-CMC", "/v1/sharing-requests", entry=ENTRY, requester="BJ-CMC", limit=100)["data"]
        found = [r["id"] for r in mine if r["purpose"] == PURPOSE]
        if found:
            return int(found[0])
        time.sleep(0.2)
    raise AssertionError("the journey's request was not mirrored")


def test_register_request_approve_in_the_page_see_the_grant_and_find_the_device_on_the_map(
    page: Page, console: Console
) -> None:
    # 1. the registrar registers a camera and follows it to the chain
    login(page, console, "BJ-CY", at="register")
    page.get_by_label("Type").select_option("camera.road")
    page.get_by_label("District").select_option("110105")
    page.get_by_label("Code").fill(CODE)
    page.get_by_label("Latitude").fill("39.9288")
    page.get_by_label("Longitude").fill("116.4560")
    page.get_by_label("Built on").fill("2025-06-30")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#register-status .operation")).to_have_attribute("data-status", "confirmed")
    screenshot(page, "journey_1_registered")
    device = api(console, "BJ-CY", f"/v1/devices/{CODE}")
    assert device["owner_org"] == "BJ-CY" and device["tx_hash"]
    log_out(page)

    # 2. the requester asks for the entry in the form it needs
    login(page, console, "BJ-CMC", at=f"catalog/{ENTRY}")
    access = page.get_by_role("region", name="access")
    access.get_by_label("Form").select_option("desensitized")
    access.get_by_label("Purpose").fill(PURPOSE)
    access.get_by_label("Duration (days)").fill("90")
    access.get_by_role("button", name="Request access").click()
    expect(access.locator(".operation[data-status='confirmed']")).to_be_visible()
    expect(access.locator("#entry-requests tbody tr", has_text=PURPOSE)).to_contain_text("pending")
    screenshot(page, "journey_2_requested")
    request_id = request_id_by_purpose(console)
    log_out(page)

    # 3. the owner's two approvers sign in the page, each with its own keystore file
    first, second = console.orgs["BJ-PSB"]["approvers"][:2]
    login(page, console, "BJ-PSB", at="inbox")
    expect(page.locator(f"#request-{request_id}")).to_contain_text("0 / 2")
    unlock_keystore(page, console, first["account"])
    outcome = approve_in_page(page, request_id)
    expect(outcome.locator("#recovered-signer")).to_have_text(first["account"])
    expect(outcome.locator("#decision-state")).to_contain_text("1 / 2")
    screenshot(page, "journey_3_first_signature")
    page.get_by_role("button", name="Forget key").click()
    unlock_keystore(page, console, second["account"])
    outcome = approve_in_page(page, request_id)
    grant = outcome.locator("#inbox-grant")
    expect(grant).to_contain_text("active")
    expect(grant).to_contain_text("desensitized")
    screenshot(page, "journey_4_granted")
    log_out(page)

    # the chain has both approvers' own signatures: the audit recovers each signer from the mirrored events
    audit = api(console, "AU-BJ", "/v1/audit/approvals", request_id=request_id)["data"]
    assert {e["provenance"]["signer"] for e in audit if e["provenance"]["verified"]} == {
        first["account"], second["account"]
    }  # fmt: skip

    # 4. the requester sees its grant, then finds the new camera on the map
    login(page, console, "BJ-CMC", at=f"catalog/{ENTRY}")
    mine = page.get_by_role("region", name="access").locator("#entry-requests tbody tr", has_text=PURPOSE)
    expect(mine).to_contain_text("granted")
    grants = api(console, "BJ-CMC", "/v1/grants", entry=ENTRY, requester="BJ-CMC", limit=100)["data"]
    granted = next(g for g in grants if g["id"] == request_id)
    assert granted["active"] and granted["form"] == "desensitized"

    page.get_by_role("link", name="地图 Map").click()
    expect(page.locator(".cluster-icon").first).to_be_visible()
    page.get_by_label("Find device").fill(CODE)
    page.get_by_role("button", name="Find").click()
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text(CODE)
    expect(popup).to_contain_text("camera.road")
    screenshot(page, "journey_5_on_the_map")
    popup.get_by_role("link", name=CODE).click()
    expect(page).to_have_url(re.compile(rf"#/device/{CODE}$"))
    expect(page.locator("#device-tx")).to_have_text(device["tx_hash"])
