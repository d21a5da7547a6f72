"""The fast signer produces exactly eth-account's bytes, and anvil accepts and mines them."""

from __future__ import annotations

import pytest
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st

from chain_gateway.devnet import dev_key
from chain_gateway.signer import Fees, TxSigner, rlp_encode

TO = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337


@pytest.fixture
def account() -> LocalAccount:
    return Account.from_key(dev_key(30))


@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 2**16, 2**40])
def test_legacy_signature_equals_eth_account(account: LocalAccount, nonce: int) -> None:
    data = bytes(range(nonce % 200))
    ours = TxSigner(account, CHAIN_ID).sign(
        nonce=nonce, gas=210_000, to=bytes.fromhex(TO[2:]), data=data, fees=Fees(gas_price=nonce * 3)
    )
    theirs = account.sign_transaction(
        {"nonce": nonce, "gas": 210_000, "to": TO, "data": data, "gasPrice": nonce * 3, "chainId": CHAIN_ID, "value": 0}
    )
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.tx_hash == bytes(theirs.hash)


@pytest.mark.parametrize("tip", [0, 1, 10**9])
def test_eip1559_signature_equals_eth_account(account: LocalAccount, tip: int) -> None:
    fees = Fees(max_fee=3 * 10**9, max_priority_fee=tip)
    ours = TxSigner(account, CHAIN_ID).sign(nonce=5, gas=90_000, to=bytes.fromhex(TO[2:]), data=b"\x01\x02", fees=fees)
    theirs = account.sign_transaction(
        {
            "type": 2,
            "nonce": 5,
            "gas": 90_000,
            "to": TO,
            "data": b"\x01\x02",
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": tip,
            "chainId": CHAIN_ID,
            "value": 0,
        }
    )
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.tx_hash == bytes(theirs.hash)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x7f", b"\x80", bytes(55), bytes(56), bytes(300), bytes(70_000)])
def test_eip1559_signature_equals_eth_account_for_any_calldata_length(account: LocalAccount, data: bytes) -> None:
    fees = Fees(max_fee=2**70, max_priority_fee=127)
    ours = TxSigner(account, CHAIN_ID).sign(nonce=128, gas=2**24, to=bytes.fromhex(TO[2:]), data=data, fees=fees)
    theirs = account.sign_transaction(
        {
            "type": 2,
            "nonce": 128,
            "gas": 2**24,
            "to": TO,
            "data": data,
            "maxFeePerGas": 2**70,
            "maxPriorityFeePerGas": 127,
            "chainId": CHAIN_ID,
            "value": 0,
        }
    )
    assert ours.raw == bytes(theirs.raw_transaction)


@given(st.lists(st.one_of(st.integers(min_value=0, max_value=2**256 - 1), st.binary(max_size=600)), max_size=12))
def test_rlp_encoding_equals_pyrlp(fields: list[int | bytes]) -> None:
    assert rlp_encode(fields) == rlp.encode(fields)
    assert rlp_encode(fields, rlp.encode([])) == rlp.encode([*fields, []])


def test_signer_repr_shows_no_key(account: LocalAccount) -> None:
    signer = TxSigner(account, CHAIN_ID)
    assert bytes(account.key).hex() not in repr(signer)
    assert account.address in repr(signer)
