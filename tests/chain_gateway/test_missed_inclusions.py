"""Transactions the block scan missed are still found mined: the races of one outbox worked by several hands."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from chain_gateway import inclusions
from chain_gateway.devnet import SeededConsortium
from chain_gateway.gateway import Gateway, _Stats
from chain_gateway.outbox import CONFIRMED, MINED, SUBMITTED, Operation
from tests.chain_gateway.support import enqueue_device


def _set(gateway: Gateway, op_id: str, **values: object) -> None:
    with Session(gateway.engine) as session:
        session.execute(update(Operation).where(Operation.id == op_id).values(**values))  # type: ignore[arg-type]
        session.commit()


def test_submitted_row_whose_block_was_already_read_is_found_mined_when_due_for_resending(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flake: a row recorded submitted after the scan read its block was resent every 10 s, each resend
    # ("known") refreshing broadcast_at just before the 10 s stale rescan came round, so it never looked stale.
    # No periodic rescan here at all: the resend alone must find the receipt.
    monkeypatch.setattr(inclusions, "RESCAN_SECONDS", 1e9)
    gateway = make_gateway(confirmations=0, gateway_options={"rebroadcast_after_seconds": 0.0})
    gateway.process_once()  # the tracker's first full rescan is behind us
    op = enqueue_device(gateway, chain, 400, simulate=False)
    gateway.process_once()  # signed, sent, mined in a block the tracker reads
    mined = gateway.get_operation(op.id)
    assert mined is not None and mined.status in (MINED, CONFIRMED)
    _set(gateway, op.id, status=SUBMITTED, block_number=None, block_hash=None, broadcast_at=time.time() - 60)

    gateway.process_once()

    done = gateway.get_operation(op.id)
    assert done is not None and done.status in (MINED, CONFIRMED)
    assert (done.block_number, done.block_hash) == (mined.block_number, mined.block_hash)


def test_late_broadcast_answer_does_not_send_a_mined_row_back_to_submitted(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium
) -> None:
    first, second = make_gateway(confirmations=1), make_gateway(confirmations=1)
    op = enqueue_device(first, chain, 401, simulate=False)
    first.process_once()  # signed, sent and seen mined
    signed = first.get_operation(op.id)
    assert signed is not None and signed.status == MINED

    second._send([signed], _Stats())  # a second worker's resend of the same row, answered after the first saw it mined

    again = first.get_operation(op.id)
    assert again is not None and again.status == MINED and again.block_hash == signed.block_hash
