"""The node stopped for 10 s in the middle of a 10,000-device import and started again: the import resumes and
nothing is lost or doubled, the API answers meanwhile, and the mirror equals a fresh replay of the chain.

A real stop: anvil is ended (SIGTERM) and started again on the same port with `--state`, which dumps the chain
(blocks, receipts, logs, state) on exit and loads it at start; its transaction pool is not kept. Writes the
gateway had sent that were still in the pool at the stop are lost by the node: the durable outbox must notice
and send them again. The node mines a block a second (interval mining), so the pool holds the latest batches.

Mining is paused just before the stop, as a validator stops proposing before it shuts down: anvil's dump on
exit is not atomic with its interval miner. Seen here (anvil 1.7.1, stopped while mining): the restarted node's
accounts and contract storage held a block's 8 transactions whose block was not kept, so their nonces were used
and their devices registered without a block, a transaction or a DeviceRegistered event (the gateway signed them
again; the contract refused each device as a duplicate code). Apart from this project, plain anvil stopped within
~20 ms of a block of 100 transactions came back with an account nonce 100 above the transactions in its blocks
in 7 of 12 stops. No chain can be judged against a node that keeps state without its blocks, so the stop is made
where anvil's dump is consistent.
The API (`dirchain serve`: gateway, indexer and import runner inside) is never restarted; SQLite (the default
profile) holds its outbox, imports and mirror.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.settings import Settings
from tests.faults.import_faults import (
    GOOD_DEVICES,
    ImportUnderTest,
    assert_every_device_once,
    log_events,
    mirrored_codes,
)
from tests.indexer.support import assert_equals_fresh_replay
from tests.registry_api.import_support import ApiProcess, registrations, wait_for
from tests.registry_api.support import device

log = logging.getLogger(__name__)

OUTAGE_SECONDS = 10.0
BLOCK_SECONDS = 1
SERIAL_BASE = 200_000  # the file's device codes
PROBE_SERIAL_BASE = 900_000  # codes of the single writes sent while the node is down
PROBE_PAUSE_SECONDS = 0.25
AFTER_RESTART_SECONDS = 2.0  # the probes go on this long after the restart
CLIENT_TIMEOUT_SECONDS = 15.0  # an answer later than this is a hang


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    """This module's node keeps its chain in a state file, so a test can stop it and start it again."""
    with AnvilNode(state_path=tmp_path_factory.mktemp("anvil") / "state.json") as node:
        yield node


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=30)
    body = answer.json()
    assert "error" not in body, f"{method}: {body['error']}"
    return body["result"]


def _pool(url: str) -> set[str]:
    """Hashes of the transactions waiting in the node's pool."""
    content = _rpc(url, "txpool_content", [])
    return {tx["hash"].lower() for section in content.values() for txs in section.values() for tx in txs.values()}


@dataclass
class Probes:
    """Reads and single writes sent to the API until stopped; every answer is recorded as (kind, status, body)."""

    url: str
    headers: dict[str, str]
    import_id: str
    known_code: str
    answers: list[tuple[str, int | str, Any]] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # device code -> operation id of a 202
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        serial = PROBE_SERIAL_BASE
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=CLIENT_TIMEOUT_SECONDS) as client:
            while not self.stop.is_set():
                serial += 1
                body = device(serial)
                requests = [
                    ("read", "GET", f"/v1/imports/{self.import_id}", None, {}),
                    ("read", "GET", f"/v1/devices/{self.known_code}", None, {}),
                    ("read", "GET", "/v1/devices", None, {"owner": "BJ-PSB", "limit": 5}),
                    ("write", "POST", "/v1/devices", body, {}),
                ]
                for kind, method, path, json_body, params in requests:
                    headers = {"Idempotency-Key": f"probe-{serial}"} if json_body else {}
                    try:
                        answer = client.request(method, path, json=json_body, params=params, headers=headers)
                    except httpx.TimeoutException:
                        self.answers.append((kind, "timeout", path))
                        continue
                    content = (
                        answer.json()
                        if answer.headers.get("content-type", "").startswith("application/json")
                        else answer.text
                    )
                    self.answers.append((kind, answer.status_code, content))
                    if kind == "write" and answer.status_code == 202:
                        self.accepted[body["code"]] = content["operation_id"]
                self.stop.wait(PROBE_PAUSE_SECONDS)


def _assert_answers_kept(probes: Probes, context: str) -> Counter[tuple[str, int | str]]:
    """Reads 200; writes 202 or 503 CHAIN_UNAVAILABLE with the error body; never a 5xx else, never a hang."""
    tally: Counter[tuple[str, int | str]] = Counter((kind, status) for kind, status, _ in probes.answers)
    for kind, status, body in probes.answers:
        if kind == "read":
            assert status == 200, f"{context}: read answered {status}: {body}"
        elif status != 202:
            assert status == 503, f"{context}: write answered {status}: {body}"
            assert body["code"] == "CHAIN_UNAVAILABLE" and body["message"] and "field" in body, f"{context}: {body}"
    return tally


def _pause_mining_with_a_full_pool(url: str, seed: int) -> set[str]:
    """Stop mining at a moment the pool holds transactions; their hashes."""
    while True:
        wait_for(lambda: bool(_pool(url)), 30, f"seed {seed}: the pool stays empty")
        _rpc(url, "evm_setIntervalMining", [0])
        in_pool = _pool(url)
        if in_pool:
            return in_pool
        _rpc(url, "evm_setIntervalMining", [BLOCK_SECONDS])  # a block took them meanwhile: again


