"""Fixtures of the API tests: the app over the seeded anvil chain and each database, with a token per demo org."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from registry_api.app import create_app
from registry_api.auth import issue_token
from tests.registry_api.support import Api


@pytest.fixture
def api_settings(service_settings: Settings) -> Settings:
    """The tests drive the gateway and indexer by hand (deterministic), one confirmation on top."""
    return service_settings.model_copy(
        update={"confirmations": 1, "run_gateway_in_api": False, "run_indexer_in_api": False}
    )


@pytest.fixture
def api(api_settings: Settings, chain: SeededConsortium, w3: Web3) -> Iterator[Api]:
    """The app with gateway and indexer driven by the test, the mirror synced, a token per demo org."""
    app = create_app(api_settings)
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {code: issue_token(engine, code, org.account, "tests") for code, org in chain.orgs.items()}
        app.state.indexer.sync_once()
        yield Api(client=client, app=app, tokens=tokens, chain=chain, w3=w3)
