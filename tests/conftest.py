"""Shared fixtures: a real anvil node with the demo consortium, a real PostgreSQL, and per-test databases.

Every test that takes `database_url` runs twice: against SQLite and against PostgreSQL.
Tests that take `chain` get the seeded chain and leave it as they found it (anvil snapshot and revert).
Each test module gets its own node: after hundreds of evm_snapshot/evm_revert rounds on one long-lived node,
anvil (1.7.1) was seen answering null for a block below its head and losing contract code in anvil_reorg.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.settings import Settings
from tests.support import TEST_KEYSTORE_PASSWORD
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="module")
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture(scope="module")
def seeded(w3: Web3) -> SeededConsortium:
    """The demo consortium deployed once on the module's anvil."""
    return seed_demo_consortium(w3)


@pytest.fixture
def chain(w3: Web3, seeded: SeededConsortium) -> Iterator[SeededConsortium]:
    """The seeded chain, reverted to its seeded state after the test."""
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield seeded
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dirchain.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("t_" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
def keystore_dir(seeded: SeededConsortium, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every demo org's keys (main accounts and approvers), encrypted once per module."""
    directory = tmp_path_factory.mktemp("keystore")
    keystore = Keystore(directory, TEST_KEYSTORE_PASSWORD)
    for org in seeded.orgs.values():
        keystore.add(org.private_key, DEV_SCRYPT_N)
        for _, key in org.approvers:
            keystore.add(key, DEV_SCRYPT_N)
    return directory


@pytest.fixture
def service_settings(
    anvil: AnvilNode, chain: SeededConsortium, database_url: str, keystore_dir: Path, tmp_path: Path
) -> Settings:
    """Settings of the gateway, indexer and API over the seeded chain and this test's database."""
    deployment_path = tmp_path / "deployment.json"
    write_deployment(chain.deployment, deployment_path)
    return Settings(
        rpc_urls=[anvil.url],
        chain_id=chain.deployment["chain_id"],
        deployments_path=deployment_path,
        database_url=database_url,
        keystore_dir=keystore_dir,
        keystore_password=TEST_KEYSTORE_PASSWORD,
        # the service's own files stay in the test's directory, never in the checkout's var/
        capability_key_path=tmp_path / "keys" / "capability-es256.pem",
        zone_masking_key_path=tmp_path / "keys" / "zone-masking.key",
        import_dir=tmp_path / "imports",
    )
