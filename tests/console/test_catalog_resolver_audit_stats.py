"""The console's catalog search, resolver playground, audit view and assessment charts, against the real API."""

from __future__ import annotations

import csv
import re
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from tests.console.conftest import Console, login, screenshot


def api(console: Console, org: str, path: str, **params: Any) -> Any:
    """GET `path` of the API as `org` (what the page should agree with)."""
    with httpx.Client(base_url=console.url, timeout=120) as client:
        response = client.get(path, params=params, headers={"Authorization": f"Bearer {console.token(org)}"})
    assert response.status_code == 200, response.text
    return response.json()


def result_titles(page: Page) -> list[str]:
    return page.locator("#catalog-results tbody tr td:nth-child(2)").all_inner_texts()


def test_catalog_search_finds_an_entry_by_a_chinese_word_and_a_facet_narrows_it(page: Page, console: Console) -> None:
    login(page, console, "BJ-CMC", at="catalog")
    page.get_by_label("Search").fill("过车")
    page.get_by_role("button", name="Search").click()
    expected = api(console, "BJ-CMC", "/v1/catalog", q="过车")
    assert expected["count"] >= 1
    expect(page.locator("#catalog-count")).to_have_attribute("data-count", str(expected["count"]))
    expect(page.locator("#catalog-results")).to_contain_text("卡口过车流量（小时统计）")
    assert result_titles(page) == [e["title"] for e in expected["data"]]

    page.get_by_label("Search").fill("城市")
    page.get_by_role("button", name="Search").click()
    broad = api(console, "BJ-CMC", "/v1/catalog", q="城市")
    expect(page.locator("#catalog-count")).to_have_attribute("data-count", str(broad["count"]))
    share = page.get_by_role("region", name="共享条件 Share condition")
    for facet in broad["facets"]["share_condition"]:
        expect(share.locator(f"li:has(a[data-value='{facet['value']}']) .count")).to_have_text(str(facet["count"]))
    share.get_by_role("link", name="有条件共享 conditional", exact=True).click()
    expect(page).to_have_url(re.compile(r"share_condition=conditional"))
    narrowed = api(console, "BJ-CMC", "/v1/catalog", q="城市", share_condition="conditional")
    assert 0 < narrowed["count"] < broad["count"]
    expect(page.locator("#catalog-count")).to_have_attribute("data-count", str(narrowed["count"]))
    assert result_titles(page) == [e["title"] for e in narrowed["data"]]
    expect(share.locator("a[aria-current='true']")).to_have_text("有条件共享 conditional")
    screenshot(page, "catalog_facet")
    share.get_by_title("remove this filter").click()
    expect(page.locator("#catalog-count")).to_have_attribute("data-count", str(broad["count"]))


def test_catalog_entry_shows_versions_lineage_and_takes_a_request(page: Page, console: Console) -> None:
    entry = api(console, "BJ-EMB", "/v1/catalog/2")
    lineage = api(console, "BJ-EMB", "/v1/catalog/2/lineage")
    assert entry["share_condition"] == "unconditional" and entry["owner_org"] != "BJ-EMB" and lineage["devices"]
    login(page, console, "BJ-EMB", at="catalog/2")
    expect(page.get_by_role("heading", level=1)).to_contain_text(entry["title"])
    expect(page.locator("#entry-versions tbody tr")).to_have_count(1)
    expect(page.locator("#entry-versions")).to_contain_text(entry["version"])
    for device in lineage["devices"]:
        link = page.get_by_role("region", name="Producing devices").get_by_role("link", name=device["ref"])
        expect(link).to_have_attribute("href", f"#/device/{device['ref']}")

    access = page.get_by_role("region", name="access")
    access.get_by_label("Purpose").fill("汛期空气质量与积水关联分析")
    access.get_by_label("Duration (days)").fill("9999")  # more than the contract's 5 years: the API says so
    access.get_by_role("button", name="Request access").click()
    expect(access.get_by_role("alert")).to_contain_text("VALIDATION_ERROR")
    expect(access.get_by_role("alert")).to_contain_text("duration_days")

    access.get_by_label("Duration (days)").fill("30")
    access.get_by_role("button", name="Request access").click()
    expect(access.locator(".operation[data-status='confirmed']")).to_be_visible()
    row = access.locator("#entry-requests tbody tr", has_text="汛期空气质量与积水关联分析")
    expect(row).to_contain_text("granted")  # an unconditional entry is granted in the request's transaction
    mine = api(console, "BJ-EMB", "/v1/sharing-requests", entry=2, requester="BJ-EMB")
    assert [r["status"] for r in mine["data"]] == ["granted"]
    screenshot(page, "catalog_entry_requested")

    page.get_by_role("region", name="Derived entries").get_by_role("link", name="#7").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("城市运行综合指数")
    upstream = page.get_by_role("region", name="Upstream entries")
    for ref in api(console, "BJ-EMB", "/v1/catalog/7/lineage")["upstream"]:
        expect(upstream.get_by_role("link", name=f"#{ref['ref']}")).to_have_attribute("href", f"#/catalog/{ref['ref']}")


