"""The console's shell: served by the API, offline and locked down, with a log-in that checks the token."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from registry_api.console.mount import CONTENT_SECURITY_POLICY
from registry_api.console.vendor import missing_vendor_files
from tests.console.conftest import Console, login, screenshot


def test_console_is_served_with_a_strict_content_security_policy(console: Console) -> None:
    with httpx.Client(base_url=console.url) as client:
        root = client.get("/")
        index = client.get("/console/")
        script = client.get("/console/static/js/app.js")
        outlines = client.get("/console/static/data/beijing-districts.geojson")
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    assert index.status_code == 200 and "目录链" in index.text
    assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert index.headers["x-frame-options"] == "DENY" and index.headers["cache-control"] == "no-cache"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    districts = {f["properties"]["district"] for f in outlines.json()["features"]}
    assert len(districts) == 16 and 110105 in districts
    assert missing_vendor_files() == []


def test_me_answers_who_the_token_acts_as(console: Console) -> None:
    with httpx.Client(base_url=console.url) as client:
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {console.token('BJ-PSB')}"})
        anonymous = client.get("/v1/me")
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["org_code"] == "BJ-PSB" and body["account"] == console.orgs["BJ-PSB"]["account"]
    assert "REGISTRAR" in body["roles"] and body["org_name"]
    assert anonymous.status_code == 401 and anonymous.json()["code"]


def test_login_with_a_token_shows_the_org_and_logout_forgets_it(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/console/")
    expect(page).to_have_url(f"{console.url}/console/#/login?next=%2Fmap")
    login(page, console, "BJ-PSB")
    expect(page.locator("#who")).to_contain_text("BJ-PSB")
    expect(page.locator("#nav a")).to_have_count(8)
    screenshot(page, "login_done")
    page.locator("#logout").click()
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#nav a")).to_have_count(0)


def test_a_bad_token_is_refused_with_the_apis_code(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/console/#/login")
    page.get_by_label("API token").fill("dct_not-a-real-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    expect(page.locator("#who")).to_be_empty()
