"""A real 4-signer Clique network of geth nodes (chain_gateway.clique) with the demo consortium on it.

geth is built once from the Go module proxy and cached in .cache/geth (a few minutes on a fresh clone); the
network is made fresh for each test module and the consortium deployed by transactions through web3 with the
POA extraData middleware, as `scripts/network up --demo` does (each node's signer an account of its member org).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain_gateway.clique import CliqueNetwork, CliqueNode, deploy_demo
from chain_gateway.devnet import SeededConsortium
from chain_gateway.finality import safe_confirmations
from chain_gateway.gateway import Gateway
from chain_gateway.settings import Settings
from indexer.service import Indexer
from tests.chain_gateway.support import wait_until
from tests.support import TEST_KEYSTORE_PASSWORD

CLIQUE_CONFIRMATIONS = safe_confirmations(4)  # floor(signers / 2) + 1 blocks on top: docs/network.md


@dataclass
class CliqueUnderTest:
    network: CliqueNetwork
    consortium: SeededConsortium
    deployment_path: Path

    @property
    def nodes(self) -> list[CliqueNode]:
        return self.network.nodes

    def settings(self, tmp_path: Path, keystore_dir: Path, *urls: str, name: str = "dirchain") -> Settings:
        """Service settings on the nodes `urls` (in failover order) with a database of their own under tmp_path."""
        return Settings(
            rpc_urls=list(urls),
            chain_id=self.consortium.deployment["chain_id"],
            deployments_path=self.deployment_path,
            database_url=f"sqlite:///{tmp_path / f'{name}.db'}",
            keystore_dir=keystore_dir,
            keystore_password=TEST_KEYSTORE_PASSWORD,
            confirmations=CLIQUE_CONFIRMATIONS,
            gateway_poll_seconds=0.1,
            indexer_poll_seconds=0.2,
        )

    def restore(self) -> None:
        """Every node running, peered and sealing again (a test's faults must not leak into the next)."""
        stopped = [n for n in self.nodes if not n.running()]
        for node in stopped:
            self.network.start_node(node)
        wait_until(lambda: all(n.unlocked() for n in stopped), timeout=60)
        for node in self.nodes:
            if int(node.rpc("net_peerCount"), 16) < len(self.nodes) - 1:
                self.network.rejoin(node)
        if stopped:
            self.network.start_sealing(stopped)
        for node in self.nodes:
            node.rpc("miner_start")
        self.network.wait_ready()


@pytest.fixture(scope="module")
def clique(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliqueUnderTest]:
    network = CliqueNetwork.launch(tmp_path_factory.mktemp("clique"))
    try:
        deployment_path = network.root / "deployment.json"
        consortium = deploy_demo(network, deployment_path)
        yield CliqueUnderTest(network, consortium, deployment_path)
    finally:
        network.stop()


@pytest.fixture
def network(clique: CliqueUnderTest) -> Iterator[CliqueUnderTest]:
    """The module's network, made whole again after the test."""
    yield clique
    clique.restore()


@contextmanager
def running(*services: Gateway | Indexer) -> Iterator[None]:
    """Run each gateway's and indexer's own loop in a thread, as `dirchain serve` does; stop and close them after."""
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in services]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