def test_catalog_entry_that_does_not_exist_shows_the_apis_code(page: Page, console: Console) -> None:
    login(page, console, "BJ-CMC", at="catalog/999999")
    expect(page.get_by_role("alert")).to_have_attribute("data-code", "ENTRY_NOT_FOUND")


def test_resolver_denies_a_raw_read_and_permits_an_admitted_computation(page: Page, console: Console) -> None:
    admitted = api(console, "CO-ZHCS", "/v1/catalog/1/algorithms")["data"]
    usable = next(a["algorithm"] for a in admitted if a["usable"])
    listed = api(console, "CO-ZHCS", "/v1/algorithms", status="listed")["data"]
    other = next(a for a in listed if a["id"] not in {x["algorithm"]["id"] for x in admitted})
    grant = api(console, "CO-ZHCS", "/v1/sharing-requests", entry=1, requester="CO-ZHCS", status="granted")["data"][0]
    login(page, console, "CO-ZHCS", at="resolver")

    page.get_by_label("Entry id").fill("1")
    page.get_by_label("Action").select_option("read_raw")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#decision")).to_have_text("deny")
    expect(page.locator("#decision-reason")).to_have_text("FORM_NOT_ALLOWED")
    expect(page.locator("#decision-form")).to_have_text("raw")
    expect(page.locator("#proof-grant")).to_have_text(str(grant["id"]))
    expect(page.locator("#capability")).to_have_count(0)

    page.get_by_label("Action").select_option("compute")
    page.get_by_label("Algorithm").select_option(str(other["id"]))
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#decision-reason")).to_have_text("ALGORITHM_NOT_ADMITTED")

    page.get_by_label("Algorithm").select_option(str(usable["id"]))
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#decision")).to_have_text("permit")
    expect(page.locator("#decision-form")).to_have_text("result_only")
    proof = page.locator("#decision-proof")
    expect(proof.locator("#proof-grant")).to_have_text(str(grant["id"]))
    expect(proof).to_contain_text(grant["grant_tx_hash"][:10])
    claims = page.locator("#token-claims")
    expect(claims.locator("[data-claim='sub']")).to_have_text("CO-ZHCS")
    expect(claims.locator("[data-claim='aud']")).to_have_text("dirchain-data-holder")
    expect(claims.locator("[data-claim='entry_id']")).to_have_text("1")
    expect(claims.locator("[data-claim='algorithm_id']")).to_have_text(str(usable["id"]))
    expect(claims.locator("[data-claim='grant_id']")).to_have_text(str(grant["id"]))
    jwks = api(console, "CO-ZHCS", "/v1/resolver/jwks")
    expect(page.locator("#token-header [data-claim='alg']")).to_have_text("ES256")
    expect(page.locator("#token-header [data-claim='kid']")).to_have_text(jwks["keys"][0]["kid"])
    expect(page.locator("#token-verdict")).to_have_text("verified")  # WebCrypto against the JWKS, in the page
    screenshot(page, "resolver_permit")


def test_resolver_shows_the_apis_error_for_an_unknown_entry(page: Page, console: Console) -> None:
    login(page, console, "CO-ZHCS", at="resolver")
    page.get_by_label("Entry id").fill("999999")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("alert")).to_have_attribute("data-code", "ENTRY_NOT_FOUND")
    expect(page.get_by_role("alert")).to_contain_text("entry_id")


