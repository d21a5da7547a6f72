"""The audit report of a time range on the real anvil: who did what and when, with the orgs and roles held then,
ranges that leave activity out, escaped hostile text, the route (HTML and JSON pages, 422s) and the CLI."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.eip712 import Decision
from chain_gateway.governance import contract, govern, role_id
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import get_settings
from registry_api.audit.report import build_report, report_page
from registry_api.audit.report_events import EVENT_VIEWS
from registry_api.audit.report_html import report_html
from registry_api.audit.report_range import TimeWindow, block_range, parse_window
from registry_api.cli import app as cli
from registry_api.routers import audit_report as audit_report_router
from registry_api.schemas.audit_report import AuditEntry, AuditReportPublic
from registry_api.stats import CITY_TZ
from tests.indexer.support import (
    REGISTRAR_ORG,
    REQUESTER_ORG,
    call,
    catalog_call,
    device_input,
    entry_input,
    registry_call,
    relay_approval,
    relay_revocation,
    sign_decision,
)
from tests.registry_api.support import Api

HOSTILE_PURPOSE = "<script>alert('purpose')</script> 交通拥堵治理研判"
HOSTILE_TITLE = '卡口过车流量 <img src=x onerror="alert(1)">'
HOSTILE_REASON = "</td><script>alert('reason')</script>"
MONTH_DAYS = 30
DAY = 86_400


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the report reads the chain alone; the database holds no more than the API's tokens here."""
    return f"sqlite:///{tmp_path / 'dirchain.db'}"


def _next_at(w3: Web3, day: date, hour: int, minute: int = 0) -> None:
    """Make the next block's time `day` `hour`:`minute` Beijing time (later blocks follow on from it)."""
    unix = int(datetime.combine(day, time(hour, minute), CITY_TZ).timestamp())
    w3.provider.make_request("evm_setNextBlockTimestamp", [unix])  # type: ignore[arg-type]


def _tx(receipt: dict[str, Any]) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


@dataclass(frozen=True)
class Story:
    """What was done on the chain, and when: day one's registration, catalog entry, request and approvals; day
    two's governance (BJ-PSB's account loses REGISTRAR in the vote that BJ-PSB itself casts) and revocation."""

    day1: date
    day2: date
    registered: str  # tx hashes
    created: str
    requested: str
    entry_id: int
    approved: tuple[str, str]
    revoked: str
    codes: list[str]
    approvers: tuple[str, str]
    relayer: str
    request_id: int


@pytest.fixture(scope="module")
def story(w3: Web3, seeded: SeededConsortium) -> Story:
    chain = seeded
    latest = datetime.fromtimestamp(int(w3.eth.get_block("latest")["timestamp"]), CITY_TZ)
    day1 = latest.date() + timedelta(days=2)
    day2 = day1 + timedelta(days=1)
    _next_at(w3, day1, 10)
    devices = [device_input(900 + i) for i in range(3)]
    registered = registry_call(w3, chain, "registerDevices", devices)
    _next_at(w3, day1, 10, 5)
    created = catalog_call(w3, chain, "createEntry", entry_input(HOSTILE_TITLE, devices=[devices[0][0]]), True)
    entry_id = int(contract(w3, chain.deployment, "DataCatalog").functions.entryCount().call())
    request_id = int(contract(w3, chain.deployment, "SharingAgreements").functions.requestCount().call()) + 1
    requester = chain.orgs[REQUESTER_ORG].private_key
    _next_at(w3, day1, 10, 10)
    requested = call(w3, chain, requester, "SharingAgreements", "request", entry_id, 2, HOSTILE_PURPOSE, 30 * DAY)
    _next_at(w3, day1, 10, 20)
    first = relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 0))
    _next_at(w3, day1, 10, 30)
    second = relay_approval(w3, chain, request_id, sign_decision(w3, chain, request_id, 1))  # grade 3: 2 approvals

    _next_at(w3, day2, 9)
    keys = [chain.orgs["BJ-EIB"].private_key, chain.orgs[REGISTRAR_ORG].private_key]
    revoke_registrar = ("Consortium", "revokeRole", [role_id("REGISTRAR"), chain.orgs[REGISTRAR_ORG].account])
    govern(w3, chain.deployment, keys, [revoke_registrar], "BJ-PSB main account: no more registrations")
    _next_at(w3, day2, 9, 30)
    revocation = sign_decision(w3, chain, request_id, 0, Decision.REVOKE, HOSTILE_REASON)
    revoked = relay_revocation(w3, chain, request_id, revocation, HOSTILE_REASON)
    _next_at(w3, day2 + timedelta(days=1), 12)
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # the head is past the story
    return Story(
        day1=day1,
        day2=day2,
        registered=_tx(registered),
        created=_tx(created),
        requested=_tx(requested),
        entry_id=entry_id,
        approved=(_tx(first), _tx(second)),
        revoked=_tx(revoked),
        codes=[d[0] for d in devices],
        approvers=(chain.orgs[REGISTRAR_ORG].approvers[0][0], chain.orgs[REGISTRAR_ORG].approvers[1][0]),
        relayer=Account.from_key(chain.deployer_key).address,
        request_id=request_id,
    )