def _status(url: str, headers: dict[str, str], operation_id: str) -> str:
    answer = httpx.get(f"{url}/v1/operations/{operation_id}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the default profile's database
def test_node_stopped_for_10_seconds_mid_import_resumes_and_loses_nothing(
    anvil: AnvilNode, service_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    started = time.monotonic()
    _rpc(anvil.url, "evm_setIntervalMining", [BLOCK_SECONDS])  # the seeded chain was built automining
    anvil.block_time = BLOCK_SECONDS  # and the restarted node mines so too
    api = ApiProcess(
        service_settings,
        tmp_path,
        import_max_inflight_batches="8",
        gas_estimator="access_list",
        confirmations="1",  # the default: blocks keep coming here, and a write is final one block later
        log_json="true",
    )
    upload = ImportUnderTest.prepared(service_settings, chain, tmp_path, api.url, SERIAL_BASE)
    threshold = rng.randrange(GOOD_DEVICES // 10, GOOD_DEVICES // 2)
    with api:
        api.start()
        marks = {"api up": time.monotonic() - started}
        upload.upload()
        marks["uploaded"] = time.monotonic() - started
        wait_for(lambda: upload.confirmed() >= threshold, 120, f"seed {seed}: no progress")
        known = httpx.get(f"{api.url}/v1/devices", params={"owner": "BJ-PSB", "limit": 1}, headers=upload.headers)
        probes = Probes(api.url, upload.headers, upload.import_id, known.json()["data"][0]["code"])
        prober = threading.Thread(target=probes.run, name="probes", daemon=True)
        in_pool = _pause_mining_with_a_full_pool(anvil.url, seed)
        head = w3.eth.get_block("latest")
        anvil.stop()  # SIGTERM: anvil dumps its chain into the state file and exits
        marks["stopped"] = time.monotonic() - started
        confirmed_at_stop = upload.confirmed()
        context = f"seed {seed}, node stopped at {confirmed_at_stop} rows confirmed"
        assert confirmed_at_stop < GOOD_DEVICES, f"{context}: the import ended before the stop"
        prober.start()
        try:
            time.sleep(OUTAGE_SECONDS)
            anvil.start()  # the same port, the chain loaded from the state file, an empty pool
            restarted_at = time.monotonic()
            assert w3.eth.get_block(head["number"])["hash"] == head["hash"], f"{context}: the chain was not kept"
            time.sleep(AFTER_RESTART_SECONDS)
            probes.stop.set()
            job = upload.finished()
            done_after_restart = time.monotonic() - restarted_at
            marks["done"] = time.monotonic() - started
        finally:
            probes.stop.set()
            prober.join(CLIENT_TIMEOUT_SECONDS * 5)
        tally = _assert_answers_kept(probes, context)
        assert tally[("read", 200)] and tally[("write", 503)], f"{context}: the probes missed the outage: {tally}"

        counts = assert_every_device_once(job, upload, w3, chain, context)
        # the pool's transactions at the stop mined only after the restart were lost by the node and sent again
        receipts = {tx_hash: w3.eth.get_transaction_receipt(tx_hash) for tx_hash in in_pool}  # type: ignore[arg-type]
        assert all(r["status"] == 1 for r in receipts.values()), context
        lost = [h for h, r in receipts.items() if r["blockNumber"] > head["number"]]
        assert lost, f"{context}: the node lost no transaction"  # the fault this test is about was injected
        for operation_id in probes.accepted.values():  # a write accepted meanwhile is on-chain once too
            wait_for(lambda o=operation_id: _status(api.url, upload.headers, o) == "confirmed", 60, context)
        probe_counts = registrations(w3, chain.deployment, probes.accepted)
        assert all(probe_counts[code] == 1 for code in probes.accepted), context

        expected = set(upload.sample.good) | set(probes.accepted)
        wait_for(lambda: mirrored_codes(service_settings.database_url) >= expected, 60, f"{context}: mirror behind")
        assert mirrored_codes(service_settings.database_url) == expected, context
        marks["checked"] = time.monotonic() - started
    replay_url = f"sqlite:///{tmp_path / 'replay.db'}"
    assert_equals_fresh_replay(service_settings.database_url, replay_url, anvil.url, chain.deployment)
    marks["replayed"] = time.monotonic() - started
    resent = sum(int(event.get("count", 0)) for event in log_events(api.log, "broadcasting again"))
    log.warning(
        "node restart test: %d devices, node stopped %.0f s at %d rows confirmed (seed %d, head %d); %d transactions "
        "in the pool at the stop, %d of them lost by the node and mined after the restart; %d broadcast again; "
        "%.1f s from the restart to done; answers meanwhile %s; %d devices once on-chain, 0 lost, 0 twice; "
        "%.1f s in all (%s)",
        GOOD_DEVICES,
        OUTAGE_SECONDS,
        confirmed_at_stop,
        seed,
        head["number"],
        len(in_pool),
        len(lost),
        resent,
        done_after_restart,
        dict(tally),
        len(counts),
        time.monotonic() - started,
        ", ".join(f"{name} {at:.1f}" for name, at in marks.items()),
    )