def test_audit_as_the_auditor_finds_every_mirror_table_equal_to_the_chain(page: Page, console: Console) -> None:
    login(page, console, "AU-BJ", at="audit")
    held: list[Route] = []  # the verification's answer is held back until the page has shown it running
    page.route("**/v1/audit/verify*", lambda route: held.append(route))
    page.get_by_role("button", name="Verify the mirror").click()
    expect(page.locator("#verify-status")).to_contain_text("running")
    expect(page.get_by_role("button", name="Verify the mirror")).to_be_disabled()
    section = page.get_by_role("region", name="record audit")  # the page stays usable meanwhile
    section.get_by_label("Kind").select_option("catalog-entry")
    section.get_by_label("Record id").fill("1")
    section.get_by_role("button", name="Audit record").click()
    expect(page.locator("#record-verdict")).to_contain_text("verified")
    record = api(console, "AU-BJ", "/v1/audit/records/catalog-entry/1")
    expect(page.locator("#record-result")).to_contain_text(f"Trail ({record['trail']['count']} events)")
    expect(page).to_have_url(re.compile(r"#/audit\?kind=catalog-entry&id=1$"))
    assert len(held) == 1
    held[0].fulfill(response=held[0].fetch(timeout=300_000))
    expect(page.locator("#verify-verdict")).to_contain_text("verified")
    expect(page.locator("#verify-status")).to_contain_text("done in")
    tables = api(console, "AU-BJ", "/v1/audit/verify")["tables"]
    rows = page.locator("#verify-result tbody tr")
    expect(rows).to_have_count(len(tables))
    for t in tables:
        row = rows.filter(has=page.locator("code", has_text=re.compile(rf"^{t['table']}$")))
        expect(row.locator(".badge")).to_have_text("ok")
        mirror_rows, chain_rows = row.locator("td").nth(2).inner_text(), row.locator("td").nth(3).inner_text()
        assert mirror_rows == chain_rows, t["table"]  # not the API's counts: receipts may be anchored meanwhile
    expect(page.locator("#verify-result .badge.mismatch")).to_have_count(0)
    screenshot(page, "audit_verified")

    page.get_by_role("button", name="Audit approvals").click()
    approvals = api(console, "AU-BJ", "/v1/audit/approvals")
    decisions = f"{approvals['decisions_on_chain']} decisions on the chain"
    expect(page.locator("#approvals-verdict")).to_contain_text(decisions)
    expect(page.locator("#approvals-verdict .badge")).to_have_text("verified")


def test_audit_verification_is_refused_to_a_non_auditor_with_the_apis_code(page: Page, console: Console) -> None:
    login(page, console, "BJ-PSB", at="audit")
    page.get_by_role("button", name="Verify the mirror").click()
    alert = page.locator("#verify-result").get_by_role("alert")
    expect(alert).to_have_attribute("data-code", "ROLE_REQUIRED")
    expect(alert).to_contain_text("AUDITOR")
    section = page.get_by_role("region", name="record audit")
    section.get_by_label("Record id").fill("NO-SUCH-DEVICE")
    section.get_by_role("button", name="Audit record").click()
    expect(page.locator("#record-result").get_by_role("alert")).to_have_attribute("data-code", "RECORD_NOT_FOUND")


def test_audit_of_the_deployed_code_matches_the_rebuild(page: Page, console: Console) -> None:
    login(page, console, "BJ-CMC", at="audit")
    page.get_by_role("button", name="Audit deployed code").click()
    expect(page.locator("#code-verdict .badge")).to_have_text(re.compile(r"^(full|partial|mismatch)$"), timeout=300_000)
    code = api(console, "BJ-CMC", "/v1/audit/code")
    expect(page.locator("#code-verdict .badge")).to_have_text(code["verdict"])
    expect(page.locator("#code-result tbody tr")).to_have_count(len(code["contracts"]))


def chart_data(page: Page, canvas: str) -> Any:
    """The labels and datasets Chart.js draws on `canvas` (null when no chart is drawn on it)."""
    return page.evaluate(
        """(id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return chart ? {labels: chart.data.labels, datasets: chart.data.datasets.map((d) => d.data)} : null;
        }""",
        canvas,
    )


