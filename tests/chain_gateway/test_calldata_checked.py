"""Calldata of args the outbox already holds (encoded once at enqueue) is the same without eth_abi's validation."""

from __future__ import annotations

from typing import Any

import pytest

from chain_gateway.calldata import CalldataEncoder
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
