"""Fixtures of the gateway tests: a keystore with the demo orgs' keys, settings, and a gateway per database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from web3 import Web3

from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.gateway import Gateway
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore
from chain_gateway.outbox import create_outbox_engine
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings

KEYSTORE_PASSWORD = "test-only-password"


@pytest.fixture
def keystore(tmp_path: Path, chain: SeededConsortium) -> Keystore:
    store = Keystore(tmp_path / "keystore", SecretStr(KEYSTORE_PASSWORD))
    for org in chain.orgs.values():
        store.add(org.private_key, DEV_SCRYPT_N)
    return store


@pytest.fixture
def settings(
    anvil: AnvilNode, chain: SeededConsortium, database_url: str, tmp_path: Path, keystore: Keystore
) -> Settings:
    deployments = tmp_path / "deployments.json"
    write_deployment(chain.deployment, deployments)
    return Settings(
        rpc_urls=[anvil.url],
        chain_id=chain.deployment["chain_id"],
        deployments_path=deployments,
        database_url=database_url,
        keystore_dir=tmp_path / "keystore",
        keystore_password=SecretStr(KEYSTORE_PASSWORD),
        confirmations=0,
        gateway_poll_seconds=0.05,
    )


@pytest.fixture
def make_gateway(settings: Settings, chain: SeededConsortium, keystore: Keystore) -> Iterator[Callable[..., Gateway]]:
    """A factory of gateways on the test's outbox (with settings overrides); all closed after the test."""
    made: list[tuple[JsonRpcClient, Engine]] = []

    def factory(gateway_options: dict[str, Any] | None = None, **overrides: object) -> Gateway:
        local = settings.model_copy(update=overrides)
        engine = create_outbox_engine(local.database_url)
        rpc = JsonRpcClient(local.rpc_urls)
        made.append((rpc, engine))
        gateway = Gateway(local, engine, chain.deployment, keystore, rpc, **(gateway_options or {}))
        gateway.create_tables()
        return gateway

    yield factory
    for rpc, engine in made:
        rpc.close()
        engine.dispose()


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


@pytest.fixture
def mine(w3: Web3) -> Callable[[int], None]:
    def _mine(blocks: int = 1) -> None:
        for _ in range(blocks):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    return _mine
