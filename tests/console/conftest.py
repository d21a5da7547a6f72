"""The console's end-to-end fixtures: the dev profile (anvil, demo consortium, API with gateway and indexer)
once per worker, and Debian's chromium driven by Playwright (`executable_path`: no browser is downloaded).

Every page a test opens fails the test on a console error, an uncaught exception, a 5xx answer, a console file
not found, or a request leaving the API's origin (the console must work offline). The API's 4xx answers are not
errors here: showing them is the page's job, and the tests check that it does. Each test leaves a full-page
screenshot, and steps may add more, under build/test-artifacts/console/ (DIRCHAIN_TEST_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)
from web3 import Web3

from chain_gateway.devnet import AnvilNode
from registry_api.demo import file_demo_data
from registry_api.devnet import DEV_PASSWORD, prepare_devnet
from tests.registry_api.live import blocks, scheduled, serve

CHROMIUM = Path(os.environ.get("DIRCHAIN_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(
    os.environ.get("DIRCHAIN_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts")
)
DEMO_DEVICES = 12
UI_TIMEOUT_MS = 60_000  # a write is confirmed in a few blocks of 0.2 s; generous for a loaded CI machine


@dataclass
class Console:
    """The running dev profile: the API's base URL, the demo orgs' credentials and the dev keystore."""

    url: str
    orgs: dict[str, Any]
    keystore_dir: Path
    keystore_password: str
    chain_id: int

    def token(self, org: str) -> str:
        return str(self.orgs[org]["token"])

    def keystore_file(self, account: str) -> Path:
        return self.keystore_dir / f"{Web3.to_checksum_address(account)}.json"


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """What `scripts/run` starts, on a fresh anvil: deployed, seeded, demo data filed through the API."""
    var = tmp_path_factory.mktemp("console-var")
    with AnvilNode() as node:
        settings, _ = prepare_devnet(node.url, "http://127.0.0.1:0", var, var / "deployments")
        credentials = json.loads((var / "dev" / "credentials.json").read_text(encoding="utf-8"))
        with blocks(Web3(Web3.HTTPProvider(node.url))), serve(scheduled(settings)) as (url, _app):
            file_demo_data(url, credentials, DEMO_DEVICES)
            yield Console(
                url=url,
                orgs=credentials["orgs"],
                keystore_dir=var / "dev" / "keystore",
                keystore_password=DEV_PASSWORD.get_secret_value(),
                chain_id=int(credentials["chain_id"]),
            )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: scripts/setup --browser installs Debian's chromium"
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


@dataclass
class PageWatch:
    """What went wrong in the page: console errors, uncaught exceptions, requests off the API's origin."""

    origin: str
    errors: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        if not (request.url.startswith(self.origin) or request.url.startswith(("data:", "blob:", "about:"))):
            self.offsite.append(request.url)

    def on_response(self, response: Response) -> None:
        """A 5xx from anywhere, or a console file not found; the API's 4xx answers are the page's to show."""
        api_answer = response.url.startswith(f"{self.origin}/v1/")
        if response.status >= 500 or (response.status >= 400 and not api_answer):
            self.errors.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        # chromium also logs every HTTP error answer as "Failed to load resource"; on_response judges those
        if message.type == "error" and not message.text.startswith("Failed to load resource: the server responded"):
            self.errors.append(f"console.error: {message.text}")


def artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.fixture
def page(browser: Browser, console: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no token kept) on the console; fails the test on any error in the page."""
    context: BrowserContext = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    watch = PageWatch(console.url)
    context.on("request", watch.on_request)
    context.on("response", watch.on_response)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.errors.append(f"uncaught: {exc}"))
    yield page
    try:
        ARTIFACTS.joinpath("console").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "console" / f"{artifact_name(request.node.nodeid)}.png", full_page=True)
    finally:
        context.close()
    assert not watch.offsite, f"the console reached off its origin: {watch.offsite}"
    assert not watch.errors, f"errors in the page: {watch.errors}"


def screenshot(page: Page, name: str) -> Path:
    """A named step's screenshot among the test artifacts."""
    path = ARTIFACTS / "console" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path


def login(page: Page, console: Console, org: str, at: str = "map") -> None:
    """Log in as `org` with its API token through the log-in form, landing on page `at`."""
    page.goto(f"{console.url}/console/#/login?next=/{at}")
    page.get_by_label("API token").fill(console.token(org))
    page.get_by_role("button", name="Log in").click()
    page.locator("#who").get_by_text(org).wait_for()
