"""Small parts: error classification for the retry loops, the adaptive range size, catalog value rendering, JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import RpcErrorAnswer
from indexer.errors import ChainMovedError, HandlerError, LogDecodeError, ReorgTooDeepError, is_retryable
from indexer.handlers import carrier_attribute, compact_json, form_names, search_text
from indexer.sync import RangeSizer


def test_only_transient_errors_are_retryable() -> None:
    assert is_retryable(GatewayRPCError("timeout", retryable=True))
    assert is_retryable(ChainMovedError("block 5 changed"))
    assert not is_retryable(RpcErrorAnswer("eth_getLogs", {"message": "invalid params"}))
    assert not is_retryable(ReorgTooDeepError("too deep"))
    assert not is_retryable(LogDecodeError("bad data"))
    assert not is_retryable(HandlerError("unknown device"))
    assert not is_retryable(RuntimeError("bug"))


def test_range_grows_on_sparse_blocks_and_aims_at_the_target_on_dense_ones() -> None:
    sizer = RangeSizer(max_range=2_000, target_logs=10_000)
    assert sizer.end_for(10, 10_000) == 10 + sizer.size - 1
    sizer.record(sizer.size, 0)
    assert sizer.size == 200
    for _ in range(10):
        sizer.record(sizer.size, 0)
    assert sizer.size == 2_000
    sizer.record(2_000, 200_000)  # 100 logs per block: halve at most per step
    assert sizer.size == 1_000
    sizer.record(1_000, 100_000)
    assert sizer.size == 500
    sizer.record(500, 50_000)
    assert sizer.size == 250
    sizer.record(250, 25_000)
    assert sizer.size == 125
    sizer.record(125, 12_500)
    assert sizer.size == 100  # the target: 10,000 logs
    assert sizer.end_for(5, 50) == 50


def test_range_halves_on_refusals_down_to_one_block() -> None:
    sizer = RangeSizer(max_range=8, size=8)
    sizes = []
    while sizer.shrink():
        sizes.append(sizer.size)
    assert sizes == [4, 2, 1]
    assert sizer.size == 1


def test_form_bits_are_named_in_bit_order_and_unknown_bits_refused() -> None:
    assert form_names(7) == ["raw", "desensitized", "result_only"]
    assert form_names(6) == ["desensitized", "result_only"]
    assert form_names(0) == []
    with pytest.raises(ValueError):
        form_names(8)


def test_search_text_holds_title_classification_and_schema_field_names() -> None:
    schema = '{"fields":[{"name":"hour","type":"datetime"},{"name":"plate_number","mask":"hash"},{"type":"x"}]}'
    text = search_text("卡口过车流量", "城市影像/交通卡口", schema)
    assert text == "卡口过车流量\n城市影像/交通卡口\nhour plate_number"
    assert search_text("t", "c", "not json") == "t\nc\n"
    assert search_text("t", "c", '["fields"]') == "t\nc\n"


def test_text_from_the_chain_nested_absurdly_deep_is_ignored_without_crashing() -> None:
    # any member can put such text in an event by calling the contract directly; json.loads of it overflowed the
    # C stack (web3's imports raise the recursion limit to 100,000) and killed the indexer on every restart
    deep = "[" * 200_000 + "]" * 200_000
    assert search_text("t", "c", deep) == "t\nc\n"
    assert carrier_attribute(deep) is None
    assert carrier_attribute('{"carrier": "P-1"}') == "P-1"


@settings(max_examples=500, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )
)
def test_compact_json_is_the_standard_encoders_text(value: object) -> None:
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
