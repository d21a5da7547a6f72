"""The ledger (台账), device and register pages: filters and pages that match the API, a registration through the
form followed to its confirmation and into the device's on-chain trail, the API's refusals shown with their field,
and life-cycle and inspection writes from the device page.

Codes registered here use serials 7310xx, unique to this module (other modules share the chain of a worker).
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, login, screenshot

INDEX_TIMEOUT_S = 60.0


def api_get(console: Console, org: str, path: str, **params: Any) -> Any:
    """GET from the API as `org`, asserting a 200."""
    answer = httpx.get(f"{console.url}{path}", params=params, headers={"Authorization": f"Bearer {console.token(org)}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def register_by_api(console: Console, org: str, device: dict[str, Any]) -> dict[str, Any]:
    """Register a device through the API and wait until the mirror has it; returns GET /v1/devices/{code}."""
    headers = {"Authorization": f"Bearer {console.token(org)}"}
    with httpx.Client(base_url=console.url, headers=headers) as client:
        accepted = client.post("/v1/devices", json=device)
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + INDEX_TIMEOUT_S
        while time.monotonic() < deadline:
            found = client.get(f"/v1/devices/{device['code']}")
            if found.status_code == 200:
                body: dict[str, Any] = found.json()
                return body
            time.sleep(0.2)
    raise AssertionError(f"{device['code']} was not indexed within {INDEX_TIMEOUT_S} s")


def ledger_codes(page: Page) -> list[str]:
    return page.locator("#ledger-table tbody tr td:first-child").all_inner_texts()


def plural(count: int) -> str:
    return f"{count} device{'' if count == 1 else 's'}"


def test_ledger_filters_by_type_and_district_match_the_api_and_survive_a_reload(page: Page, console: Console) -> None:
    some = api_get(console, "BJ-PSB", "/v1/devices", limit=1)["data"][0]
    dtype, district = some["type"], some["district"]
    expected = api_get(console, "BJ-PSB", "/v1/devices", type=dtype, district=district, limit=20)
    assert expected["count"] >= 1
    login(page, console, "BJ-PSB", at="ledger")
    page.get_by_label("Type").select_option(dtype)
    expect(page).to_have_url(re.compile(rf"type={re.escape(dtype)}"))
    page.get_by_label("District").select_option(str(district))
    expect(page).to_have_url(re.compile(rf"district={district}"))
    expect(page.locator("#ledger-count")).to_have_text(plural(expected["count"]))
    assert ledger_codes(page) == [d["code"] for d in expected["data"]]
    everyone = api_get(console, "BJ-PSB", "/v1/devices", limit=1)["count"]
    assert expected["count"] < everyone, "the filter should narrow the ledger"
    screenshot(page, "ledger_filtered")

    page.reload()  # the filters live in the URL: a filtered view can be shared and reloaded
    expect(page.locator("#ledger-count")).to_have_text(plural(expected["count"]))
    expect(page.get_by_label("Type")).to_have_value(dtype)
    expect(page.get_by_label("District")).to_have_value(str(district))
    assert ledger_codes(page) == [d["code"] for d in expected["data"]]

    page.locator("#ledger-table tbody tr a").first.click()
    expect(page.locator("#device-code")).to_have_text(expected["data"][0]["code"])


def test_ledger_filters_by_owner_and_status_and_pages_through_the_answer(page: Page, console: Console) -> None:
    first = api_get(console, "BJ-PSB", "/v1/devices", limit=10, offset=0)
    second = api_get(console, "BJ-PSB", "/v1/devices", limit=10, offset=10)
    assert first["count"] > 10, "the demo data should fill more than one page of 10"
    login(page, console, "BJ-PSB", at="ledger")
    page.get_by_label("Per page").select_option("10")
    expect(page.locator("#ledger-count")).to_have_text(plural(first["count"]))
    expect(page.locator("#ledger-table tbody tr")).to_have_count(10)
    assert ledger_codes(page) == [d["code"] for d in first["data"]]
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"offset=10"))
    expect(page.locator(".pager")).to_contain_text(f"11–{min(20, first['count'])} of {first['count']}")
    assert ledger_codes(page) == [d["code"] for d in second["data"]]
    page.get_by_role("button", name="Previous").click()
    expect(page.locator(".pager")).to_contain_text(f"1–10 of {first['count']}")
    assert ledger_codes(page) == [d["code"] for d in first["data"]]

    owned = api_get(console, "BJ-PSB", "/v1/devices", owner="BJ-CY", status="active", limit=10)
    page.get_by_label("Owner").select_option("BJ-CY")
    page.get_by_label("Status").select_option("active")
    expect(page).to_have_url(re.compile(r"owner=BJ-CY.*status=active|status=active.*owner=BJ-CY"))
    expect(page.locator("#ledger-count")).to_have_text(plural(owned["count"]))
    assert ledger_codes(page) == [d["code"] for d in owned["data"]]
    owners = page.locator("#ledger-table tbody tr td:nth-child(3)").all_inner_texts()
    assert owners and set(owners) == {"BJ-CY"}


def test_a_registrar_registers_a_device_and_its_page_shows_the_registration_on_chain(
    page: Page, console: Console
) -> None:
    code = "BJ-CAMR-110105731001"
    login(page, console, "BJ-CY", at="register")
    page.get_by_label("Type").select_option("camera.road")
    page.get_by_label("District").select_option("110105")
    suggestion = re.compile(r"^BJ-CAMR-110105\d{6}$")  # prefix + district + the next free serial
    expect(page.get_by_label("Code")).to_have_attribute("placeholder", suggestion)
    expect(page.get_by_label("Code")).to_have_value("")  # never typed into the field behind the user's back
    page.get_by_role("button", name="Suggest a code").click()
    expect(page.get_by_label("Code")).to_have_value(suggestion)
    expect(page.locator("#register-form")).to_contain_text("fits the rule")
    page.get_by_label("Code").fill(code)
    expect(page.locator("#register-form")).to_contain_text("fits the rule")
    page.get_by_role("button", name="Use the district's centre").click()
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    page.get_by_label("Latitude").fill("39.951234")
    page.get_by_label("Longitude").fill("116.481234")
    page.get_by_label("Built on").fill("2024-03-01")
    page.get_by_label("Attributes (JSON)").fill('{"vendor": "海康威视", "model": "DS-2CD3T47G2"}')
    page.get_by_role("button", name="Register").click()
    operation = page.locator("#register-status .operation")
    expect(operation).to_have_attribute("data-status", "confirmed")
    link = page.get_by_role("link", name=f"Open {code}")
    expect(link).to_be_visible()
    screenshot(page, "register_confirmed")

    device = api_get(console, "BJ-CY", f"/v1/devices/{code}")
    assert device["owner_org"] == "BJ-CY" and device["district"] == 110105
    assert device["location"] == {"lat": 39.951234, "lon": 116.481234}
    assert device["attributes"] == {"vendor": "海康威视", "model": "DS-2CD3T47G2"}
    expect(operation.locator("code[title^='0x']")).to_have_attribute("title", device["tx_hash"])

    link.click()
    expect(page.locator("#device-tx")).to_have_text(device["tx_hash"])
    registered = page.locator('#device-trail tr[data-event="DeviceRegistered"]')
    expect(registered).to_have_attribute("data-tx", device["tx_hash"])
    expect(registered).to_contain_text(str(device["block_number"]))
    history = api_get(console, "BJ-CY", f"/v1/devices/{code}/history")
    assert [(e["event"], e["tx_hash"]) for e in history["data"]] == [("DeviceRegistered", device["tx_hash"])]
    expect(page.locator("#audit-verdict")).to_contain_text("verified")
    expect(page.locator('.audit-checks li[data-check="storage_proof"]')).to_have_attribute("data-ok", "true")
    screenshot(page, "device_registered")


def test_a_code_that_breaks_its_rule_and_a_missing_latitude_are_refused_with_their_field(
    page: Page, console: Console
) -> None:
    login(page, console, "BJ-PSB", at="register")
    page.get_by_label("Type").select_option("camera.road")
    page.get_by_label("District").select_option("110101")
    page.get_by_label("Code").fill("BJ-CAMR-1101")
    expect(page.locator("#register-form")).to_contain_text("does not fit the rule")
    page.get_by_label("Latitude").fill("39.91")
    page.get_by_label("Longitude").fill("116.41")
    page.get_by_label("Built on").fill("2022-05-01")
    page.get_by_role("button", name="Register").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("CODE_RULE_VIOLATION")
    expect(alert).to_contain_text("field: code")
    expect(page.get_by_label("Code")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "register_bad_code")

    page.get_by_label("Code").fill("BJ-CAMR-110101731002")
    page.get_by_label("Latitude").fill("")
    page.get_by_role("button", name="Register").click()
    expect(alert).to_contain_text("VALIDATION_ERROR")
    expect(alert).to_contain_text("field: location.lat")
    expect(page.get_by_label("Latitude")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Latitude").fill("39.91")
    page.get_by_label("Attributes (JSON)").fill('{"vendor": ')
    page.get_by_role("button", name="Register").click()
    expect(alert).to_contain_text("INVALID_JSON")
    expect(alert).to_contain_text("field: attributes")
    answer = httpx.get(
        f"{console.url}/v1/devices/BJ-CAMR-110101731002", headers={"Authorization": f"Bearer {console.token('BJ-PSB')}"}
    )
    assert answer.status_code == 404 and answer.json()["code"] == "DEVICE_NOT_FOUND"


def test_a_life_cycle_change_and_an_inspection_from_the_device_page_appear_in_its_trail(
    page: Page, console: Console
) -> None:
    code = "BJ-CAMK-110108731003"
    device = {
        "code": code,
        "type": "camera.checkpoint",
        "district": 110108,
        "location": {"lat": 39.99, "lon": 116.3},
        "built_at": "2021-09-09",
        "attributes": {"vendor": "大华"},
    }
    register_by_api(console, "BJ-PSB", device)
    login(page, console, "BJ-PSB", at=f"device/{code}")
    expect(page.locator("#device-status")).to_have_text("active")
    lifecycle = page.locator("#lifecycle-form")
    lifecycle.get_by_label("Action").select_option("suspend")
    lifecycle.get_by_label("Note").fill("镜头更换 lens replaced")
    lifecycle.get_by_role("button", name="Change life cycle").click()
    expect(page.locator("#device-write .operation")).to_have_attribute("data-status", "confirmed")
    changed = page.locator('#device-trail tr[data-event="DeviceLifecycleChanged"]')
    expect(changed).to_contain_text("suspend: active → suspended")
    expect(page.locator("#device-status")).to_have_text("suspended")
    history = api_get(console, "BJ-PSB", f"/v1/devices/{code}/history")["data"]
    assert [e["event"] for e in history] == ["DeviceRegistered", "DeviceLifecycleChanged"]
    assert history[1]["args"]["note"] == "镜头更换 lens replaced"
    expect(changed).to_have_attribute("data-tx", history[1]["tx_hash"])
    expect(page.locator("#lifecycle-form").get_by_label("Action")).to_contain_text("resume")

    inspection = page.locator("#inspection-form")
    inspection.get_by_label("Result").select_option("issues")
    inspection.get_by_label("Inspection note").fill("housing cracked")
    inspection.get_by_role("button", name="Record inspection").click()
    inspected = page.locator('#device-trail tr[data-event="DeviceInspected"]')
    expect(inspected).to_contain_text("issues")
    history = api_get(console, "BJ-PSB", f"/v1/devices/{code}/history")["data"]
    assert [e["event"] for e in history][-1] == "DeviceInspected" and history[-1]["args"]["result"] == "issues"
    expect(inspected).to_have_attribute("data-tx", history[-1]["tx_hash"])
    expect(page.locator("#audit-verdict")).to_contain_text("verified")
    screenshot(page, "device_lifecycle")

    lifecycle.get_by_label("Action").select_option("retire")
    lifecycle.get_by_role("button", name="Change life cycle").click()
    expect(page.locator("#device-status")).to_have_text("retired")
    expect(page.locator("#device-actions")).to_contain_text("No life-cycle move is left from retired")


def test_an_unknown_device_is_a_clear_error_and_other_orgs_get_no_write_forms(page: Page, console: Console) -> None:
    login(page, console, "AU-BJ", at="device/BJ-CAMR-110105999999")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("DEVICE_NOT_FOUND")
    expect(alert).to_contain_text("BJ-CAMR-110105999999")
    owned = api_get(console, "AU-BJ", "/v1/devices", owner="BJ-PSB", limit=1)["data"][0]
    page.goto(f"{console.url}/console/#/device/{owned['code']}")
    expect(page.locator("#device-code")).to_have_text(owned["code"])
    expect(page.locator("#device-actions")).to_contain_text("Only registrars of BJ-PSB change this device")
    expect(page.get_by_role("button", name="Change life cycle")).to_have_count(0)
    expect(page.locator("#audit-verdict")).to_contain_text("verified")  # any member audits a record
