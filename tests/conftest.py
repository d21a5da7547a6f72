"""Shared fixtures: a real anvil node with the demo consortium, a real PostgreSQL, and per-test databases.

Every test that takes `database_url` runs twice: against SQLite and against PostgreSQL.
Tests that take `chain` get the seeded chain and leave it as they found it (anvil snapshot and revert).
Each test module gets its own node: after hundreds of evm_snapshot/evm_revert rounds on one long-lived node,
anvil (1.7.1) was seen answering null for a block below its head and losing contract code in anvil_reorg.
The consortium is seeded once per session (per xdist worker) and loaded into each module's node, and the demo
keys are encrypted once per session: both cost seconds each, the load a tenth of one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.settings import Settings
from tests.support import TEST_KEYSTORE_PASSWORD
from tests.support.postgres import PostgresServer
from tests.support.seeded_chain import SeededChain, seed_once


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24 set; rich reads them once when a CLI module makes its
    # Console and then ignores the COLUMNS a test sets, so the workers drop them as a serial run has none
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="module")
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture(scope="session")
def seeded_chain() -> SeededChain:
    """The demo consortium seeded once on a scratch node, with that node's state."""
    return seed_once()


@pytest.fixture(scope="module")
def seeded(w3: Web3, seeded_chain: SeededChain) -> SeededConsortium:
    """The demo consortium on the module's anvil: the session's seeded chain loaded into it."""
    return seeded_chain.load_into(w3)


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
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dirchain.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("t_" + uuid.uuid4().hex[:12])
    yield url
    server.drop_database(url)


@pytest.fixture(scope="session")
def keystore_dir(seeded_chain: SeededChain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every demo org's keys (main accounts and approvers), encrypted once per session (tests only read them)."""
    directory = tmp_path_factory.mktemp("keystore")
    keystore = Keystore(directory, TEST_KEYSTORE_PASSWORD)
    for org in seeded_chain.consortium.orgs.values():
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
