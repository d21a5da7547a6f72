"""What the contract state machines share: their hypothesis settings, the backend they run on, predicted calls.

Each machine is small by default so that all of them add about a minute to CI; `DIRCHAIN_STATEFUL_SCALE=N`
multiplies every machine's examples and steps by N for a longer local run, e.g.
`DIRCHAIN_STATEFUL_SCALE=10 .venv/bin/pytest -q -n 0 tests/contracts -k walks`. The runs stay derandomized
(the same examples for the same scale), so a failure replays by running the same command again. A failing walk is
printed as found; shrinking it (re-running dozens of transactions per try) can outlast the suite's per-test
timeout, so it happens only with `DIRCHAIN_STATEFUL_SHRINK=1`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils.abi import get_abi_output_types
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from web3.contract.contract import ContractFunction
from web3.types import RPCEndpoint, TxReceipt

from tests.contracts.support import ContractsChain

__all__ = [
    "ANVIL_ONLY",
    "SCALE_ENV",
    "SHRINK_ENV",
    "ChainMachine",
    "Outcome",
    "machine_settings",
    "read_all",
    "run_machine",
    "run_predicted",
]

SCALE_ENV = "DIRCHAIN_STATEFUL_SCALE"
SHRINK_ENV = "DIRCHAIN_STATEFUL_SHRINK"

# The machines test the contracts' logic, not the EVM: anvil (the devnet's node) runs the same bytecode as
# eth-tester at a fraction of the cost (eth-tester mines ~24 tx/s), so they run there only.
ANVIL_ONLY = pytest.mark.parametrize("contracts_backend", ["anvil"], indirect=True)

Outcome = tuple[str, tuple[object, ...]] | None
"""A predicted answer: (custom error name, its args) for a revert, or None for success."""


def machine_settings(max_examples: int, steps: int) -> settings:
    """Derandomized settings of `max_examples` walks of `steps` steps, both times the scale from the environment."""
    scale = max(1, int(os.environ.get(SCALE_ENV, "1")))
    phases = list(Phase) if os.environ.get(SHRINK_ENV) == "1" else [p for p in Phase if p != Phase.shrink]
    return settings(
        max_examples=max_examples * scale,
        stateful_step_count=steps * scale,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the checkout
        derandomize=True,  # the same walks every time: a failure is a contract or model change, and replays
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow],
    )


class ChainMachine(RuleBasedStateMachine):
    """A state machine on `chain`: each walk starts from the chain's state at its start and puts it back after."""

    chain: ContractsChain

    def __init__(self) -> None:
        super().__init__()
        self.restore = self.chain.snapshot()

    def teardown(self) -> None:
        self.restore()


def run_machine(machine: type[ChainMachine], chain: ContractsChain, config: settings, **attributes: Any) -> None:
    """Runs `machine`'s walks on `chain` (and any other class `attributes` it needs) with `config`."""
    bound = type(machine.__name__, (machine,), {"chain": chain, **attributes})
    run_state_machine_as_test(bound, settings=config)


def run_predicted(chain: ContractsChain, fn: ContractFunction, key: str, expected: Outcome) -> TxReceipt | None:
    """Sends `fn` signed by `key` if `expected` is success (its receipt), else checks it reverts as predicted."""
    if expected is not None:
        chain.assert_reverts(fn, key, expected[0], *expected[1])
        return None
    return chain.transact(fn, key)


def read_all(chain: ContractsChain, calls: Sequence[ContractFunction]) -> list[Any]:
    """The results of the view `calls` on the latest block, fetched in one JSON-RPC batch.

    An invariant reads the whole state after every step: one round trip, and calldata encoded once per distinct
    call (web3's per-call preparation costs more than anvil's answer), keep that affordable. Results are as
    eth_abi decodes them: structs as tuples, addresses in lower case.
    """
    if not calls:
        return []
    prepared = [_prepared(call) for call in calls]
    requests = [(RPCEndpoint("eth_call"), [{"to": to, "data": data}, "latest"]) for to, data, _ in prepared]
    responses = chain.w3.provider.make_batch_request(requests)  # type: ignore[attr-defined]
    if not isinstance(responses, list):  # the node refused the whole batch
        raise AssertionError(f"batch of reads failed: {responses!r}")
    results = []
    for (_, _, types), response in zip(prepared, responses, strict=True):
        if "error" in response:
            raise AssertionError(f"read failed: {response['error']!r}")
        values = abi_decode(types, bytes.fromhex(response["result"].removeprefix("0x")))
        results.append(values[0] if len(values) == 1 else values)
    return results


_PREPARED: dict[tuple[str, str, tuple[Any, ...]], tuple[str, str, list[str]]] = {}


def _prepared(call: ContractFunction) -> tuple[str, str, list[str]]:
    """(target, calldata, output types) of a view call; kept per target, function and arguments."""
    key = (call.address, call.abi_element_identifier, tuple(call.args))
    if key not in _PREPARED:
        _PREPARED[key] = (call.address, call._encode_transaction_data(), list(get_abi_output_types(call.abi)))
    return _PREPARED[key]