@pytest.fixture(scope="module")
def rpc(anvil: AnvilNode) -> Iterator[JsonRpcClient]:
    with JsonRpcClient([anvil.url]) as client:
        yield client


def _report(rpc: JsonRpcClient, seeded: SeededConsortium, first: date | str, last: date | str) -> AuditReportPublic:
    return build_report(rpc, seeded.deployment, parse_window(str(first), str(last)))


def _events(report: AuditReportPublic) -> list[tuple[str, str]]:
    return [(e.contract, e.event) for e in report.data]


def _one(report: AuditReportPublic, event: str) -> AuditEntry:
    (found,) = [e for e in report.data if e.event == event]
    return found


def test_report_lists_the_story_in_chain_order_with_actors_orgs_and_roles_held_then(
    story: Story, rpc: JsonRpcClient, seeded: SeededConsortium
) -> None:
    report = _report(rpc, seeded, story.day1, story.day2)

    assert _events(report) == [
        ("DeviceRegistry", "DeviceRegistered"),
        ("DataCatalog", "CatalogEntryVersioned"),
        ("DataCatalog", "CatalogEntryStatusChanged"),
        ("DataCatalog", "CatalogEntryStatusChanged"),
        ("SharingAgreements", "SharingRequested"),
        ("SharingAgreements", "SharingApproved"),
        ("SharingAgreements", "SharingApproved"),
        ("SharingAgreements", "SharingGranted"),
        ("Consortium", "ProposalCreated"),
        ("Consortium", "ProposalVoted"),
        ("Consortium", "ProposalVoted"),
        ("Consortium", "RoleRevoked"),
        ("Consortium", "ProposalExecuted"),
        ("SharingAgreements", "SharingRevoked"),
    ]
    positions = [(e.block, e.log_index) for e in report.data]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [e.time.utcoffset() for e in report.data] == [timedelta(hours=8)] * len(report.data)
    assert all(e.time.timestamp() == e.unix for e in report.data)
    assert {e.time.date() for e in report.data[:8]} == {story.day1}
    assert {e.time.date() for e in report.data[8:]} == {story.day2}

    psb = seeded.orgs[REGISTRAR_ORG].account
    bulk = report.data[0]
    assert (bulk.tx_hash, bulk.count, bulk.action) == (story.registered, 3, "register device")
    assert (bulk.actor.account, bulk.actor.org, bulk.actor.org_name) == (psb, "BJ-PSB", "北京市公安局")
    assert bulk.actor.roles == ["ADMIN", "REGISTRAR", "REVIEWER"]  # REGISTRAR then, revoked on day two
    assert [a.subject.id for a in bulk.activities] == story.codes
    assert [a.subject.kind for a in bulk.activities] == ["device"] * 3
    assert bulk.summary == f"BJ-PSB registered 3 devices ({story.codes[0]} … {story.codes[2]})"
    assert [a.args["code"] for a in bulk.activities] == story.codes

    created, draft, published = report.data[1:4]
    assert created.tx_hash == draft.tx_hash == published.tx_hash == story.created
    assert created.summary.startswith(f"BJ-PSB created catalog entry {story.entry_id} v1.0 “卡口过车流量 <img")
    assert [draft.summary, published.summary] == [
        f"BJ-PSB set catalog entry {story.entry_id} to draft (new)",
        f"BJ-PSB set catalog entry {story.entry_id} to published (was draft)",
    ]

    request = _one(report, "SharingRequested")
    assert (request.tx_hash, request.actor.org, request.subject.id) == (
        story.requested,
        "BJ-CMC",
        str(story.request_id),
    )
    assert request.summary == (
        f"BJ-CMC requested desensitized data of catalog entry {story.entry_id} (owner BJ-PSB) for “{HOSTILE_PURPOSE}”, "
        f"30 days: request {story.request_id}"
    )

    approvals = [e for e in report.data if e.event == "SharingApproved"]
    for entry, approver, tx_hash, number in zip(approvals, story.approvers, story.approved, (1, 2), strict=True):
        assert entry.tx_hash == tx_hash
        assert entry.signer is not None
        assert (entry.signer.account, entry.signer.org, entry.signer.roles) == (approver, "BJ-PSB", ["APPROVER"])
        assert (entry.actor.account, entry.actor.org, entry.actor.roles) == (story.relayer, None, [])
        assert entry.summary == (
            f"approver {approver[:6]}…{approver[-4:]} of BJ-PSB approved request {story.request_id} (approval "
            f"{number}) (relayed by account {story.relayer[:6]}…{story.relayer[-4:]} (no member org))"
        )
    grant = _one(report, "SharingGranted")
    assert grant.tx_hash == story.approved[1] and grant.summary.startswith(f"request {story.request_id} granted")

    voted = [e for e in report.data if e.event == "ProposalVoted"]
    assert [v.actor.org for v in voted] == ["BJ-EIB", "BJ-PSB"]
    assert "REGISTRAR" in voted[1].actor.roles  # before the RoleRevoked log of its own transaction
    executed = _one(report, "ProposalExecuted")
    assert executed.tx_hash == voted[1].tx_hash and executed.actor.org == "BJ-PSB"
    assert executed.actor.roles == ["ADMIN", "REVIEWER"]  # after it
    revoked_role = _one(report, "RoleRevoked")
    assert revoked_role.summary == (
        f"revoked REGISTRAR from {psb[:6]}…{psb[-4:]} of BJ-PSB by consortium vote (executed by "
        f"{psb[:6]}…{psb[-4:]} of BJ-PSB)"
    )

    revocation = _one(report, "SharingRevoked")
    assert revocation.tx_hash == story.revoked
    assert revocation.signer is not None and revocation.signer.account == story.approvers[0]
    assert revocation.summary.startswith(f"approver {story.approvers[0][:6]}…{story.approvers[0][-4:]} of BJ-PSB "
                                         f"revoked the grant of request {story.request_id}")  # fmt: skip

    counts = {(c.org, c.action): (c.activities, c.transactions) for c in report.summary}
    assert counts[("BJ-PSB", "register device")] == (3, 1)
    assert counts[("BJ-PSB", "approve sharing")] == (2, 2)
    assert counts[("BJ-PSB", "grant sharing")] == (1, 1)  # the grant follows the second approver's signature
    assert counts[("BJ-PSB", "revoke sharing")] == (1, 1)
    assert counts[("BJ-CMC", "request sharing")] == (1, 1)
    assert counts[("(consortium vote)", "revoke role")] == (1, 1)
    assert counts[("BJ-EIB", "vote")] == counts[("BJ-PSB", "vote")] == (1, 1)
    assert sum(c.activities for c in report.summary) == report.activity_count == 16
    assert report.transaction_count == 8 and report.count == len(report.data) == 14


