"""The registerDevices gas bound covers what the node needs, stays below what an estimate would be signed with, and
spares the node the estimate; a bound that runs out of gas is signed again, sized by the node."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from web3 import Web3

from chain_gateway import gas
from chain_gateway.device_calldata import SELECTOR, encode_register_devices, register_devices_gas
from chain_gateway.devnet import DEMO_CODE_RULES, SeededConsortium
from chain_gateway.gas import GAS_HEADROOM, GAS_MARGIN
from chain_gateway.gateway import Gateway, WriteRequest
from chain_gateway.outbox import CONFIRMED
from tests.chain_gateway.support import BUILT_AT, device, drain, registered_count

ORG = "BJ-PSB"


def _batch(count: int, attributes_bytes: int, seed: int) -> list[tuple[object, ...]]:
    """`count` new devices of every demo type, with attributes of about `attributes_bytes` (random text: nonzero)."""
    rng = random.Random(seed)
    devices = []
    for i in range(count):
        type_id, _, prefix, _, _ = DEMO_CODE_RULES[i % len(DEMO_CODE_RULES)]
        filler = "".join(rng.choice("abcdefghij") for _ in range(max(0, attributes_bytes - 12)))
        devices.append(
            (f"{prefix}110105{seed:02d}{i:04d}", type_id, 2, 110105, 39_900_000 + i, 116_400_000, BUILT_AT,
             f'{{"note":"{filler}"}}')
        )  # fmt: skip
    return devices


@pytest.mark.parametrize(
    ("count", "attributes_bytes"),
    [(1, 90), (10, 90), (250, 90), (250, 2), (500, 90), (14, 8_000), (60, 2_000)],
)
def test_bound_lies_between_the_nodes_estimate_and_the_estimate_with_margin(
    chain: SeededConsortium, w3: Web3, count: int, attributes_bytes: int
) -> None:
    data = encode_register_devices(_batch(count, attributes_bytes, seed=count % 97))
    call = {
        "from": chain.orgs[ORG].account,
        "to": chain.deployment["contracts"]["DeviceRegistry"]["address"],
        "data": "0x" + data.hex(),
    }
    estimate = w3.eth.estimate_gas(call)  # type: ignore[arg-type]

    bound = register_devices_gas(data)

    assert bound is not None and estimate <= bound <= estimate * GAS_MARGIN + GAS_HEADROOM, (estimate, bound)


def test_other_calldata_has_no_bound() -> None:
    assert register_devices_gas(b"\x12\x34\x56\x78" + bytes(64)) is None
    assert register_devices_gas(SELECTOR) is None


def _batches(chain: SeededConsortium, first: int, count: int, size: int) -> list[WriteRequest]:
    account = chain.orgs[ORG].account
    return [
        WriteRequest(
            ORG, account, "DeviceRegistry", "registerDevices", [[device(first + b * size + i) for i in range(size)]]
        )
        for b in range(count)
    ]


def test_batches_land_with_the_bound_and_the_node_estimates_none(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway({"gas_estimator": "access_list"})
    asked: list[object] = []
    monkeypatch.setattr(gateway._gas, "_estimate", lambda calls: asked.extend(calls) or [])
    ops = gateway.enqueue_many(_batches(chain, 600, count=3, size=20))

    done = drain(gateway, ops)

    assert all(d.status == CONFIRMED for d in done) and not asked
    for d in done:
        used = w3.eth.get_transaction_receipt(d.tx_hash)["gasUsed"]  # type: ignore[arg-type]
        assert d.gas_limit is not None and used < d.gas_limit < used * GAS_MARGIN + GAS_HEADROOM
    assert all(registered_count(w3, chain.deployment, device(s)[0]) == 1 for s in (600, 659))


def test_batch_whose_bound_runs_out_of_gas_is_signed_again_and_lands_once(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway({"gas_estimator": "access_list"})
    monkeypatch.setattr(gas, "register_devices_gas", lambda data: 200_000)  # as if the contract had grown costlier
    nonce_before = w3.eth.get_transaction_count(chain.orgs[ORG].account)  # type: ignore[arg-type]
    [op] = gateway.enqueue_many(_batches(chain, 700, count=1, size=20))

    [done] = drain(gateway, [op])

    assert done.status == CONFIRMED
    assert done.nonce == nonce_before + 1  # the first nonce went to the transaction that ran out of gas
    assert done.gas_limit is not None and done.gas_limit > 1_000_000  # sized by the node the second time
    assert all(registered_count(w3, chain.deployment, device(s)[0]) == 1 for s in (700, 719))
