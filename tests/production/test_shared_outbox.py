"""The production profile on one PostgreSQL database: two API processes, two gateway workers, one indexer.

Real processes as an operator runs them (docs/production.md): two `dirchain serve` without the gateway or the
indexer inside (imports and receipt anchoring in the first only), one `python -m chain_gateway worker` and one
`dirchain gateway run` sharing the outbox, and one `dirchain indexer run`. Threads write for the same three org
accounts through both APIs at once, with Idempotency-Keys, a third of them sent to both APIs at the same moment;
then one gateway is killed (SIGKILL) in the middle of the second wave and the other finishes alone.

The judges: the outbox (each account's nonces unique and contiguous from the chain's count before the test, every
accepted write confirmed), the chain (each write's event counted by device code with eth_getLogs: exactly once),
the gateways' own "transactions signed" log lines (both signed, never the same nonce) and the mirror.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import event_abi_to_log_topic
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from tests.faults.import_faults import log_events, mirrored_codes
from tests.registry_api.import_support import ApiProcess, ServiceProcess, org_token, registrations, wait_for
from tests.registry_api.support import device

log = logging.getLogger(__name__)

ORGS = ("BJ-PSB", "BJ-CMC", "BJ-EMB")  # their accounts sign through both APIs and both gateways
DEVICES = 60
BOTH_EVERY = 3  # every third write goes to both APIs at once with the same key and body
SENDERS = 6  # client threads
SERIAL_BASE = 940_000  # device codes BJ-CAMR-110105940000 onwards
SETTLE_SECONDS = 90.0  # deadline for every accepted write to be confirmed
SIGNED = "transactions signed"  # the gateway's log event of each nonce range it committed


@dataclass(frozen=True)
class Write:
    """One write request: for whom, where, with which key; `both`: sent to both APIs at once."""

    org: str
    code: str
    path: str
    body: dict[str, Any]
    key: str
    both: bool


@dataclass(frozen=True)
class Accepted:
    write: Write
    operation_ids: tuple[str, ...]  # one per API it was sent to


def _registration(i: int) -> Write:
    body = device(SERIAL_BASE + i)
    return Write(ORGS[i % len(ORGS)], body["code"], "/v1/devices", body, f"register-{i}", i % BOTH_EVERY == 0)


def _follow_up(i: int) -> Write:
    """An inspection (even devices) or a suspension (odd ones) of device i: writes that need it on-chain."""
    code = device(SERIAL_BASE + i)["code"]
    if i % 2 == 0:
        path, body = f"/v1/devices/{code}/inspections", {"result": "passed", "inspected_at": "2024-03-01"}
    else:
        path, body = f"/v1/devices/{code}/lifecycle", {"action": "suspend", "note": "shared outbox test"}
    return Write(ORGS[i % len(ORGS)], code, path, body, f"follow-up-{i}", i % BOTH_EVERY == 1)


class Clients:
    """Sends writes through the two APIs with the orgs' tokens (one keep-alive client per API, shared by threads)."""

    def __init__(self, urls: list[str], tokens: dict[str, str]) -> None:
        self.urls, self.tokens = urls, tokens
        self.http = [httpx.Client(base_url=url, timeout=30) for url in urls]

    def close(self) -> None:
        for client in self.http:
            client.close()

    def _post(self, api: int, write: Write) -> str:
        headers = {"Authorization": f"Bearer {self.tokens[write.org]}", "Idempotency-Key": write.key}
        answer = self.http[api].post(write.path, json=write.body, headers=headers)
        assert answer.status_code == 202, f"{write.key} at {self.urls[api]}: {answer.status_code} {answer.text}"
        return str(answer.json()["operation_id"])

    def send(self, index: int, write: Write) -> Accepted:
        """To one API (by `index`), or to both at the same moment (a barrier lines the two requests up)."""
        if not write.both:
            return Accepted(write, (self._post(index % 2, write),))
        barrier = threading.Barrier(2)

        def post(api: int) -> str:
            barrier.wait(10)
            return self._post(api, write)

        with ThreadPoolExecutor(2) as pair:
            ids = tuple(pair.map(post, range(2)))
        assert ids[0] == ids[1], f"{write.key} sent to both APIs became two operations {ids}"
        return Accepted(write, ids)

    def send_all(self, writes: list[Write]) -> list[Accepted]:
        with ThreadPoolExecutor(SENDERS) as pool:
            return list(pool.map(self.send, range(len(writes)), writes))

    def status(self, api: int, org: str, op_id: str) -> str:
        answer = self.http[api].get(f"/v1/operations/{op_id}", headers={"Authorization": f"Bearer {self.tokens[org]}"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])


