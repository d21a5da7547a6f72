"""Crash safety: the worker process killed at the worst moments, restarted, and every write on-chain once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from eth_utils import keccak
from web3 import Web3

from chain_gateway.deployments import send_transaction
from chain_gateway.devnet import SeededConsortium
from chain_gateway.gateway import CRASH_ENV, CRASH_EXIT_CODE, QUEUED_RESEND_AFTER_SECONDS, Gateway
from chain_gateway.outbox import CONFIRMED, QUEUED, Operation
from chain_gateway.settings import Settings
from tests.chain_gateway.support import DEVICE_REGISTERED_TOPIC, device, wait_until

REGISTRARS = ("BJ-PSB", "BJ-CMC", "BJ-EIB")


def _start_worker(settings: Settings, log: Path, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRCHAIN_")}
    env.update(
        DIRCHAIN_RPC_URLS=json.dumps(settings.rpc_urls),
        DIRCHAIN_CHAIN_ID=str(settings.chain_id),
        DIRCHAIN_DEPLOYMENTS_PATH=str(settings.deployments_path),
        DIRCHAIN_DATABASE_URL=settings.database_url,
        DIRCHAIN_KEYSTORE_DIR=str(settings.keystore_dir),
        DIRCHAIN_KEYSTORE_PASSWORD=settings.keystore_password.get_secret_value(),
        DIRCHAIN_CONFIRMATIONS="0",
        DIRCHAIN_GATEWAY_POLL_SECONDS="0.05",
    )
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "chain_gateway", "worker"],
            cwd=log.parent,  # away from any .env of the checkout
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(30)


def _registrations(w3: Web3, chain: SeededConsortium) -> Counter[str]:
    """DeviceRegistered events on the chain, counted by code hash."""
    logs = w3.eth.get_logs(
        {
            "address": chain.deployment["contracts"]["DeviceRegistry"]["address"],
            "fromBlock": chain.deployment["deploy_block"],
            "toBlock": "latest",
            "topics": [DEVICE_REGISTERED_TOPIC],
        }
    )
    return Counter("0x" + bytes(log["topics"][1]).hex() for log in logs)


def _code_hash(serial: int) -> str:
    return "0x" + keccak(text=device(serial)[0]).hex()


def _all_confirmed(gateway: Gateway, ops: list[Operation]) -> bool:
    return all((o := gateway.get_operation(op.id)) is not None and o.status == CONFIRMED for op in ops)


def test_write_survives_gateway_killed_after_signing(
    gateway: Gateway, settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    account = chain.orgs["BJ-PSB"].account
    op = gateway.enqueue(
        org_code="BJ-PSB", account=account, contract="DeviceRegistry", function="registerDevice", args=[device(1)]
    )

    crashed = _start_worker(settings, tmp_path / "worker.log", crash_at="after_sign")
    assert crashed.wait(60) == CRASH_EXIT_CODE

    signed = gateway.get_operation(op.id)
    assert signed is not None and signed.status == QUEUED and signed.raw_tx and signed.tx_hash
    assert w3.eth.get_transaction_count(account) == signed.nonce  # signed and persisted, never sent  # type: ignore[arg-type]
    assert _registrations(w3, chain)[_code_hash(1)] == 0

    worker = _start_worker(settings, tmp_path / "worker.log")
    try:
        wait_until(lambda: _all_confirmed(gateway, [op]), timeout=60)
    finally:
        assert _stop(worker) == 0

    done = gateway.get_operation(op.id)
    assert done is not None and done.tx_hash == signed.tx_hash  # the same signed bytes went out
    assert _registrations(w3, chain)[_code_hash(1)] == 1
    assert w3.eth.get_transaction_count(account) == signed.nonce + 1  # type: ignore[arg-type, operator]


def test_every_write_is_confirmed_once_after_kill_9_at_a_random_moment(
    gateway: Gateway, settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    total, kill_after = 200, rng.randrange(10, 180)
    accounts = {org: chain.orgs[org].account for org in REGISTRARS}
    nonces_before = {org: w3.eth.get_transaction_count(a) for org, a in accounts.items()}  # type: ignore[arg-type]
    log = tmp_path / "worker.log"

    worker = _start_worker(settings, log)
    ops: list[Operation] = []
    try:
        wait_until(lambda: worker.poll() is None and log.exists(), timeout=30)
        for serial in range(total):
            org = REGISTRARS[serial % len(REGISTRARS)]
            ops.append(
                gateway.enqueue(
                    org_code=org,
                    account=accounts[org],
                    contract="DeviceRegistry",
                    function="registerDevice",
                    args=[device(serial)],
                    idempotency_key=f"row-{serial}",
                    simulate=False,
                )
            )
            if serial == 9:  # the worker is up and busy before the random moment comes
                wait_until(lambda: _all_confirmed(gateway, ops[:1]), timeout=60)
            if serial == kill_after:
                time.sleep(rng.uniform(0.0, 0.3))
                worker.send_signal(signal.SIGKILL)
                assert worker.wait(30) == -signal.SIGKILL, f"seed {seed}"
                worker = _start_worker(settings, log)
        wait_until(lambda: _all_confirmed(gateway, ops), timeout=120)
    finally:
        _stop(worker)

    registrations = _registrations(w3, chain)
    assert all(registrations[_code_hash(s)] == 1 for s in range(total)), f"seed {seed}"
    sent = sum(w3.eth.get_transaction_count(a) - nonces_before[org] for org, a in accounts.items())  # type: ignore[arg-type]
    assert sent == total, f"seed {seed}: {sent} transactions for {total} writes"


def test_write_whose_nonce_was_taken_by_another_transaction_is_signed_again(
    make_gateway: Callable[..., Gateway], settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    gateway = make_gateway(gateway_options={"rebroadcast_after_seconds": 0.0})
    org = chain.orgs["BJ-PSB"]
    op = gateway.enqueue(
        org_code="BJ-PSB", account=org.account, contract="DeviceRegistry", function="registerDevice", args=[device(2)]
    )
    assert _start_worker(settings, tmp_path / "worker.log", crash_at="after_sign").wait(60) == CRASH_EXIT_CODE
    signed = gateway.get_operation(op.id)
    assert signed is not None and signed.nonce is not None
    # someone else with the same key uses the nonce: the signed raw tx can never be mined now
    send_transaction(w3, org.private_key, {"to": org.account, "value": 0, "nonce": signed.nonce, "gas": 21_000})
    time.sleep(QUEUED_RESEND_AFTER_SECONDS)

    wait_until(lambda: gateway.process_once() >= 0 and _all_confirmed(gateway, [op]), timeout=60, interval=0.05)

    done = gateway.get_operation(op.id)
    assert done is not None and done.tx_hash != signed.tx_hash and done.nonce == signed.nonce + 1
    assert _registrations(w3, chain)[_code_hash(2)] == 1


def test_write_sent_before_a_kill_but_not_recorded_as_sent_is_found_mined_in_the_next_pass(
    gateway: Gateway, settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    """A kill while the node mines the broadcast (automining answers once the block is made) leaves the row queued
    with its mined raw tx; the next worker asks for its receipt before resending it. Resent without asking, the
    node's "known" answer marked it submitted with a fresh broadcast time, and its receipt was read only by the
    periodic rescan, ~10 s later: each gateway kill of the 10,000-device fault test cost that much."""
    op = gateway.enqueue(
        org_code="BJ-PSB", account=chain.orgs["BJ-PSB"].account, contract="DeviceRegistry",
        function="registerDevice", args=[device(3)],
    )  # fmt: skip
    assert _start_worker(settings, tmp_path / "worker.log", crash_at="after_sign").wait(60) == CRASH_EXIT_CODE
    signed = gateway.get_operation(op.id)
    assert signed is not None and signed.raw_tx is not None
    w3.eth.send_raw_transaction(signed.raw_tx)  # the broadcast the killed worker made, never recorded
    time.sleep(QUEUED_RESEND_AFTER_SECONDS)

    gateway.process_once()  # a fresh worker: its first pass

    done = gateway.get_operation(op.id)
    assert done is not None and done.status == CONFIRMED and done.tx_hash == signed.tx_hash
    assert _registrations(w3, chain)[_code_hash(3)] == 1
