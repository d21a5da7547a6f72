"""The console's map: district outlines as the base, clusters counted by the API, zoom into a cluster, find a
device by code and follow its popup to the device page."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, login, screenshot


def _devices(console: Console) -> list[dict]:
    """Every device of the mirror, as GET /v1/devices lists them."""
    with httpx.Client(base_url=console.url) as client:
        answer = client.get(
            "/v1/devices", params={"limit": 1000}, headers={"Authorization": f"Bearer {console.token('BJ-PSB')}"}
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _cluster_counts(page: Page) -> list[int]:
    return [int(text.replace(",", "")) for text in page.locator(".cluster-icon").all_inner_texts()]


def test_the_city_view_shows_16_districts_and_clusters_of_every_device(page: Page, console: Console) -> None:
    devices = _devices(console)
    assert len(devices) >= 12  # the demo's, and any a test before this one registered
    login(page, console, "BJ-PSB", at="map")
    expect(page.locator("path.district-outline")).to_have_count(16)
    expect(page.locator(".district-label")).to_have_count(16)
    expect(page.locator(".district-label").first).not_to_be_empty()
    expect(page.locator("#map-total")).to_have_text(re.compile(rf"^{len(devices)} devices"))
    assert sum(_cluster_counts(page)) == len(devices)
    expect(page.get_by_label("Legend")).to_contain_text("camera.road")
    screenshot(page, "map_city")

    # a filter narrows the clusters to its devices
    page.get_by_label("Type 类型").select_option("camera.road")
    roads = sum(1 for d in devices if d["type"] == "camera.road")
    expect(page.locator("#map-total")).to_have_text(re.compile(rf"^{roads} devices"))  # not "14 devices" for 4
    assert sum(_cluster_counts(page)) == roads
    expect(page).to_have_url(re.compile(r"#/map\?.*type=camera\.road"))


def test_clicking_a_cluster_zooms_in_on_it(page: Page, console: Console) -> None:
    login(page, console, "BJ-PSB", at="map")
    expect(page.locator(".cluster-icon").first).to_be_visible()
    zoom_before = int(re.search(r"[?&]z=(\d+)", page.url).group(1)) if "z=" in page.url else None
    biggest = max(range(page.locator(".cluster-icon").count()), key=lambda i: _cluster_counts(page)[i])
    page.locator(".cluster-icon").nth(biggest).click()
    expect(page).to_have_url(re.compile(r"[?&]z=\d+"))
    page.wait_for_function("() => !document.getElementById('map').hasAttribute('aria-busy')")
    expect(page.locator("#map-total")).to_be_visible()
    zoom_after = int(re.search(r"[?&]z=(\d+)", page.url).group(1))
    assert zoom_before is None or zoom_after > zoom_before
    screenshot(page, "map_zoomed")


def test_find_a_device_by_code_opens_its_popup_and_links_to_its_page(page: Page, console: Console) -> None:
    device = _devices(console)[0]
    login(page, console, "BJ-PSB", at="map")
    expect(page.locator(".cluster-icon").first).to_be_visible()
    page.get_by_label("Find device").fill(device["code"])
    page.get_by_role("button", name="Find").click()
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text(device["code"])
    expect(popup).to_contain_text(device["type"])
    expect(popup).to_contain_text(device["status"])
    expect(page).to_have_url(re.compile(r"[?&]z=1[6-9]"))
    expect(page.locator("#map").get_by_text(device["code"])).to_be_visible()
    screenshot(page, "map_found")
    popup.get_by_role("link", name=device["code"]).click()
    expect(page).to_have_url(re.compile(rf"#/device/{re.escape(device['code'])}$"))


def test_an_unknown_code_shows_the_apis_error(page: Page, console: Console) -> None:
    login(page, console, "BJ-PSB", at="map")
    page.get_by_label("Find device").fill("BJ-CAMR-000000000000")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("alert")).to_contain_text("DEVICE_NOT_FOUND")
