"""Gas sized from a per-shape cache, and full batches broadcast in nonce order, against a real anvil."""

from __future__ import annotations

from collections.abc import Callable

from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.gas import SETTLE_AFTER
from chain_gateway.gateway import Gateway, WriteRequest
from chain_gateway.outbox import CONFIRMED, FAILED, Operation
from tests.chain_gateway.support import device, drain, registered_count

PSB = "BJ-PSB"
CMC = "BJ-CMC"


def _registrations(chain: SeededConsortium, serials: range, org: str = PSB) -> list[WriteRequest]:
    account = chain.orgs[org].account
    return [WriteRequest(org, account, "DeviceRegistry", "registerDevice", [device(s)]) for s in serials]


def _cached_gateway(make_gateway: Callable[..., Gateway], **options: object) -> Gateway:
    """A gateway with the cache turned on as an operator does: the `gas_cache` setting (DIRCHAIN_GAS_CACHE)."""
    return make_gateway({"gas_estimator": "access_list", **options}, gas_cache=True)


def test_writes_past_the_probes_of_a_shape_are_confirmed_with_the_cached_limit(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    gateway = _cached_gateway(make_gateway)
    ops = gateway.enqueue_many(_registrations(chain, range(500, 520)))

    done = drain(gateway, ops)

    assert all(d.status == CONFIRMED for d in done)
    limits = {d.gas_limit for d in done[SETTLE_AFTER:]}
    assert len(limits) == 1  # one shape, one cached limit
    used = [w3.eth.get_transaction_receipt(d.tx_hash)["gasUsed"] for d in done]  # type: ignore[arg-type]
    assert max(used) < limits.pop()  # type: ignore[operator]
    assert all(registered_count(w3, chain.deployment, device(s)[0]) == 1 for s in (500, 519))


def test_write_that_would_revert_with_a_cached_limit_fails_with_decoded_reason_once_mined(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    gateway = _cached_gateway(make_gateway)
    drain(gateway, gateway.enqueue_many(_registrations(chain, range(530, 534))))  # the shape is settled
    [duplicate] = gateway.enqueue_many(_registrations(chain, range(530, 531), org=PSB))

    [done] = drain(gateway, [duplicate])

    assert done.status == FAILED and done.tx_hash is not None
    assert done.error_code == "DeviceRegistryDuplicateCode"
    assert done.error_args == {"code": device(530)[0]}
    assert registered_count(w3, chain.deployment, device(530)[0]) == 1


def test_write_whose_cached_limit_runs_out_of_gas_is_signed_again_and_lands_once(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    gateway = _cached_gateway(make_gateway)
    drain(gateway, gateway.enqueue_many(_registrations(chain, range(540, 544))))
    for shape in gateway._gas._shapes.values():  # as if the calls had become far costlier since
        shape.low = shape.high = 30_000
    nonce_before = w3.eth.get_transaction_count(chain.orgs[PSB].account)  # type: ignore[arg-type]
    [op] = gateway.enqueue_many(_registrations(chain, range(544, 545)))

    [done] = drain(gateway, [op])

    assert done.status == CONFIRMED
    assert done.nonce == nonce_before + 1  # the first nonce went to the transaction that ran out of gas
    assert done.gas_limit is not None and done.gas_limit > 100_000  # sized by the node the second time
    assert w3.eth.get_transaction_count(chain.orgs[PSB].account) == nonce_before + 2  # type: ignore[arg-type]
    assert registered_count(w3, chain.deployment, device(544)[0]) == 1


def test_full_batches_are_broadcast_in_nonce_order(
    make_gateway: Callable[..., Gateway], chain: SeededConsortium, w3: Web3
) -> None:
    gateway = _cached_gateway(make_gateway, batch_size=4)
    account = chain.orgs[CMC].account
    start = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
    ops: list[Operation] = gateway.enqueue_many(_registrations(chain, range(560, 578), org=CMC))

    done = drain(gateway, ops)

    assert all(d.status == CONFIRMED for d in done)
    assert sorted(d.nonce for d in done) == list(range(start, start + 18))  # type: ignore[type-var]
    assert w3.eth.get_transaction_count(account) == start + 18  # type: ignore[arg-type]