def test_a_range_leaves_out_what_happened_outside_it(
    story: Story, rpc: JsonRpcClient, seeded: SeededConsortium
) -> None:
    whole = _report(rpc, seeded, story.day1, story.day2)
    first_day = _report(rpc, seeded, story.day1, story.day1)
    second_day = _report(rpc, seeded, story.day2, f"{story.day2}T23:59:59+08:00")
    assert first_day.data + second_day.data == whole.data
    assert story.revoked not in {e.tx_hash for e in first_day.data}
    assert story.registered not in {e.tx_hash for e in second_day.data}
    # Day two's report replays the Consortium's logs from before it: BJ-PSB's roles are those it held then.
    (vote,) = [e for e in second_day.data if e.event == "ProposalVoted" and e.actor.org == "BJ-PSB"]
    assert vote.actor.roles == ["ADMIN", "REGISTRAR", "REVIEWER"]

    # A datetime range inside a day, here in UTC: only the registration's second.
    registration = whole.data[0]
    instant = registration.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    at_registration = _report(rpc, seeded, instant, instant)
    assert [e.tx_hash for e in at_registration.data] == [registration.tx_hash]
    assert at_registration.range.from_block == at_registration.range.to_block == registration.block
    naive_before = (registration.time - timedelta(seconds=1)).replace(tzinfo=None).isoformat()  # Beijing time
    assert _report(rpc, seeded, naive_before, naive_before).data == []

    before = story.day1 - timedelta(days=MONTH_DAYS)
    empty = _report(rpc, seeded, before, before)
    assert (empty.range.from_block, empty.range.to_block, empty.data, empty.summary) == (None, None, [], [])


