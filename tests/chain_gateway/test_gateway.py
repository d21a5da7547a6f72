"""The gateway against a real anvil with the demo consortium, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_utils import keccak
from sqlalchemy.orm import Session
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.errors import ContractRevert, IdempotencyConflict, InvalidCall
from chain_gateway.gateway import Gateway
from chain_gateway.governance import contract
from chain_gateway.nonces import NonceManager
from chain_gateway.outbox import CONFIRMED, FAILED, MINED, Operation
from tests.chain_gateway.support import device, drain, registered_count
from tests.chain_gateway.support import enqueue_device as _register  # simulates unless simulate=False

PSB = "BJ-PSB"
CMC = "BJ-CMC"
SUSPEND = 1  # IDeviceRegistry.Action.Suspend
PLANNED = 1  # IDeviceRegistry.Status.Planned


def _org_id(w3: Web3, chain: SeededConsortium, org: str) -> int:
    return int(contract(w3, chain.deployment, "Consortium").functions.orgIdByCode(org).call())


def test_enqueued_write_is_confirmed_with_tx_hash_and_block(
    gateway: Gateway, chain: SeededConsortium, w3: Web3
) -> None:
    op = _register(gateway, chain, 1)
    assert op.status == "queued" and op.nonce is None

    [done] = drain(gateway, [op])

    assert done.status == CONFIRMED
    receipt = w3.eth.get_transaction_receipt(done.tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == done.block_number
    assert "0x" + bytes(receipt["blockHash"]).hex() == done.block_hash
    registry = contract(w3, chain.deployment, "DeviceRegistry")
    stored = registry.functions.getDevice(device(1)[0]).call()
    assert stored[0] == _org_id(w3, chain, PSB)
    assert registered_count(w3, chain.deployment, device(1)[0]) == 1


def test_confirmation_waits_for_blocks_on_top(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, mine: Callable[[int], None]
) -> None:
    gateway = make_gateway(confirmations=2)
    op = _register(gateway, chain, 2)
    for _ in range(3):
        gateway.process_once()
    assert gateway.get_operation(op.id).status == MINED  # type: ignore[union-attr]
    mine(2)
    gateway.process_once()
    assert gateway.get_operation(op.id).status == CONFIRMED  # type: ignore[union-attr]


def test_same_idempotency_key_and_body_returns_the_same_operation(gateway: Gateway, chain: SeededConsortium) -> None:
    first = _register(gateway, chain, 3, idempotency_key="req-1")
    again = _register(gateway, chain, 3, idempotency_key="req-1")
    assert again.id == first.id
    with Session(gateway.engine) as session:
        assert session.query(Operation).count() == 1


def test_idempotency_key_reused_with_another_body_conflicts(gateway: Gateway, chain: SeededConsortium) -> None:
    first = _register(gateway, chain, 4, idempotency_key="req-2")
    with pytest.raises(IdempotencyConflict) as caught:
        _register(gateway, chain, 5, idempotency_key="req-2")
    assert caught.value.operation_id == first.id
    assert isinstance(caught.value, ValueError)


def test_same_idempotency_key_of_another_account_is_another_operation(
    gateway: Gateway, chain: SeededConsortium
) -> None:
    first = _register(gateway, chain, 6, idempotency_key="req-3")
    other = _register(gateway, chain, 7, org=CMC, idempotency_key="req-3")
    assert other.id != first.id


def test_simulating_a_change_to_another_orgs_device_raises_not_owner(
    gateway: Gateway, chain: SeededConsortium, w3: Web3
) -> None:
    drain(gateway, [_register(gateway, chain, 8)])
    code = device(8)[0]

    with pytest.raises(ContractRevert) as caught:
        gateway.simulate(chain.orgs[CMC].account, "DeviceRegistry", "changeLifecycle", [code, SUSPEND, "", "x"])

    assert caught.value.name == "DeviceRegistryNotOwner"
    assert caught.value.args_dict == {
        "code": code,
        "callerOrg": _org_id(w3, chain, CMC),
        "ownerOrg": _org_id(w3, chain, PSB),
    }


def test_forbidden_lifecycle_transition_decodes_illegal_transition(gateway: Gateway, chain: SeededConsortium) -> None:
    drain(gateway, [_register(gateway, chain, 9)])  # registered as Planned
    code = device(9)[0]

    with pytest.raises(ContractRevert) as caught:
        gateway.enqueue(
            org_code=PSB,
            account=chain.orgs[PSB].account,
            contract="DeviceRegistry",
            function="changeLifecycle",
            args=[code, SUSPEND, "", "planned devices cannot be suspended"],
        )

    assert caught.value.name == "DeviceRegistryIllegalTransition"
    assert caught.value.args_dict == {"code": code, "status": PLANNED, "action": SUSPEND}
    with Session(gateway.engine) as session:
        assert session.query(Operation).filter(Operation.function == "changeLifecycle").count() == 0


def test_consortium_error_bubbling_through_the_registry_decodes(gateway: Gateway, chain: SeededConsortium) -> None:
    company = chain.orgs["CO-ZHCS"].account  # a member without the REGISTRAR role

    with pytest.raises(ContractRevert) as caught:
        gateway.simulate(company, "DeviceRegistry", "registerDevice", [device(10)])

    assert caught.value.name == "ConsortiumMissingRole"
    assert caught.value.args_dict == {"account": company, "role": "0x" + keccak(text="REGISTRAR").hex()}


def test_arguments_that_do_not_fit_the_abi_are_refused(gateway: Gateway, chain: SeededConsortium) -> None:
    with pytest.raises(InvalidCall):
        gateway.enqueue(
            org_code=PSB,
            account=chain.orgs[PSB].account,
            contract="DeviceRegistry",
            function="registerDevice",
            args=[["too", "short"]],
        )


def test_write_that_reverts_only_when_mined_is_failed_with_decoded_reason(
    gateway: Gateway, chain: SeededConsortium, w3: Web3
) -> None:
    # both simulate fine (the code is free) and are estimated in one batch; the second one mined reverts
    first = _register(gateway, chain, 11, idempotency_key="a")
    second = _register(gateway, chain, 11, idempotency_key="b")

    done_first, done_second = drain(gateway, [first, second])

    assert done_first.status == CONFIRMED
    assert done_second.status == FAILED
    assert done_second.tx_hash is not None and done_second.block_number is not None
    assert w3.eth.get_transaction_receipt(done_second.tx_hash)["status"] == 0  # type: ignore[arg-type]
    assert done_second.error_code == "DeviceRegistryDuplicateCode"
    assert done_second.error_args == {"code": device(11)[0]}
    assert registered_count(w3, chain.deployment, device(11)[0]) == 1


def test_write_refused_by_the_estimate_fails_without_using_a_nonce(
    gateway: Gateway, chain: SeededConsortium, w3: Web3
) -> None:
    account = chain.orgs[CMC].account
    nonce_before = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    bad = gateway.enqueue(
        org_code=CMC,
        account=account,
        contract="DeviceRegistry",
        function="changeLifecycle",
        args=["BJ-CAMR-110105999999", SUSPEND, "", ""],
        simulate=False,
    )
    good = _register(gateway, chain, 12, org=CMC)

    done_bad, done_good = drain(gateway, [bad, good])

    assert done_bad.status == FAILED and done_bad.nonce is None and done_bad.tx_hash is None
    assert done_bad.error_code == "DeviceRegistryUnknownDevice"
    assert done_good.status == CONFIRMED and done_good.nonce == nonce_before
    assert w3.eth.get_transaction_count(account) == nonce_before + 1  # type: ignore[arg-type]


def test_dependent_write_waits_for_the_write_it_depends_on(gateway: Gateway, chain: SeededConsortium) -> None:
    register = _register(gateway, chain, 13)
    activate = gateway.enqueue(
        org_code=PSB,
        account=chain.orgs[PSB].account,
        contract="DeviceRegistry",
        function="changeLifecycle",
        args=[device(13)[0], 0, "", "commissioned"],  # Action.Activate
        simulate=False,  # the device does not exist yet
    )
    done = drain(gateway, [register, activate])
    assert [d.status for d in done] == [CONFIRMED, CONFIRMED]
    assert done[1].nonce == done[0].nonce + 1  # type: ignore[operator]


def test_registering_a_batch_of_devices_in_one_transaction(gateway: Gateway, chain: SeededConsortium, w3: Web3) -> None:
    devices = [device(100 + i, status=2) for i in range(50)]
    op = gateway.enqueue(
        org_code=PSB,
        account=chain.orgs[PSB].account,
        contract="DeviceRegistry",
        function="registerDevices",
        args=[devices],
    )
    [done] = drain(gateway, [op])
    assert done.status == CONFIRMED
    assert all(registered_count(w3, chain.deployment, d[0]) == 1 for d in devices[::10])


def test_many_concurrent_writes_of_one_account_get_consecutive_nonces(
    gateway: Gateway, chain: SeededConsortium, w3: Web3
) -> None:
    account = chain.orgs[PSB].account
    start = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ops = list(pool.map(lambda i: _register(gateway, chain, 200 + i, idempotency_key=f"k{i}"), range(60)))

    done = drain(gateway, ops)

    assert all(d.status == CONFIRMED for d in done)
    assert sorted(d.nonce for d in done) == list(range(start, start + 60))  # type: ignore[type-var]
    assert w3.eth.get_transaction_count(account) == start + 60  # type: ignore[arg-type]


def test_concurrent_nonce_reservations_never_overlap(gateway: Gateway, chain: SeededConsortium) -> None:
    manager = NonceManager()
    account = chain.orgs[PSB].account
    taken: list[list[int]] = []
    lock = threading.Lock()

    def reserve(count: int) -> None:
        with Session(gateway.engine) as session:
            first = manager.reserve(session, account, count, chain_pending=5)
            session.commit()
        with lock:
            taken.append(list(range(first, first + count)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reserve, [1, 2, 3, 4] * 10))

    flat = sorted(n for block in taken for n in block)
    assert flat == list(range(5, 5 + 100))


def test_two_gateways_on_one_outbox_send_each_write_once(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    first, second, third = make_gateway(), make_gateway(), make_gateway()
    ops = [_register(first, chain, 300 + i, org=[PSB, CMC][i % 2], simulate=False) for i in range(40)]
    stop = threading.Event()
    workers = [threading.Thread(target=g.run, args=(stop,)) for g in (first, second)]
    for worker in workers:
        worker.start()
    try:
        done = drain(third, ops)  # a third gateway on the same outbox (one object is driven by one thread)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert all(d.status == CONFIRMED for d in done)
    assert all(registered_count(w3, chain.deployment, device(300 + i)[0]) == 1 for i in range(40))


def test_reorged_write_is_sent_again_and_confirmed(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3, mine: Callable[[int], None]
) -> None:
    gateway = make_gateway(confirmations=1)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    op = _register(gateway, chain, 14)
    gateway.process_once()
    mined = gateway.get_operation(op.id)
    assert mined is not None and mined.status == MINED

    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]  # the block is gone
    mine(3)  # a longer chain without it
    assert w3.eth.get_block(mined.block_number)["hash"] != mined.block_hash  # type: ignore[arg-type]

    gateway.process_once()  # the changed hash sends it back: submitted, then broadcast again
    gateway.process_once()  # mined again (automine)
    mine(1)
    gateway.process_once()
    done = gateway.get_operation(op.id)
    assert done is not None and done.status == CONFIRMED
    assert done.block_hash != mined.block_hash
    assert registered_count(w3, chain.deployment, device(14)[0]) == 1


def test_nonce_left_by_a_transaction_that_vanished_from_the_pool_is_filled_and_later_writes_land(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    # nonces are reserved above the node's pending count: a transaction outside the outbox pending then and gone
    # later (dropped, a node restarted without it) leaves a nonce nobody sends, here reserved with no row behind it
    gateway = make_gateway(gateway_options={"rebroadcast_after_seconds": 0.5})
    account = chain.orgs[PSB].account
    start = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    with Session(gateway.engine) as session:
        assert NonceManager().reserve(session, account, 1, chain_pending=start) == start
        session.commit()
    ops = [_register(gateway, chain, 400 + i) for i in range(3)]

    done = drain(gateway, ops, timeout=30)

    assert all(d.status == CONFIRMED for d in done)
    assert sorted(d.nonce for d in done) == [start + 1, start + 2, start + 3]  # type: ignore[type-var]
    with Session(gateway.engine) as session:
        filler = session.query(Operation).filter(Operation.contract == "_gateway").one()
    assert (filler.nonce, filler.idempotency_key) == (start, f"fill-gap:{start}")
    assert w3.eth.get_transaction_count(account) == start + 4  # type: ignore[arg-type]
    assert all(registered_count(w3, chain.deployment, device(400 + i)[0]) == 1 for i in range(3))


def test_write_rejected_by_the_node_fails_and_its_nonce_is_filled(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    gateway = make_gateway(gas_limit_cap=20_000)  # below the intrinsic gas: the node refuses the raw tx
    account = chain.orgs[PSB].account
    start = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    op = _register(gateway, chain, 15)

    [done] = drain(gateway, [op])
    for _ in range(5):
        gateway.process_once()

    assert done.status == FAILED and done.error_code == "GatewayTxRejected"
    with Session(gateway.engine) as session:
        filler = session.query(Operation).filter(Operation.contract == "_gateway").one()
    assert filler.status == CONFIRMED and filler.nonce == done.nonce == start
    assert w3.eth.get_transaction_count(account) == start + 1  # type: ignore[arg-type]
    assert registered_count(w3, chain.deployment, device(15)[0]) == 0
