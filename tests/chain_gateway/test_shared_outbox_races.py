"""Two gateways on one outbox, each step of one interleaved with the other's whole work on the same row.

The interleavings the production profile's process test (tests/production/test_shared_outbox.py) met by chance
are forced here: the second gateway signs, sends and confirms the row between the first one's read of it and its
next write about it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.gas import GasCall
from chain_gateway.gateway import Gateway
from chain_gateway.outbox import CONFIRMED, Operation
from chain_gateway.revert import RevertDecoder
from chain_gateway.rpc import RpcErrorAnswer
from tests.chain_gateway.support import device, drain, registered_count

PSB = "BJ-PSB"


def _register(gateway: Gateway, chain: SeededConsortium, serial: int) -> Operation:
    return gateway.enqueue(
        org_code=PSB,
        account=chain.orgs[PSB].account,
        contract="DeviceRegistry",
        function="registerDevice",
        args=[device(serial)],
        simulate=False,
    )


def test_write_another_gateway_confirmed_while_this_one_sized_it_stays_confirmed(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen with two gateway processes: the first read a queued row, the second signed and mined it, and the
    # first's estimate then reverted (DeviceRegistryDuplicateCode: the device was on-chain) and failed the row.
    first, second = make_gateway(), make_gateway()
    op = _register(first, chain, 600)
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
    op = _register(first, chain, 601)
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
