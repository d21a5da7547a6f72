"""Fixtures of the gateway tests: a keystore with the demo orgs' keys, settings, and a gateway per database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.gateway import Gateway
from chain_gateway.keystore import Keystore
from chain_gateway.outbox import create_outbox_engine
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings
from tests.support import TEST_KEYSTORE_PASSWORD


@pytest.fixture
def keystore(keystore_dir: Path) -> Keystore:
    return Keystore(keystore_dir, TEST_KEYSTORE_PASSWORD)


@pytest.fixture
def settings(service_settings: Settings) -> Settings:
    return service_settings.model_copy(update={"confirmations": 0, "gateway_poll_seconds": 0.05})


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


@pytest.fixture
def anvil_rpc(settings: Settings) -> Iterator[JsonRpcClient]:
    with JsonRpcClient(settings.rpc_urls) as rpc:
        yield rpc
