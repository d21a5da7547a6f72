"""The approval inbox: an approver signs the EIP-712 decision in the browser (keystore decrypted in the page, or an
injected wallet), the page recovers the signer before sending, and the contract's verdict shows as the grant.

Each test files its own sharing request through the API (a unique purpose finds it again), so no test depends on
another's order or on the demo's requests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from chain_gateway.eip712 import sign_typed_data
from tests.console.actions import approve_in_page, unlock_keystore
from tests.console.conftest import Console, login, screenshot

WAIT_S = 60.0


def _client(console: Console, org: str) -> httpx.Client:
    return httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token(org)}"}, timeout=30)


def _confirmed(client: httpx.Client, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        op: dict[str, Any] = client.get(f"/v1/operations/{operation_id}").json()
        assert op["status"] != "failed", op
        if op["status"] == "confirmed":
            return op
        time.sleep(0.2)
    raise AssertionError(f"operation {operation_id} not confirmed in {WAIT_S} s")


def _mirrored(client: httpx.Client, request_id: int, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The request as mirrored once `ready` holds for it (the indexer follows the chain a block or two behind)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(f"/v1/sharing-requests/{request_id}").json()
        if ready(found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"request {request_id} not as expected in the mirror within {WAIT_S} s: {found}")


def file_request(console: Console, requester: str, entry_id: int, form: str) -> dict[str, Any]:
    """A new pending sharing request of `requester` for `entry_id`, filed through the API and mirrored."""
    tag = uuid.uuid4().hex[:10]
    purpose = f"控制台审批测试 console inbox test {tag}"
    with _client(console, requester) as client:
        body = {"entry_id": entry_id, "form": form, "purpose": purpose, "duration_days": 30}
        accepted = client.post("/v1/sharing-requests", json=body, headers={"Idempotency-Key": f"inbox-test-{tag}"})
        assert accepted.status_code == 202, accepted.text
        _confirmed(client, accepted.json()["operation_id"])
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            listed = client.get("/v1/sharing-requests", params={"entry": entry_id, "requester": requester}).json()
            found = [r for r in listed["data"] if r["purpose"] == purpose]
            if found:
                assert found[0]["status"] == "pending" and found[0]["approvals"] == 0, found[0]
                return found[0]
            time.sleep(0.2)
    raise AssertionError(f"request {purpose!r} not mirrored in {WAIT_S} s")


def posts_to(page: Page, fragment: str) -> list[str]:
    """The POSTs the page makes to URLs containing `fragment` (recorded from now on)."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.method == "POST" and fragment in r.url else None)
    return seen


WALLET = """
window.ethereum = {
  isTestWallet: true,
  async request({ method, params }) {
    const signing = new window.ethers.Wallet(%(signing_key)s);
    const shown = %(shown_account)s || signing.address;
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [shown];
    if (method === "eth_chainId") return "0x" + (%(chain_id)d).toString(16);
    if (method === "eth_signTypedData_v4") {
      const typed = JSON.parse(params[1]);
      const types = { ...typed.types };
      delete types.EIP712Domain;
      return signing.signTypedData(typed.domain, types, typed.message);
    }
    throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
  },
};
"""


def inject_wallet(page: Page, chain_id: int, signing_key: str, shown_account: str | None = None) -> None:
    """An EIP-1193 provider as a wallet extension injects it: real signatures made with ethers and a real key."""
    values = {"signing_key": json.dumps(signing_key), "shown_account": json.dumps(shown_account), "chain_id": chain_id}
    page.add_init_script(WALLET % values)


def test_two_approvers_sign_with_keystore_files_and_the_grant_is_active(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-CMC", 1, "desensitized")  # BJ-PSB's grade-3 entry: two approvals
    first, second = console.orgs["BJ-PSB"]["approvers"][:2]
    login(page, console, "BJ-PSB", "inbox")
    row = page.locator(f"#request-{request['id']}")
    expect(row).to_contain_text("0 / 2")
    expect(row).to_contain_text("BJ-CMC")

    unlock_keystore(page, console, first["account"])
    expect(page.locator("#signer-address")).to_have_text(first["account"])
    outcome = approve_in_page(page, request["id"])
    expect(outcome.locator("#recovered-signer")).to_have_text(first["account"])
    expect(outcome.locator("#decision-operation")).to_contain_text("confirmed")
    expect(outcome.locator("#decision-state")).to_contain_text("1 / 2")
    expect(row).to_contain_text("1 / 2")
    screenshot(page, "inbox_first_approval")

    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("#signer-address")).to_have_count(0)
    unlock_keystore(page, console, second["account"])
    expect(page.locator("#signer-address")).to_have_text(second["account"])
    outcome = approve_in_page(page, request["id"])
    grant = outcome.locator("#inbox-grant")
    expect(grant).to_contain_text("active")
    expect(grant).to_contain_text("desensitized")
    expect(grant).to_contain_text(first["account"])
    expect(grant).to_contain_text(second["account"])
    expect(row).to_have_count(0)  # no longer awaiting a decision
    screenshot(page, "inbox_granted")

    with _client(console, "BJ-CMC") as client:
        grants = client.get("/v1/grants", params={"entry": 1, "requester": "BJ-CMC", "limit": 100}).json()["data"]
        audit = client.get("/v1/audit/approvals", params={"request_id": request["id"]}).json()
    granted = next(g for g in grants if g["id"] == request["id"])
    assert granted["active"] and granted["form"] == "desensitized" and granted["expires_at"]
    assert sorted(granted["approvers"]) == sorted([first["account"], second["account"]])
    proved = {e["provenance"]["signer"]: e["provenance"]["verified"] for e in audit["data"]}
    assert proved == {first["account"]: True, second["account"]: True}


