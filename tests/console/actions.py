"""What a user does in the console, as steps several tests share (by label and role, as a user finds them)."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import Console

__all__ = ["approve_in_page", "log_out", "unlock_keystore"]


def unlock_keystore(page: Page, console: Console, account: str, password: str | None = None) -> None:
    page.get_by_label("Keystore file").set_input_files(console.keystore_file(account))
    page.get_by_label("Keystore password").fill(console.keystore_password if password is None else password)
    page.get_by_role("button", name="Unlock key").click()


def approve_in_page(page: Page, request_id: int) -> Locator:
    """Click Approve on the request's row, check the typed data shown, sign and submit; returns the outcome."""
    page.locator(f"#request-{request_id}").get_by_role("button", name="Approve").click()
    panel = page.locator("#inbox-decision")
    expect(panel).to_contain_text(f"#{request_id}")
    expect(panel).to_contain_text("DirChainSharing")
    panel.get_by_role("button", name="Sign and submit").click()
    return page.locator("#decision-outcome")


def log_out(page: Page) -> None:
    page.locator("#logout").click()
    expect(page.get_by_label("API token")).to_be_visible()
