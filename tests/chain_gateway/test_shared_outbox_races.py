"""Two gateways on one outbox: one does its whole work on a row between the other's read of it and its next write.

The interleavings the production profile's process test (tests/production/test_shared_outbox.py) met by chance
are forced here, plus the nonce-gap filler's: each test fails without its fix in chain_gateway/gateway.py.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy.orm import Session
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.gas import GasCall
from chain_gateway.gateway import Gateway
from chain_gateway.nonces import NonceManager
from chain_gateway.outbox import CONFIRMED, Operation
from chain_gateway.revert import RevertDecoder
from chain_gateway.rpc import RpcErrorAnswer
from tests.chain_gateway.support import device, drain, enqueue_device, registered_count, wait_until

PSB = "BJ-PSB"


def test_write_another_gateway_confirmed_while_this_one_sized_it_stays_confirmed(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen with two gateway processes: the first read a queued row, the second signed and mined it, and the
    # first's estimate then reverted (DeviceRegistryDuplicateCode: the device was on-chain) and failed the row.
    first, second = make_gateway(), make_gateway()
    op = enqueue_device(first, chain, 600, simulate=False)
    size = first._gas.size
    estimates: list[tuple[int | RpcErrorAnswer, bool]] = []

    def sized_after_the_other_gateway_sent_it(calls: Sequence[GasCall]) -> list[tuple[int | RpcErrorAnswer, bool]]:
        drain(second, [op])
        estimates.extend(size(calls))
        return estimates

    monkeypatch.setattr(first._gas, "size", sized_after_the_other_gateway_sent_it)
    first.process_once()

    [(estimate, _)] = estimates  # the first gateway's estimate did revert, because the write is on-chain
    assert isinstance(estimate, RpcErrorAnswer)
    revert = RevertDecoder(chain.deployment["errors_abi"]).from_rpc_error(estimate)
    assert revert is not None and revert.name == "DeviceRegistryDuplicateCode"
    done = first.get_operation(op.id)
    assert done is not None and done.status == CONFIRMED and done.error_code is None
    assert registered_count(w3, chain.deployment, device(600)[0]) == 1


def test_receipt_recorded_late_by_one_gateway_does_not_step_a_confirmed_write_back_to_mined(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both gateways follow the same blocks: the second may record and confirm a row between the first's read of
    # it (still submitted) and the first's own record of its receipt.
    first, second = make_gateway(), make_gateway()
    op = enqueue_device(first, chain, 601, simulate=False)
    record = first._record_receipts
    seen: list[str] = []

    def record_after_the_other_gateway_confirmed(rows: Sequence[Any], *args: Any) -> set[str]:
        if any(row.id == op.id for row in rows):
            drain(second, [op])
        unresolved = record(rows, *args)
        current = first.get_operation(op.id)
        seen.append(current.status if current is not None else "gone")
        return unresolved

    monkeypatch.setattr(first, "_record_receipts", record_after_the_other_gateway_confirmed)
    first.process_once()  # signs, sends (automine) and follows the block holding it

    assert seen and set(seen) == {CONFIRMED}


def test_two_gateways_filling_the_same_nonce_gap_store_one_filler_and_neither_stops(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A nonce reserved with no row behind it (as a foreign transaction gone from the pool leaves it): a gap below
    # the write. Both gateways see it; the first stores its filler between the second's look for one and its own.
    first, second = (make_gateway(gateway_options={"rebroadcast_after_seconds": 0.5}) for _ in range(2))
    account = chain.orgs[PSB].account
    start = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    with Session(first.engine) as session:
        NonceManager().reserve(session, account, 1, chain_pending=start)
        session.commit()
    op = enqueue_device(first, chain, 602, simulate=False)
    first.process_once()  # signed at start + 1 and sent: the node holds it behind the gap
    by_key = second._by_key
    looked: list[str] = []

    def look_while_the_other_gateway_fills(looked_for: str, key: str) -> Operation | None:
        if not key.startswith("fill-gap:") or looked:  # the second gateway's first look only
            return by_key(looked_for, key)
        looked.append(key)
        wait_until(lambda: first.process_once() >= 0 and by_key(looked_for, key) is not None, timeout=10)
        return None  # what the second gateway read before the first committed

    monkeypatch.setattr(second, "_by_key", look_while_the_other_gateway_fills)
    [done] = drain(second, [op], timeout=30)

    assert looked and done.status == CONFIRMED
    with Session(first.engine) as session:
        fillers = session.query(Operation).filter(Operation.contract == "_gateway").all()
    assert [(f.nonce, f.status) for f in fillers] == [(start, CONFIRMED)]
    assert w3.eth.get_transaction_count(account) == start + 2  # type: ignore[arg-type]


def test_same_key_sent_to_two_apis_at_once_answers_the_first_operation_even_once_it_is_mined(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen with two API processes: the second request looked for the key before the first committed its row, the
    # first's write was mined, and the second's simulation then reverted (DeviceRegistryDuplicateCode): a 409 for
    # a replay of a write that landed.
    first, second = make_gateway(), make_gateway()
    by_key = second._by_key
    landed: list[Operation] = []

    def look_while_the_other_api_writes(account: str, key: str) -> Operation | None:
        if landed:
            return by_key(account, key)
        landed.extend(drain(first, [enqueue_device(first, chain, 603, idempotency_key=key)]))
        return None  # what the second request read before the first committed

    monkeypatch.setattr(second, "_by_key", look_while_the_other_api_writes)
    replayed = enqueue_device(second, chain, 603, idempotency_key="same-key")

    assert [op.status for op in landed] == [CONFIRMED]
    assert replayed.id == landed[0].id
