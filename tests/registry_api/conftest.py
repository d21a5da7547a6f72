"""Fixtures of the API tests: the app over the seeded anvil chain and each database, with a token per demo org."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from web3 import Web3

from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.settings import Settings
from registry_api.app import create_app
from registry_api.auth import issue_token
from tests.registry_api.support import Api

KEYSTORE_PASSWORD = SecretStr("registry-api-tests")


@pytest.fixture(scope="session")
def api_keystore(seeded: SeededConsortium, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore with every demo org's main account (encrypted once per session)."""
    directory = tmp_path_factory.mktemp("keystore")
    keystore = Keystore(directory, KEYSTORE_PASSWORD)
    for org in seeded.orgs.values():
        keystore.add(org.private_key, DEV_SCRYPT_N)
    return directory


@pytest.fixture
def api_settings(
    anvil: AnvilNode, chain: SeededConsortium, database_url: str, api_keystore: Path, tmp_path: Path
) -> Settings:
    deployment_path = tmp_path / "deployment.json"
    write_deployment(chain.deployment, deployment_path)
    return Settings(
        rpc_urls=[anvil.url],
        chain_id=chain.deployment["chain_id"],
        deployments_path=deployment_path,
        database_url=database_url,
        keystore_dir=api_keystore,
        keystore_password=KEYSTORE_PASSWORD,
        confirmations=1,
        run_gateway_in_api=False,
        run_indexer_in_api=False,
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
