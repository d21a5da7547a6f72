"""The generated event decoders agree with eth_abi on every event of the compiled contracts."""

from __future__ import annotations

from typing import Any

import eth_abi
import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_gateway.compiler import load_artifacts
from indexer.abi import EventDecoder, _eth_abi_decoder, _fast_decoder, _split_tuple, event_signature
from indexer.errors import LogDecodeError

ARTIFACTS = load_artifacts()
DEPLOYMENT: Any = {
    "contracts": {
        name: {"address": to_checksum_address(f"0x{i + 1:040x}"), "abi": ARTIFACTS["contracts"][name]["abi"]}
        for i, name in enumerate(sorted(ARTIFACTS["contracts"]))
    }
}
DECODER = EventDecoder(DEPLOYMENT)
SPECS = sorted(DECODER.by_key.values(), key=lambda s: s.key)


def _strategy(kind: str) -> st.SearchStrategy[Any]:
    if kind.endswith("]"):
        inner, size = kind[: kind.rindex("[")], kind[kind.rindex("[") + 1 : -1]
        if size:
            return st.lists(_strategy(inner), min_size=int(size), max_size=int(size))
        return st.lists(_strategy(inner), max_size=4)
    if kind.startswith("("):
        return st.tuples(*(_strategy(p) for p in _split_tuple(kind[1:-1])))
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        return st.integers(0, 2**bits - 1)
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if kind == "bool":
        return st.booleans()
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
    if kind == "string":
        return st.text(max_size=80)
    if kind == "bytes":
        return st.binary(max_size=100)
    if kind.startswith("bytes"):
        size = int(kind[5:])
        return st.binary(min_size=size, max_size=size)
    raise AssertionError(f"no strategy for {kind}")


def test_every_event_of_the_contracts_gets_a_generated_decoder() -> None:
    assert {s.key for s in SPECS} >= {"DeviceRegistry:DeviceRegistered", "Consortium:RoleGranted"}
    assert all(s.fast for s in SPECS)
    assert all(s.decode_all is not None for s in SPECS if s.contract == "DeviceRegistry")
    assert all(s.topic0 == "0x" + keccak(text=event_signature_of(s.key)).hex() for s in SPECS)
    assert all(s.decode_all is not None for s in SPECS if s.contract in ("DataCatalog", "SharingAgreements"))


NESTED_TYPES = [
    "(string,string,uint8,uint8,uint8,string,string[],uint64[])",
    "uint16[3]",
    "(uint8,bytes32)[2]",
    "(string,(uint64,bytes)[])[]",
    "string[2][]",
    "(address,int16[],bool)",
    "bytes[]",
]


@pytest.mark.parametrize("kind", NESTED_TYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_generated_decoder_of_tuples_and_arrays_equals_eth_abi(kind: str, data: st.DataObject) -> None:
    types = ["uint8", kind, "string", kind]
    encoded = eth_abi.encode(types, [data.draw(_strategy(t)) for t in types])
    decoder = _fast_decoder(types)
    assert decoder is not None
    assert decoder(encoded) == _eth_abi_decoder(types)(encoded)


def test_truncated_arrays_are_decode_errors() -> None:
    spec = DECODER.by_key["DataCatalog:CatalogEntryVersioned"]
    types = [t for _, t in spec.fields]
    entry = ("title", "class", 3, 1, 6, "{}", ["A", "B"], [1, 2])
    encoded = eth_abi.encode(types, [1, 0, entry, b"\x22" * 32])
    topics = [spec.topic0, "0x" + "00" * 31 + "07", "0x" + "00" * 31 + "02"]
    assert spec.decode_args(topics, "0x" + encoded.hex())["entry"][6] == ["A", "B"]
    for cut in (len(encoded) - 32, len(encoded) // 2, 5 * 32):
        with pytest.raises(LogDecodeError):
            spec.decode_args(topics, "0x" + encoded[:cut].hex())


def event_signature_of(key: str) -> str:
    contract, name = key.split(":")
    return next(event_signature(e) for e in ARTIFACTS["contracts"][contract]["abi"] if e.get("name") == name)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_generated_decoder_equals_eth_abi(spec: Any, data: st.DataObject) -> None:
    types = [t for _, t in spec.fields]
    values = [data.draw(_strategy(t)) for t in types]
    encoded = eth_abi.encode(types, values)
    assert spec.decode_data(encoded) == _eth_abi_decoder(types)(encoded)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_generated_args_decoder_equals_the_reference_path(spec: Any, data: st.DataObject) -> None:
    types = [t for _, t in spec.fields]
    encoded = "0x" + eth_abi.encode(types, [data.draw(_strategy(t)) for t in types]).hex()
    topics = [spec.topic0]
    for _, kind in spec.indexed:
        value = data.draw(_strategy(kind if kind.startswith(("uint", "address")) else "bytes32"))
        topics.append(
            "0x" + eth_abi.encode([kind if kind.startswith(("uint", "address")) else "bytes32"], [value]).hex()
        )
    expected = spec.decode_args_by_parts(topics, encoded)
    assert spec.decode_args(topics, encoded) == expected
    assert list(expected) == list(spec.order)


def test_log_decodes_topics_and_data_by_name() -> None:
    spec = DECODER.by_key["DeviceRegistry:DeviceRegistered"]
    types = [t for _, t in spec.fields]
    values = ["BJ-CAMR-110105000001", 1, 2, 110105, -39_912_345, 116_412_345, 1_700_000_000, b"\x11" * 32, "{}"]
    code_hash = "0x" + keccak(text=values[0]).hex()
    log = {
        "address": DEPLOYMENT["contracts"]["DeviceRegistry"]["address"].lower(),
        "topics": [spec.topic0, code_hash, "0x" + (7).to_bytes(32, "big").hex()],
        "data": "0x" + eth_abi.encode(types, values).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "logIndex": "0x3",
    }
    decoded = DECODER.decode(log)
    assert decoded is not None
    assert decoded.key == "DeviceRegistry:DeviceRegistered"
    assert (decoded.block_number, decoded.log_index) == (16, 3)
    assert decoded.args["codeHash"] == code_hash
    assert decoded.args["ownerOrg"] == 7
    assert decoded.args["lat"] == -39_912_345
    assert decoded.args["attributesHash"] == "0x" + "11" * 32


def test_logs_of_other_contracts_are_not_decoded() -> None:
    spec = DECODER.by_key["DeviceRegistry:DeviceRegistered"]
    log = {"address": "0x" + "99" * 20, "topics": [spec.topic0], "data": "0x"}
    assert DECODER.decode(log) is None


def test_truncated_data_is_a_decode_error() -> None:
    spec = DECODER.by_key["DeviceRegistry:DeviceRegistered"]
    topics = [spec.topic0, "0x" + "00" * 32, "0x" + "00" * 32]
    with pytest.raises(LogDecodeError):
        spec.decode_args(topics, "0x" + "00" * 64)
