"""Calldata of args the outbox already holds (encoded once at enqueue) is the same without eth_abi's validation."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from chain_gateway.calldata import CalldataEncoder
from chain_gateway.device_calldata import DEVICE_INPUT_TYPE
from chain_gateway.devnet import SeededConsortium
from tests.chain_gateway.support import device


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("registerDevice", [device(1)]),
        ("registerDevice", [device(2, status=2, district=110101)]),
        ("changeLifecycle", [device(3)[0], 1, "", "maintenance"]),
        ("registerDevices", [[device(4), device(5)]]),
    ],
)
def test_checked_args_encode_to_the_same_calldata(chain: SeededConsortium, function: str, args: list[Any]) -> None:
    encoder = CalldataEncoder(chain.deployment)
    assert encoder.encode("DeviceRegistry", function, args, checked=True) == encoder.encode(
        "DeviceRegistry", function, args
    )


@pytest.mark.parametrize("serial", [0, 7, 999_999])
def test_single_device_calldata_equals_eth_abi(chain: SeededConsortium, serial: int) -> None:
    encoder = CalldataEncoder(chain.deployment)
    fields = device(serial)
    fields[7] = '{"pole":"P-' + "x" * (serial % 97) + '"}'  # attributes of several lengths
    expected = function_signature_to_4byte_selector(f"registerDevice({DEVICE_INPUT_TYPE})") + abi_encode(
        [DEVICE_INPUT_TYPE], [tuple(fields)]
    )
    assert encoder.encode("DeviceRegistry", "registerDevice", [fields])[1] == expected
