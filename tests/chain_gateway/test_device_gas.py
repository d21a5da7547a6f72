"""The registerDevices gas bound covers what the node needs and stays below what an estimate would be signed with."""

from __future__ import annotations

import random

import pytest
from web3 import Web3

from chain_gateway.device_calldata import SELECTOR, encode_register_devices, register_devices_gas
from chain_gateway.devnet import DEMO_CODE_RULES, SeededConsortium
from chain_gateway.gas import GAS_HEADROOM, GAS_MARGIN
from tests.chain_gateway.support import BUILT_AT

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
