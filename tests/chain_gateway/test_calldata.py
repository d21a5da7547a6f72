"""The calldata encoder gives web3.py's bytes for the JSON form of the arguments."""

from __future__ import annotations

import pytest
from web3 import Web3

from chain_gateway.calldata import CalldataEncoder
from chain_gateway.devnet import SeededConsortium
from chain_gateway.errors import InvalidCall
from chain_gateway.governance import contract
from tests.chain_gateway.support import device


def test_struct_array_and_bytes32_args_encode_like_web3(seeded: SeededConsortium, w3: Web3) -> None:
    encoder = CalldataEncoder(seeded.deployment)
    registry = contract(w3, seeded.deployment, "DeviceRegistry")
    devices = [device(1), device(2)]
    address, data = encoder.encode("DeviceRegistry", "registerDevices", [devices])
    assert address == registry.address
    assert "0x" + data.hex() == registry.encode_abi("registerDevices", args=[[tuple(d) for d in devices]])

    report = "0x" + "ab" * 32
    _, data = encoder.encode("DeviceRegistry", "recordInspection", ["BJ-CAMR-110105000001", 0, 1, report, "ok"])
    expected = registry.encode_abi(
        "recordInspection", args=["BJ-CAMR-110105000001", 0, 1, bytes.fromhex("ab" * 32), "ok"]
    )
    assert "0x" + data.hex() == expected


def test_struct_as_object_by_field_names(seeded: SeededConsortium) -> None:
    encoder = CalldataEncoder(seeded.deployment)
    fields = ["code", "typeId", "status", "district", "lat", "lon", "builtAt", "attributes"]
    as_object = dict(zip(fields, device(1), strict=True))
    assert encoder.encode("DeviceRegistry", "registerDevice", [as_object]) == encoder.encode(
        "DeviceRegistry", "registerDevice", [device(1)]
    )


@pytest.mark.parametrize(
    ("contract_name", "function", "args"),
    [
        ("Nope", "registerDevice", []),
        ("DeviceRegistry", "nope", []),
        ("DeviceRegistry", "registerDevice", [["BJ", 1]]),
        ("DeviceRegistry", "registerDevice", [["BJ", "x", 1, 1, 1, 1, 1, "{}"]]),
        ("DeviceRegistry", "recordInspection", ["c", 0, 1, "0xzz", "n"]),
    ],
)
def test_arguments_that_do_not_fit_raise_invalid_call(
    seeded: SeededConsortium, contract_name: str, function: str, args: list[object]
) -> None:
    with pytest.raises(InvalidCall):
        CalldataEncoder(seeded.deployment).encode(contract_name, function, args)
