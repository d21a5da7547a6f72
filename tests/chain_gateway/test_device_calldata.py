"""The hand-written registerDevices encoder gives eth_abi's bytes for any batch, and refuses what eth_abi refuses."""

from __future__ import annotations

import eth_abi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_gateway.device_calldata import DEVICE_INPUT_TYPE, SELECTOR, encode_register_devices
from chain_gateway.errors import InvalidCall

devices = st.tuples(
    st.text(max_size=40),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**8 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 2**40 - 1),
    st.text(max_size=200),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(devices, max_size=12))
def test_any_batch_encodes_to_eth_abis_bytes(batch: list[tuple[object, ...]]) -> None:
    expected = SELECTOR + eth_abi.encode([f"{DEVICE_INPUT_TYPE}[]"], [batch])

    assert encode_register_devices(batch) == expected


@pytest.mark.parametrize(
    ("position", "value"),
    [(1, 2**16), (2, -1), (3, 2**32), (4, 2**31), (5, -(2**31) - 1), (6, 2**40), (1, True), (0, 5), (7, None)],
)
def test_a_field_out_of_its_type_is_refused(position: int, value: object) -> None:
    device: list[object] = ["BJ-CAMR-110105000001", 1, 1, 110105, 39_900_000, 116_400_000, 1_700_000_000, "{}"]
    device[position] = value

    with pytest.raises(InvalidCall, match=r"devices\[0\]"):
        encode_register_devices([device])