def test_stats_draws_the_assessment_charts_with_the_apis_numbers(page: Page, console: Console) -> None:
    login(page, console, "BJ-PSB", at="stats")
    stats = api(console, "BJ-PSB", "/v1/stats")
    totals = stats["totals"]
    figures = {
        "total-devices": totals["devices"]["total"],
        "total-registered": totals["devices"]["registered"],
        "total-overdue": totals["devices"]["inspections_overdue"],
        "total-catalog": totals["catalog"]["total"],
        "total-granted": totals["sharing"]["granted"],
        "total-pending": totals["sharing"]["pending"],
    }
    for figure, value in figures.items():
        expect(page.locator(f"#{figure} .value")).to_have_attribute("data-value", str(value))
    canvases = ["chart-district", "chart-org", "chart-monthly", "chart-overdue", "chart-share", "chart-sharing"]
    for canvas in canvases:
        expect(page.locator(f"canvas#{canvas}")).to_be_visible()
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-monthly')) !== undefined")

    district = chart_data(page, "chart-district")
    assert district["labels"] == [d["name"] for d in stats["by_district"]]
    assert sum(sum(d) for d in district["datasets"]) == totals["devices"]["total"] > 0
    org = chart_data(page, "chart-org")
    assert org["labels"] == [o["org"] for o in stats["by_org"]]
    assert [sum(col) for col in zip(*org["datasets"], strict=True)] == [o["devices"]["total"] for o in stats["by_org"]]
    share = chart_data(page, "chart-share")
    by_share = totals["catalog"]["by_share_condition"]
    assert share["datasets"][0] == [by_share[k] for k in ("unconditional", "conditional", "not_shareable")]
    sharing = chart_data(page, "chart-sharing")
    outcomes = ("granted", "refused", "pending")
    assert sharing["datasets"] == [[o["sharing"][k] for o in stats["by_org"]] for k in outcomes]
    monthly = chart_data(page, "chart-monthly")
    assert monthly["labels"][-1] == stats["period"]["month"]
    assert monthly["datasets"][0][-1] == totals["devices"]["registered"]
    screenshot(page, "stats_charts")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8-sig", newline="") as saved:
        rows = list(csv.DictReader(saved))
    total = next(r for r in rows if r["level"] == "total")
    assert int(total["devices_total"]) == totals["devices"]["total"]
    assert int(total["sharing_granted"]) == totals["sharing"]["granted"]

    page.locator("#nav").get_by_role("link", name="目录 Catalog").click()
    expect(page.locator("#catalog-count")).to_be_visible()
    assert page.evaluate("() => Object.keys(Chart.instances).length") == 0  # the page's cleanup destroyed them


def test_stats_month_and_district_pickers_show_those_figures(page: Page, console: Console) -> None:
    current = api(console, "BJ-PSB", "/v1/stats")["period"]["month"]
    year, month = map(int, current.split("-"))
    previous = f"{year - (month == 1)}-{12 if month == 1 else month - 1:02d}"
    chaoyang = api(console, "BJ-PSB", "/v1/stats", month=current, district=110105)["totals"]["devices"]
    earlier = api(console, "BJ-PSB", "/v1/stats", month=previous, district=110105)["totals"]["devices"]
    assert chaoyang["total"] > 0  # BJ-CY's demo devices are all in Chaoyang
    login(page, console, "BJ-PSB", at="stats")
    expect(page.get_by_label("District", exact=True).locator("option")).to_have_count(17)
    page.get_by_label("District", exact=True).select_option("110105")
    expect(page).to_have_url(re.compile(rf"#/stats\?month={current}&district=110105$"))
    expect(page.locator("#stats-totals")).to_contain_text("110105")
    expect(page.locator("#total-devices .value")).to_have_attribute("data-value", str(chaoyang["total"]))
    page.get_by_label("Month", exact=True).fill(previous)
    expect(page).to_have_url(re.compile(rf"#/stats\?month={previous}&district=110105$"))
    expect(page.locator("#stats-totals")).to_contain_text(f"{previous}-01")
    expect(page.locator("#total-registered .value")).to_have_attribute("data-value", str(earlier["registered"]))
    expect(page.locator("#total-devices .value")).to_have_attribute("data-value", str(earlier["total"]))
