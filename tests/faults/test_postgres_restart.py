"""PostgreSQL restarted under load: the API answers 503 DATABASE_UNAVAILABLE meanwhile and recovers alone.

A private PostgreSQL (never the session's shared one) serves a real `dirchain serve` process with its gateway and
indexer inside, against the module's anvil. Threads keep device lookups, list pages, resolver decisions and
writes with an Idempotency-Key going while the server is stopped ("fast": sessions are ended as a restart ends
them), kept down a few seconds and started again. The API is never restarted. SQLite has no server to restart:
this fault has no SQLite counterpart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from web3 import Web3

from chain_gateway.devnet import SeededConsortium, free_port
from chain_gateway.settings import Settings
from indexer.errors import is_database_lost, is_retryable
from registry_api.app import create_read_engine
from registry_api.auth import create_token_table, issue_token
from registry_api.deps import get_session
from tests.registry_api.catalog_support import entry
from tests.registry_api.import_support import ApiProcess, registrations, wait_for
from tests.registry_api.support import device
from tests.support.postgres import PostgresServer

log = logging.getLogger(__name__)

ORG = "BJ-PSB"
OUTAGE_SECONDS = 4.0  # how long PostgreSQL stays down
CLIENT_TIMEOUT_SECONDS = 10.0  # an answer later than this is a hang
PAUSE_SECONDS = 0.05  # between one thread's requests: load, not a benchmark, on a shared 2-core machine
SERIAL_BASE = 730_000  # device codes of this test: BJ-CAMR-110105730000 onwards
SETTLE_SECONDS = 120.0  # deadline for every accepted write to be confirmed


@dataclass(frozen=True)
class Answer:
    """One request of the load: what it was, when it was sent and answered, and what came back."""

    kind: str  # lookup | list | resolve | write
    sent: float
    answered: float
    status: int | str  # the HTTP status, or "timeout" / "transport" when none came
    code: str | None  # the error body's code
    text: str


@dataclass
class Accepted:
    """A write answered 202: its key, device code, operation and when it was accepted."""

    key: str
    code: str
    operation_id: str
    at: float


@dataclass
class Load:
    """Threads sending requests until stopped; every answer is recorded."""

    url: str
    token: str
    known_code: str
    entry_id: int
    answers: list[Answer] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: int = SERIAL_BASE

    def _request(self, client: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> Answer:
        sent = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            answer = Answer(kind, sent, time.monotonic(), "timeout", None, "")
        except httpx.TransportError as exc:
            answer = Answer(kind, sent, time.monotonic(), "transport", None, repr(exc))
        else:
            code = None
            if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
                code = response.json().get("code")
            answer = Answer(kind, sent, time.monotonic(), response.status_code, code, response.text)
        with self._lock:
            self.answers.append(answer)
        return answer

    def _loop(self, step: Callable[[httpx.Client], None]) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=CLIENT_TIMEOUT_SECONDS) as client:
            while not self.stop.is_set():
                step(client)
                self.stop.wait(PAUSE_SECONDS)

    def _lookup(self, client: httpx.Client) -> None:
        self._request(client, "lookup", "GET", f"/v1/devices/{self.known_code}")

    def _list(self, client: httpx.Client) -> None:
        self._request(client, "list", "GET", "/v1/devices", params={"owner": ORG, "limit": 50})

    def _resolve(self, client: httpx.Client) -> None:
        self._request(client, "resolve", "POST", "/v1/resolve", json={"entry_id": self.entry_id, "action": "read_raw"})

    def _write(self, client: httpx.Client) -> None:
        """Register one new device; a 503 is retried with the same Idempotency-Key until it is accepted."""
        with self._lock:
            self._serial += 1
            serial = self._serial
        body, key = device(serial), f"pg-restart-{serial}"
        while True:
            answer = self._request(client, "write", "POST", "/v1/devices", json=body, headers={"Idempotency-Key": key})
            if answer.status == 202:
                with self._lock:
                    self.accepted.append(Accepted(key, body["code"], _operation_id(answer), answer.answered))
                return
            if self.stop.wait(0.2):
                return  # stopped before it was accepted: never accepted, so nothing is owed

    def start(self) -> list[threading.Thread]:
        # two of each kind but the list: the pools hold several connections, all dead after the restart
        steps = (self._lookup, self._lookup, self._list, self._resolve, self._resolve, self._write, self._write)
        threads = [threading.Thread(target=self._loop, args=(step,), daemon=True) for step in steps]
        for thread in threads:
            thread.start()
        return threads


def _operation_id(answer: Answer) -> str:
    operation_id: str = httpx.Response(200, text=answer.text).json()["operation_id"]
    return operation_id


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module alone (never the session's shared one): its tests stop and start it."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(private_postgres: PostgresServer) -> str:
    """The test's database on the private server (in place of the conftest's SQLite and shared PostgreSQL)."""
    return private_postgres.create_database("restarted")


def _token(database_url: str, chain: SeededConsortium) -> str:
    engine = create_read_engine(database_url)
    try:
        create_token_table(engine)
        return issue_token(engine, ORG, chain.orgs[ORG].account, "postgres restart test")
    finally:
        engine.dispose()


def _operation(client: httpx.Client, operation_id: str) -> dict[str, Any]:
    """GET /v1/operations/{id}, never failed, with `updated_at` as a datetime."""
    answer = client.get(f"/v1/operations/{operation_id}")
    assert answer.status_code == 200, answer.text
    operation: dict[str, Any] = answer.json()
    assert operation["status"] != "failed", answer.text
    operation["updated_at"] = datetime.fromisoformat(operation["updated_at"])
    return operation


def _confirmed(client: httpx.Client, operation_id: str) -> bool:
    return bool(_operation(client, operation_id)["status"] == "confirmed")


def _write_and_settle(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 202, answer.text
    operation_id = answer.json()["operation_id"]
    wait_for(lambda: _confirmed(client, operation_id), 60, f"{path} not confirmed")


def _health(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    answer = client.get("/healthz")
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


def _wait_healthy(client: httpx.Client, timeout: float, what: str) -> None:
    """Wait for /healthz to say ok; the last report is in the failure message."""
    seen: list[dict[str, Any]] = []

    def healthy() -> bool:
        seen[:] = [_health(client)[1]]
        return seen[0]["status"] == "ok"

    try:
        wait_for(healthy, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {seen}") from exc


def test_postgres_restarted_under_load_answers_503_then_recovers_alone(
    service_settings: Settings, chain: SeededConsortium, w3: Web3, private_postgres: PostgresServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    settings = service_settings
    token = _token(settings.database_url, chain)
    headers = {"Authorization": f"Bearer {token}"}
    with (
        ApiProcess(settings, tmp_path) as api,
        httpx.Client(base_url=api.url, headers=headers, timeout=CLIENT_TIMEOUT_SECONDS) as client,
    ):
        api.start()
        # the indexer mirrors the roles first: until then the org holds no REGISTRAR role here
        wait_for(lambda: client.get(f"/v1/members/{ORG}").status_code == 200, 60, "roles never mirrored")
        known = device(SERIAL_BASE)
        _write_and_settle(client, "/v1/devices", known)
        _write_and_settle(client, "/v1/catalog", entry())
        wait_for(lambda: client.get(f"/v1/devices/{known['code']}").status_code == 200, 30, "device never indexed")
        entries = lambda: client.get("/v1/catalog", params={"owner": ORG}).json()["data"]  # noqa: E731
        wait_for(entries, 30, "catalog entry never indexed")
        _wait_healthy(client, 30, "never healthy before the outage")

        load = Load(api.url, token, known["code"], entries()[0]["id"])
        threads = load.start()
        wait_for(lambda: len(load.accepted) >= 10, 60, "no writes accepted before the outage")

        halt_started, halt_wall = time.monotonic(), datetime.now(UTC)
        private_postgres.halt()
        down_from = time.monotonic()
        time.sleep(OUTAGE_SECONDS)  # the outage itself: the load goes on meanwhile
        health_down = _health(client)
        down_until = time.monotonic()
        private_postgres.resume()
        up_at = time.monotonic()

        _wait_healthy(client, 60, "never healthy again after the restart")
        healthy_at = time.monotonic()
        accepted_after = lambda: [a for a in load.accepted if a.at > up_at]  # noqa: E731
        wait_for(lambda: len(accepted_after()) >= 10, 60, "no writes accepted after the restart")
        load.stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_SECONDS * 2)
        assert not any(thread.is_alive() for thread in threads)

        # every accepted write reaches confirmed; a write accepted before the outage replays its operation
        accepted = list(load.accepted)
        before = [a for a in accepted if a.at < halt_started]
        for item in before[:5]:
            again = client.post("/v1/devices", json=device(int(item.code[-6:])), headers={"Idempotency-Key": item.key})
            assert again.status_code == 202 and again.json()["operation_id"] == item.operation_id, again.text
        pending = {a.operation_id for a in accepted}
        deadline = time.monotonic() + SETTLE_SECONDS
        while pending:
            pending = {op for op in pending if not _confirmed(client, op)}
            assert time.monotonic() < deadline, f"{len(pending)} accepted writes never confirmed"
            time.sleep(0.2)
        carried = sum(1 for a in before if _operation(client, a.operation_id)["updated_at"] > halt_wall)
        counts = registrations(w3, chain.deployment, [a.code for a in accepted])
        assert {code: n for code, n in counts.items() if n != 1} == {}
        assert len(counts) == len(accepted) == len({a.code for a in accepted})
        # the indexer mirrors writes made after the outage: it resumed
        last = accepted_after()[-1].code
        wait_for(lambda: client.get(f"/v1/devices/{last}").status_code == 200, 60, "the indexer did not resume")
        status, health = _health(client)
        assert status == 200 and health["status"] == "ok", health

    answers = list(load.answers)
    # while PostgreSQL was down, every answer is 503 DATABASE_UNAVAILABLE with the error body
    during = [a for a in answers if a.sent >= down_from and a.answered <= down_until]
    assert during and {a.kind for a in during} == {"lookup", "list", "resolve", "write"}
    assert Counter((a.status, a.code) for a in during) == Counter({(503, "DATABASE_UNAVAILABLE"): len(during)})
    for a in during:
        body = httpx.Response(503, text=a.text).json()
        assert set(body) >= {"code", "message", "field"} and "Traceback" not in a.text, a.text
    assert health_down[0] == 503 and health_down[1]["database"]["ok"] is False, health_down
    # never a 500, a hang or a lost connection; around the restart 503 at worst; after it healthy answers only
    by_status = Counter(a.status for a in answers)
    assert set(by_status) <= {200, 202, 503}, [a for a in answers if a.status not in (200, 202, 503)]
    assert all(a.code == "DATABASE_UNAVAILABLE" for a in answers if a.status == 503)
    assert not [a.text for a in answers if "Traceback" in a.text]
    late = Counter((a.kind, a.status) for a in answers if a.sent >= healthy_at and a.status not in (200, 202))
    assert late == Counter(), late
    log.warning(
        "postgres restart figures: outage %.1f s; %d answers during it %s; all answers %s; 503s sent after the "
        "start %d; healthy %.1f s after the start; writes accepted %d before (%d confirmed after the stop), "
        "%d after, %d in all, each on-chain once; test %.0f s",
        down_until - down_from,
        len(during),
        dict(Counter((a.kind, a.status) for a in during)),
        dict(by_status),
        sum(1 for a in answers if a.sent >= up_at and a.status == 503),
        healthy_at - up_at,
        len(before),
        carried,
        len(accepted_after()),
        len(accepted),
        time.monotonic() - started,
    )


def test_a_database_out_of_reach_is_retryable_and_a_wrong_statement_is_not(
    private_postgres: PostgresServer,
) -> None:
    """The indexer's loop retries a server it cannot connect to (SQLAlchemy does not flag that one invalidated)."""
    nobody = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(DBAPIError) as refused:
        nobody.connect()
    assert not refused.value.connection_invalidated
    assert is_database_lost(refused.value) and is_retryable(refused.value)
    assert is_database_lost(refused.value.orig)  # raw, as a pool's raw_connection() raises it

    engine = create_engine(private_postgres.url("postgres"), poolclass=NullPool)  # each connect a new session
    try:
        with pytest.raises(DBAPIError) as wrong, engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
        assert not is_database_lost(wrong.value) and not is_retryable(wrong.value)
        private_postgres.halt()
        with pytest.raises(DBAPIError) as stopped:
            engine.connect()
        assert is_database_lost(stopped.value) and is_retryable(stopped.value)
        private_postgres.resume()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        nobody.dispose()


def test_a_request_session_whose_connection_the_server_ended_closes_quietly(private_postgres: PostgresServer) -> None:
    """The request's session is closed after the answer has started: a connection PostgreSQL ended meanwhile (as
    a restart ends them all) must not raise there, which would reset the client's connection and lose its answer.
    """
    app = FastAPI()
    app.state.engine = create_engine(private_postgres.url("postgres"))
    try:
        session_dependency = get_session(Request({"type": "http", "app": app}))
        session = next(session_dependency)
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()  # the transaction is open now
        with psycopg.connect(private_postgres.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])  # 57P01 admin shutdown, as a fast stop sends
        with pytest.raises(StopIteration):
            next(session_dependency)  # the dependency's exit: closes the session
    finally:
        app.state.engine.dispose()