def test_block_range_matches_every_block_time(story: Story, rpc: JsonRpcClient, seeded: SeededConsortium) -> None:
    head = rpc.block_number()
    first = seeded.deployment["deploy_block"]
    times = {n: int(rpc.get_block(n)["timestamp"], 16) for n in range(first, head + 1)}  # type: ignore[index]
    rnd = random.Random(6)
    low, high = times[first] - 5, times[head] + 5
    windows = [(times[first], times[head]), (times[head], times[head]), (low, low + 1), (high - 1, high)]
    windows += [tuple(sorted((rnd.randint(low, high), rnd.randint(low, high)))) for _ in range(40)]
    for start, end in windows:
        inside = [n for n, t in times.items() if start <= t <= end]
        expected = (inside[0], inside[-1]) if inside else None
        assert block_range(rpc, TimeWindow(start, end), first, head) == expected, (start, end)


def test_html_is_printable_and_escapes_hostile_text_from_the_chain(
    story: Story, rpc: JsonRpcClient, seeded: SeededConsortium
) -> None:
    report = _report(rpc, seeded, story.day1, story.day2)
    page = report_html(report)
    assert page.startswith("<!DOCTYPE html>") and "@page { size: A4" in page and "@media print" in page
    assert "<script" not in page.lower() and "<img" not in page.lower() and 'onerror="' not in page
    assert "&lt;script&gt;alert(&#x27;purpose&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;" in page
    for name, deployed in seeded.deployment["contracts"].items():
        assert f'{name}: <span class="mono">{deployed["address"]}</span>' in page
    assert f"{report.range.from_block} .. {report.range.to_block}" in page
    assert str(seeded.deployment["chain_id"]) in page and report.produced_at.isoformat(timespec="seconds") in page
    assert page.count("<tr><td>20") == len(report.data)  # one row per entry: the bulk registration is one row
    assert "×3" in page and all(e.tx_hash in page for e in report.data)


def test_every_event_of_the_deployment_has_words_in_the_report(seeded: SeededConsortium) -> None:
    events = {
        f"{name}:{item['name']}"
        for name, info in seeded.deployment["contracts"].items()
        for item in info["abi"]
        if item.get("type") == "event"
    }
    assert events - set(EVENT_VIEWS) == set()


def test_route_answers_html_and_json_pages_to_auditors(story: Story, api: Api, rpc: JsonRpcClient) -> None:
    query = {"from": str(story.day1), "to": str(story.day2)}
    whole = _report(rpc, api.chain, story.day1, story.day2)

    page = api.get("/v1/audit/report", "AU-BJ", params={**query, "format": "json", "limit": 4, "offset": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["count"], body["limit"], body["offset"]) == (14, 4, 2)
    assert (
        body["range"]["from"] == f"{story.day1}T00:00:00+08:00"
        and body["range"]["to"] == f"{story.day2}T23:59:59+08:00"
    )
    assert [e["tx_hash"] for e in body["data"]] == [e.tx_hash for e in whole.data[2:6]]
    assert body["summary"] == [c.model_dump() for c in whole.summary]
    assert body["contracts"] == {n: c["address"] for n, c in api.chain.deployment["contracts"].items()}
    last = api.get("/v1/audit/report", "AU-BJ", params={**query, "format": "json", "offset": 13}).json()
    assert [e["event"] for e in last["data"]] == ["SharingRevoked"]
    assert report_page(whole, 4, 2).data == whole.data[2:6]

    html = api.get("/v1/audit/report", "AU-BJ", params=query)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<script" not in html.text.lower() and "×3" in html.text

    refused = api.get("/v1/audit/report", "BJ-PSB", params=query)
    assert (refused.status_code, refused.json()["code"]) == (403, "ROLE_REQUIRED")


def test_route_refuses_a_range_with_more_events_than_it_keeps_in_memory(
    story: Story, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_report_router, "MAX_LOGS", 6)
    params = {"from": str(story.day1), "to": str(story.day2), "format": "json"}
    answer = api.get("/v1/audit/report", "AU-BJ", params=params)
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == ("RANGE_TOO_LARGE", "to")
    assert "more than 6 events" in answer.json()["message"]
    second_day = api.get("/v1/audit/report", "AU-BJ", params={**params, "from": str(story.day2)})
    assert second_day.status_code == 200 and second_day.json()["activity_count"] == 6


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"from": "2025-05-02", "to": "2025-05-01"}, "RANGE_REVERSED", "to"),
        ({"from": "2025-05-01T10:00:01", "to": "2025-05-01T10:00:00"}, "RANGE_REVERSED", "to"),
        ({"from": "yesterday", "to": "2025-05-01"}, "BAD_DATETIME", "from"),
        ({"from": "2025-05-01", "to": "2025-02-30"}, "BAD_DATETIME", "to"),
        ({"from": "2025-05-01", "to": "9999-12-31"}, "BAD_DATETIME", "to"),  # its day ends past datetime's range
        ({"from": "1969-12-31", "to": "2025-05-01"}, "BAD_DATETIME", "from"),
        ({"to": "2025-05-01"}, "VALIDATION_ERROR", "from"),
        ({"from": "2025-05-01", "to": "2025-05-01", "format": "pdf"}, "VALIDATION_ERROR", "format"),
        ({"from": "2025-05-01", "to": "2025-05-01", "format": "json", "limit": 0}, "VALIDATION_ERROR", "limit"),
    ],
)
def test_bad_ranges_are_422_with_a_stable_code_and_the_field(
    api: Api, params: dict[str, Any], code: str, field: str
) -> None:
    answer = api.get("/v1/audit/report", "AU-BJ", params=params)
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == (code, field)