class Outbox:
    """Reads of the shared outbox."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url, poolclass=NullPool)

    def statuses(self, ids: set[str]) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status FROM operations")).all()
        return {op_id: status for op_id, status in rows if op_id in ids}

    def settle(self, ids: set[str]) -> dict[str, str]:
        """The statuses of `ids` once none is queued, submitted or mined any more."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            statuses = self.statuses(ids)
            if len(statuses) == len(ids) and set(statuses.values()) <= {"confirmed", "failed"}:
                return statuses
            assert time.monotonic() < deadline, f"not settled: {Counter(statuses.values())}"
            time.sleep(0.2)

    def failures(self, ids: set[str]) -> list[tuple[str, str, int | None, str | None]]:
        """(id, account, nonce, error message) of the failed rows among `ids`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, account, nonce, error_message FROM operations WHERE status = 'failed'")
            ).all()
        return [(op_id, account, nonce, error) for op_id, account, nonce, error in rows if op_id in ids]

    def confirm_all(self, ids: set[str]) -> None:
        """Every row of `ids` ends confirmed (the failed ones and their errors shown otherwise)."""
        statuses = self.settle(ids)
        assert set(statuses.values()) == {"confirmed"}, self.failures(ids)

    def nonces(self) -> dict[str, list[int]]:
        """Every signed row's nonce per account (filler rows too), in nonce order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT account, nonce FROM operations WHERE nonce IS NOT NULL ORDER BY account, nonce")
            ).all()
        found: dict[str, list[int]] = defaultdict(list)
        for account, nonce in rows:
            found[account].append(int(nonce))
        return found


def _signed_nonces(log_file: Path) -> set[tuple[str, int]]:
    """(account, nonce) of every nonce range a gateway logged as signed and committed."""
    return {
        (event["account"], nonce)
        for event in log_events(log_file, SIGNED)
        for nonce in range(event["first_nonce"], event["first_nonce"] + event["count"])
    }


def _topic(deployment: Any, event: str) -> str:
    abi = next(e for e in deployment["contracts"]["DeviceRegistry"]["abi"] if e.get("name") == event)
    return "0x" + event_abi_to_log_topic(abi).hex()


class Profile:
    """The processes of one production deployment over the test's database, as docs/production.md runs them."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        shared = {  # what the API processes of one deployment share: keys and the import directory
            "capability_key_path": str(tmp_path / "keys" / "capability.pem"),
            "zone_masking_key_path": str(tmp_path / "keys" / "masking.key"),
            "import_dir": str(tmp_path / "imports"),
            "run_gateway_in_api": "false",
            "run_indexer_in_api": "false",
            "schema_check": "true",  # refuse a database behind the migrations, as production sets it
            "log_json": "true",
        }
        self.apis: list[ApiProcess] = []
        for name, imports, anchor_seconds in (("api-1", "true", "2"), ("api-2", "false", "0")):
            (tmp_path / name).mkdir()
            self.apis.append(
                ApiProcess(
                    settings,
                    tmp_path / name,
                    run_imports_in_api=imports,  # the import runner and receipt anchoring: in one API process only
                    receipt_anchor_interval_seconds=anchor_seconds,
                    **shared,
                )
            )
        worker = [sys.executable, "-m", "chain_gateway", "worker"]
        self.gateways = [
            ServiceProcess(self.apis[0], "gateway", tmp_path / "gateway-a.log", worker),
            ServiceProcess(self.apis[1], "gateway", tmp_path / "gateway-b.log"),  # `dirchain gateway run`
        ]
        self.indexer = ServiceProcess(self.apis[0], "indexer", tmp_path / "indexer.log")

    def migrate(self) -> None:
        """`dirchain db upgrade`: the schema, before any process starts."""
        api = self.apis[0]
        done = subprocess.run(
            [sys.executable, "-c", "from registry_api.cli import main; main()", "db", "upgrade"],
            cwd=api.cwd,
            env=api.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        """Every process at once (the APIs are up when this returns)."""
        for process in (*self.gateways, self.indexer):
            process.start()
        with ThreadPoolExecutor(len(self.apis)) as starting:
            list(starting.map(lambda api: api.start(), self.apis))

    def stop(self) -> None:
        for process in (*self.gateways, self.indexer, *self.apis):
            process.stop()


def _wait_for_roles(urls: list[str], tokens: dict[str, str]) -> None:
    """Until the mirror holds each org's roles (a write needs REGISTRAR there)."""
    for url in urls:
        for org, token in tokens.items():
            wait_for(
                lambda u=url, o=org, t=token: (
                    httpx.get(f"{u}/v1/members/{o}", headers={"Authorization": f"Bearer {t}"}).status_code == 200
                ),
                60,
                f"the mirror holds no roles of {org}",
            )


