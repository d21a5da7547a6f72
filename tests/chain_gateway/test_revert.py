"""Revert data decodes to the Solidity error's name and JSON-friendly arguments."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak

from chain_gateway.devnet import SeededConsortium
from chain_gateway.revert import REVERTED_WITHOUT_DATA, UNKNOWN_ERROR, RevertDecoder
from chain_gateway.rpc import RpcErrorAnswer


def _data(signature: str, types: list[str], values: list[object]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, values)).hex()


def test_custom_error_args_are_json_friendly(seeded: SeededConsortium) -> None:
    decoder = RevertDecoder(seeded.deployment["errors_abi"])
    account = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"
    role = keccak(text="REGISTRAR")
    revert = decoder.decode(_data("ConsortiumMissingRole(address,bytes32)", ["address", "bytes32"], [account, role]))
    assert revert.name == "ConsortiumMissingRole"
    assert revert.args_dict == {"account": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "role": "0x" + role.hex()}
    assert revert.to_json() == {"error": revert.name, "args": revert.args_dict}


def test_error_string_and_panic_decode() -> None:
    decoder = RevertDecoder([])
    assert decoder.decode(_data("Error(string)", ["string"], ["no"])).args_dict == {"message": "no"}
    panic = decoder.decode(_data("Panic(uint256)", ["uint256"], [0x11]))
    assert (panic.name, panic.args_dict) == ("Panic", {"code": 0x11})


def test_unknown_selector_and_empty_data() -> None:
    decoder = RevertDecoder([])
    unknown = decoder.decode("0xdeadbeef")
    assert (unknown.name, unknown.args_dict) == (UNKNOWN_ERROR, {"selector": "0xdeadbeef"})
    assert decoder.decode("0x").name == REVERTED_WITHOUT_DATA


def test_rpc_error_without_revert_is_not_a_revert() -> None:
    decoder = RevertDecoder([])
    assert decoder.from_rpc_error(RpcErrorAnswer("eth_call", {"code": -32000, "message": "insufficient funds"})) is None
    nested = RpcErrorAnswer("eth_call", {"code": 3, "message": "execution reverted", "data": {"data": "0xdeadbeef"}})
    assert decoder.from_rpc_error(nested).name == UNKNOWN_ERROR  # type: ignore[union-attr]