@pytest.fixture
def local_settings(
    anvil: AnvilNode, seeded: SeededConsortium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """DIRCHAIN_* settings of an auditor's machine: the node and the deployment file, nothing else."""
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(seeded.deployment), encoding="utf-8")
    monkeypatch.setenv("DIRCHAIN_RPC_URLS", json.dumps([anvil.url]))
    monkeypatch.setenv("DIRCHAIN_DEPLOYMENTS_PATH", str(path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_writes_the_html_and_json_reports_and_shows_the_summary(
    story: Story, rpc: JsonRpcClient, seeded: SeededConsortium, local_settings: None, tmp_path: Path
) -> None:
    runner = CliRunner()
    whole = _report(rpc, seeded, story.day1, story.day2)
    page = tmp_path / "report.html"
    shown = runner.invoke(cli, ["audit", "report", "--from", str(story.day1), "--to", str(story.day2), "--out",
                                str(page)], env={"COLUMNS": "250"})  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "14 entries" in shown.output and "register device" in shown.output and "BJ-PSB" in shown.output
    html = page.read_text(encoding="utf-8")
    assert "&lt;script&gt;" in html and all(e.tx_hash in html for e in whole.data)

    written = tmp_path / "report.json"
    as_json = runner.invoke(cli, ["audit", "report", "--from", str(story.day1), "--to", str(story.day2), "--json",
                                  "--out", str(written)])  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    report = AuditReportPublic.model_validate_json(written.read_text(encoding="utf-8"))
    assert report.data == whole.data and report.summary == whole.summary

    reversed_range = runner.invoke(cli, ["audit", "report", "--from", str(story.day2), "--to", str(story.day1)])
    assert reversed_range.exit_code == 2 and "RANGE_REVERSED" in reversed_range.output


def test_cli_shows_progress_over_many_blocks(story: Story, w3: Web3, local_settings: None) -> None:
    day = story.day2 + timedelta(days=3)
    _next_at(w3, day, 8)
    w3.provider.make_request("anvil_mine", [hex(2_500), hex(1)])  # type: ignore[arg-type]  # one block a second
    result = CliRunner().invoke(cli, ["audit", "report", "--from", str(day), "--to", str(day), "--json"])
    assert result.exit_code == 0, result.output
    assert re.search(r"logs .*2500/2500", result.output), result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["activity_count"] == 0


@pytest.mark.parametrize(
    ("first", "last", "start", "end"),
    [
        ("2025-05-01", "2025-05-31", "2025-05-01T00:00:00+08:00", "2025-05-31T23:59:59+08:00"),
        ("20250501", "20250501", "2025-05-01T00:00:00+08:00", "2025-05-01T23:59:59+08:00"),
        ("2025-05-01T08:30", "2025-05-01 09:00", "2025-05-01T08:30:00+08:00", "2025-05-01T09:00:00+08:00"),
        ("2025-05-01T00:30:00Z", "2025-05-01T01:00:00+00:00", "2025-05-01T08:30:00+08:00", "2025-05-01T09:00:00+08:00"),
        ("2025-05-01T08:30:00.2", "2025-05-01T08:30:01.7", "2025-05-01T08:30:01+08:00", "2025-05-01T08:30:01+08:00"),
    ],
)
def test_time_range_is_beijing_time_unless_an_offset_is_given_and_dates_cover_whole_days(
    first: str, last: str, start: str, end: str
) -> None:
    window = parse_window(first, last)
    assert (window.start_time.isoformat(), window.end_time.isoformat()) == (start, end)
    assert (window.start, window.end) == (
        datetime.fromisoformat(start).timestamp(),
        datetime.fromisoformat(end).timestamp(),
    )
