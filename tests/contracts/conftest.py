"""Backends for the contract behaviour tests: every test runs on eth-tester (py-evm) and on anvil.

Each backend gets the demo consortium deployed and seeded once per session (eth-tester manages ~24 tx/s);
every test then starts from that seeded state and the backend is put back after it (eth-tester snapshots,
anvil `evm_snapshot`/`evm_revert`). On anvil the suite has a node of its own for the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth.vm.forks import ParisVM
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from chain_gateway.devnet import ANVIL_MNEMONIC, AnvilNode, seed_demo_consortium
from tests.contracts.support import Backend, ContractsChain, pyevm_simulator, rpc_simulator

BACKENDS = ("eth-tester", "anvil")
DEV_ACCOUNTS = 30  # dev keys 0..29 are funded on eth-tester too (seeding uses 0..16, tests 20..29)
GAS_LIMIT = 300_000_000  # per block, as the devnet's anvil


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method} failed: {response['error']}")
    return response["result"]


def _eth_tester_backend() -> Backend:
    """py-evm at the Paris fork (the contracts' evmVersion), dev keys of the anvil mnemonic funded at genesis."""
    pyevm = PyEVMBackend.from_mnemonic(
        ANVIL_MNEMONIC,
        num_accounts=DEV_ACCOUNTS,
        hd_path="m/44'/60'/0'/0",
        genesis_parameters=PyEVMBackend.generate_genesis_params({"gas_limit": GAS_LIMIT}),
        vm_configuration=((0, ParisVM),),
    )
    tester = EthereumTester(pyevm)
    w3 = Web3(EthereumTesterProvider(tester))
    chain = ContractsChain("eth-tester", w3, seed_demo_consortium(w3), pyevm_simulator(w3, pyevm))
    seeded_snapshot = tester.take_snapshot()

    def isolate() -> Callable[[], None]:
        return lambda: tester.revert_to_snapshot(seeded_snapshot)

    return Backend(chain, isolate)


def _anvil_backend(w3: Web3) -> Backend:
    chain = ContractsChain("anvil", w3, seed_demo_consortium(w3), rpc_simulator(w3))

    def isolate() -> Callable[[], None]:
        snapshot = _rpc(w3, "evm_snapshot", [])
        return lambda: _rpc(w3, "evm_revert", [snapshot])

    return Backend(chain, isolate)


@pytest.fixture(scope="session")
def contracts_anvil() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="session")
def built_backends() -> dict[str, Backend]:
    """Each backend once it is built, kept for the session.

    pytest finalizes a parametrized session fixture whenever the next test takes the other parameter; a serial
    run orders the tests so that happens once, but an xdist worker gets them a module or class at a time and
    would deploy and seed again for each (eth-tester takes ~15 s).
    """
    return {}


@pytest.fixture(scope="session", params=BACKENDS)
def contracts_backend(request: pytest.FixtureRequest, built_backends: dict[str, Backend]) -> Backend:
    if request.param not in built_backends:
        if request.param == "eth-tester":
            built_backends[request.param] = _eth_tester_backend()
        else:
            node: AnvilNode = request.getfixturevalue("contracts_anvil")
            built_backends[request.param] = _anvil_backend(Web3(Web3.HTTPProvider(node.url)))
    return built_backends[request.param]


@pytest.fixture
def net(contracts_backend: Backend) -> Iterator[ContractsChain]:
    """The seeded demo consortium on one backend; whatever the test does is undone after it."""
    restore = contracts_backend.isolate()
    yield contracts_backend.chain
    restore()