def test_an_injected_wallet_signs_the_approval_and_the_chain_accepts_it(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-EMB", 3, "raw")  # BJ-CMC's grade-2 entry: one approval grants it
    approver = console.orgs["BJ-CMC"]["approvers"][0]
    inject_wallet(page, console.chain_id, approver["private_key"])
    login(page, console, "BJ-CMC", "inbox")
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#signer-address")).to_have_text(approver["account"])
    expect(page.locator("#signer-status")).to_contain_text("injected wallet")

    outcome = approve_in_page(page, request["id"])
    expect(outcome.locator("#decision-operation")).to_contain_text("confirmed")
    expect(outcome).to_contain_text("block")
    expect(outcome.locator("#inbox-grant")).to_contain_text("active")
    expect(outcome.locator("#inbox-grant")).to_contain_text("raw")

    with _client(console, "BJ-EMB") as client:
        mirrored = client.get(f"/v1/sharing-requests/{request['id']}").json()
        audit = client.get("/v1/audit/approvals", params={"request_id": request["id"]}).json()
    assert mirrored["status"] == "granted" and mirrored["active"]
    assert [d["approver"] for d in mirrored["decisions"]] == [approver["account"]]
    [entry] = audit["data"]
    assert entry["provenance"]["signer"] == approver["account"] and entry["provenance"]["verified"]
    assert entry["tx_hash"] == mirrored["decisions"][0]["tx_hash"]


def test_the_connect_wallet_button_appears_only_with_an_injected_wallet(page: Page, console: Console) -> None:
    login(page, console, "BJ-CMC", "inbox")
    expect(page.get_by_label("Keystore file")).to_be_visible()
    expect(page.get_by_role("button", name="Connect wallet")).to_have_count(0)


def test_another_orgs_approver_key_is_refused_and_nothing_is_sent(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-EMB", 5, "result_only")  # BJ-CY's grade-4 entry
    outsider = console.orgs["BJ-PSB"]["approvers"][0]
    posted = posts_to(page, "/v1/sharing-requests/")
    login(page, console, "BJ-CY", "inbox")
    unlock_keystore(page, console, outsider["account"])
    expect(page.locator("#signer-address")).to_have_text(outsider["account"])
    page.locator(f"#request-{request['id']}").get_by_role("button", name="Approve").click()
    alert = page.locator("#inbox-decision").get_by_role("alert")
    expect(alert).to_contain_text("NOT_AN_APPROVER")
    expect(alert).to_contain_text("field: approver")
    expect(page.get_by_role("button", name="Sign and submit")).to_have_count(0)
    assert posted == []
    with _client(console, "BJ-CY") as client:
        assert client.get(f"/v1/sharing-requests/{request['id']}").json()["approvals"] == 0


def test_a_wallet_signing_with_another_key_than_it_claims_is_refused_in_the_page(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-EMB", 5, "result_only")
    claimed, actual = console.orgs["BJ-CY"]["approvers"][:2]
    inject_wallet(page, console.chain_id, actual["private_key"], shown_account=claimed["account"])
    posted = posts_to(page, "/approvals")
    login(page, console, "BJ-CY", "inbox")
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#signer-address")).to_have_text(claimed["account"])
    outcome = approve_in_page(page, request["id"])
    alert = outcome.get_by_role("alert")
    expect(alert).to_contain_text("SIGNER_MISMATCH")
    expect(alert).to_contain_text(actual["account"])
    expect(page.get_by_role("button", name="Sign and submit")).to_be_enabled()
    assert posted == []
    with _client(console, "BJ-CY") as client:
        assert client.get(f"/v1/sharing-requests/{request['id']}").json()["approvals"] == 0


def test_a_wallet_on_another_chain_is_told_to_switch_before_it_signs(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-EMB", 5, "result_only")
    approver = console.orgs["BJ-CY"]["approvers"][0]
    inject_wallet(page, 1, approver["private_key"])  # the wallet is on Ethereum mainnet
    posted = posts_to(page, "/approvals")
    login(page, console, "BJ-CY", "inbox")
    page.get_by_role("button", name="Connect wallet").click()
    outcome = approve_in_page(page, request["id"])
    alert = outcome.get_by_role("alert")
    expect(alert).to_contain_text("WALLET_WRONG_CHAIN")
    expect(alert).to_contain_text(f"chain {console.chain_id}")
    assert posted == []


def test_a_signature_over_a_nonce_used_meanwhile_shows_the_apis_replay_code(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-CMC", 1, "result_only")  # two approvals needed: one leaves it pending
    approver = console.orgs["BJ-PSB"]["approvers"][0]
    login(page, console, "BJ-PSB", "inbox")
    unlock_keystore(page, console, approver["account"])
    expect(page.locator("#signer-address")).to_have_text(approver["account"])
    page.locator(f"#request-{request['id']}").get_by_role("button", name="Approve").click()
    expect(page.get_by_role("button", name="Sign and submit")).to_be_visible()
    with _client(console, "BJ-PSB") as client:  # meanwhile the same approver signs elsewhere (the CLI's way)
        path = f"/v1/sharing-requests/{request['id']}"
        typed = client.get(f"{path}/approval-typed-data", params={"approver": approver["account"]}).json()
        signature = sign_typed_data(approver["private_key"], typed)
        body = {
            "approver": approver["account"],
            "signature": signature,
            **{k: typed["message"][k] for k in ("nonce", "deadline")},
        }
        accepted = client.post(f"{path}/approvals", json=body)
        assert accepted.status_code == 202, accepted.text
        _confirmed(client, accepted.json()["operation_id"])
    page.get_by_role("button", name="Sign and submit").click()
    alert = page.locator("#decision-outcome").get_by_role("alert")
    expect(alert).to_contain_text("SIGNATURE_REPLAYED")
    expect(alert).to_contain_text("field: nonce")
    with _client(console, "BJ-PSB") as client:
        mirrored = _mirrored(client, request["id"], lambda r: r["approvals"] >= 1)
    assert mirrored["status"] == "pending" and mirrored["approvals"] == 1
    assert [d["approver"] for d in mirrored["decisions"]] == [approver["account"]]


def test_a_wrong_keystore_password_is_a_clear_error_and_the_right_one_still_unlocks(
    page: Page, console: Console
) -> None:
    approver = console.orgs["BJ-EIB"]["approvers"][0]
    login(page, console, "BJ-EIB", "inbox")
    unlock_keystore(page, console, approver["account"], password="not-the-password")
    alert = page.locator("#signer-status").get_by_role("alert")
    expect(alert).to_contain_text("WRONG_PASSWORD")
    expect(alert).to_contain_text("field: password")
    expect(page.locator("#signer-address")).to_have_count(0)
    unlock_keystore(page, console, approver["account"])
    expect(page.locator("#signer-address")).to_have_text(approver["account"])
    expect(page.locator("#signer-status").get_by_role("alert")).to_have_count(0)


def test_an_approver_refuses_with_a_signed_reason(page: Page, console: Console) -> None:
    request = file_request(console, "BJ-CMC", 4, "result_only")  # BJ-EMB's grade-2 entry
    approver = console.orgs["BJ-EMB"]["approvers"][0]
    reason = "用途与积水监测数据的共享范围不符 purpose out of scope"
    login(page, console, "BJ-EMB", "inbox")
    unlock_keystore(page, console, approver["account"])
    expect(page.locator("#signer-address")).to_have_text(approver["account"])
    page.locator(f"#request-{request['id']}").get_by_role("button", name="Refuse").click()
    panel = page.locator("#inbox-decision")
    panel.get_by_label("Refusal reason").fill(reason)
    panel.get_by_role("button", name="Prepare refusal").click()
    expect(panel).to_contain_text(reason)
    panel.get_by_role("button", name="Sign and submit").click()
    state = page.locator("#decision-state")
    expect(state).to_contain_text("refused")
    expect(state).to_contain_text(reason)
    with _client(console, "BJ-CMC") as client:
        mirrored = client.get(f"/v1/sharing-requests/{request['id']}").json()
    assert mirrored["status"] == "refused" and mirrored["refusal_reason"] == reason
    assert [(d["approver"], d["decision"]) for d in mirrored["decisions"]] == [(approver["account"], "refuse")]