def _assert_each_write_once_on_chain(w3: Web3, deployment: Any, writes: list[Write]) -> None:
    """Each write's event (registered, inspected or suspended) counted by device code: exactly one."""
    expected: dict[str, list[str]] = defaultdict(list)
    for write in writes:
        event = {"inspections": "DeviceInspected", "lifecycle": "DeviceLifecycleChanged"}.get(
            write.path.rsplit("/", 1)[-1], "DeviceRegistered"
        )
        expected[event].append(write.code)
    for event, codes in expected.items():
        counts = registrations(w3, deployment, codes, _topic(deployment, event))
        assert sorted(counts) == sorted(codes) and set(counts.values()) == {1}, f"{event}: {counts}"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the production profile's database
def test_two_apis_and_two_gateways_share_one_outbox_without_nonce_collisions_or_lost_writes(
    service_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    marks = [("begin", time.monotonic())]
    database_url = service_settings.database_url
    accounts = {chain.orgs[org].account for org in ORGS}
    first_nonce = {account: w3.eth.get_transaction_count(account) for account in accounts}  # type: ignore[arg-type]
    profile = Profile(service_settings, tmp_path)
    outbox = Outbox(database_url)
    with ExitStack() as stack:
        stack.callback(outbox.engine.dispose)
        stack.callback(profile.stop)
        profile.migrate()
        tokens = {org: org_token(database_url, org, chain.orgs[org].account, "production test") for org in ORGS}
        profile.start()
        clients = Clients([api.url for api in profile.apis], tokens)
        stack.callback(clients.close)
        _wait_for_roles(clients.urls, tokens)
        wait_for(
            lambda: all(log_events(g.log, "gateway worker started") for g in profile.gateways),
            60,
            "a gateway did not start",
        )
        marks.append(("started", time.monotonic()))

        # wave 1: registrations through both APIs, both gateways signing
        registered = clients.send_all([_registration(i) for i in range(DEVICES)])
        outbox.confirm_all({a.operation_ids[0] for a in registered})
        wait_for(lambda: _signed_nonces(profile.gateways[0].log), 30, "gateway A signed nothing")
        marks.append(("wave 1", time.monotonic()))

        # wave 2: follow-ups; gateway A is killed once half of them are accepted, B finishes alone
        follow_ups = [_follow_up(i) for i in range(DEVICES)]
        followed = clients.send_all(follow_ups[: DEVICES // 2])
        at_kill = Counter(outbox.statuses({a.operation_ids[0] for a in followed}).values())
        profile.gateways[0].kill()
        followed += clients.send_all(follow_ups[DEVICES // 2 :])
        outbox.confirm_all({a.operation_ids[0] for a in followed})
        marks.append(("wave 2", time.monotonic()))

        # every 202 answers confirmed, through either API
        for i, accepted in enumerate(registered + followed):
            for op_id in accepted.operation_ids:
                assert clients.status(i % 2, accepted.write.org, op_id) == "confirmed", (accepted.write.key, op_id)

        # per signing account: nonces unique and contiguous from the chain's count before the test to its count now
        nonces = outbox.nonces()
        assert set(nonces) == accounts
        for account, used in nonces.items():
            last = w3.eth.get_transaction_count(account)  # type: ignore[arg-type]
            assert used == list(range(first_nonce[account], last)), f"{account}: {used}"

        _assert_each_write_once_on_chain(w3, chain.deployment, [a.write for a in registered + followed])

        # both gateways signed, never the same nonce; every nonce they logged is one the outbox holds
        by_a, by_b = (_signed_nonces(gateway.log) for gateway in profile.gateways)
        assert by_a and by_b, f"gateway A signed {len(by_a)} nonces, B {len(by_b)}"
        assert not by_a & by_b, f"nonces signed by both gateways: {sorted(by_a & by_b)[:5]}"
        assert by_a | by_b <= {(account, nonce) for account, used in nonces.items() for nonce in used}

        # the mirror (the one indexer process) holds every device
        codes = {a.write.code for a in registered}
        wait_for(lambda: mirrored_codes(database_url) >= codes, 60, "the mirror did not catch up")
        marks.append(("checked", time.monotonic()))
    log.warning(
        "shared outbox: %d writes (%d sent to both APIs) for %d accounts; gateway A signed %d nonces, B %d; "
        "wave 2 at A's kill: %s; seconds: %s",
        2 * DEVICES,
        sum(1 for a in registered + followed if a.write.both),
        len(accounts),
        len(by_a),
        len(by_b),
        dict(at_kill),
        {name: round(at - prev, 1) for (_, prev), (name, at) in zip(marks, marks[1:], strict=False)},
    )
