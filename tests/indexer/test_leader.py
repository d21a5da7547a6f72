"""One indexer writes a database's mirror: the leader lock (indexer.leader) on SQLite and PostgreSQL, alone, inside
`Indexer.sync_once`, and between real processes: `dirchain indexer run` leads, `dirchain serve` with its indexer
inside stands by, and takes over when the leader is killed with SIGKILL."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from web3 import Web3

from chain_gateway.devnet import AnvilNode, SeededConsortium
from chain_gateway.settings import Settings
from indexer.leader import LEADER_LOCK_KEY, LeaderLock, LeadershipLostError, NotLeaderError, leader_lock
from indexer.service import LEADER_EVENT, LOST_EVENT, STANDBY_EVENT
from tests.faults.import_faults import log_events, mirrored_codes
from tests.indexer.support import assert_equals_fresh_replay, device_input, open_indexer, registry_call
from tests.registry_api.import_support import ApiProcess, ServiceProcess, wait_for
from tests.support.postgres import PostgresServer

log = logging.getLogger(__name__)

TAKEOVER_SECONDS = 15.0  # deadline for a standby to lead once the leader is gone (it tries every 0.2 s here)
SERIAL_BASE = 660_000  # device codes BJ-CAMR-110105660000 onwards


@pytest.fixture
def locks(database_url: str) -> Iterator[list[LeaderLock]]:
    """Two leader locks on the test's database (two would-be indexers), released afterwards."""
    made = [leader_lock(database_url), leader_lock(database_url)]
    yield made
    for lock in made:
        lock.release()


def lock_holders(database_url: str) -> list[int]:
    """The pids of the processes holding the database's leader lock, as the database or the kernel sees them."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        stat = os.stat(f"{url.database}.indexer.lock")
        device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
        fields = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
        return [int(f[4]) for f in fields if f[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and f[5] == device]
    names = _for_lock_sessions(database_url, "a.application_name")  # "dirchain-indexer <host>:<pid>"
    return [int(name.rsplit(":", 1)[1]) for name in names]


def _for_lock_sessions(database_url: str, expression: str) -> list[Any]:
    """`expression` for each PostgreSQL session holding the database's leader lock (`l`: pg_locks, `a`: its
    pg_stat_activity row)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        f"SELECT {expression} FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                        " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key"
                        " AND l.database = a.datid AND a.datname = current_database()"
                    ),
                    {"key": LEADER_LOCK_KEY},
                ).scalars()
            )
    finally:
        engine.dispose()


def test_a_second_indexer_stands_by_until_the_leader_releases_the_lock(
    locks: list[LeaderLock], database_url: str, replay_url: str
) -> None:
    leader, standby = locks
    assert leader.acquire() and leader.held
    assert not standby.acquire() and not standby.held
    leader.check()  # held: no error
    assert lock_holders(database_url) == [os.getpid()]
    other = leader_lock(replay_url)  # another database: its own lock
    try:
        assert other.acquire()
    finally:
        other.release()
    leader.release()
    assert not leader.held
    with pytest.raises(LeadershipLostError):
        leader.check()
    assert standby.acquire() and standby.acquire()  # a holder's acquire is a check
    assert not leader.acquire()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_leader_whose_database_session_ends_stops_writing_and_competes_again(
    locks: list[LeaderLock], database_url: str
) -> None:
    """A server restart or a dropped connection ends the lock's session, and the lock with it."""
    leader, standby = locks
    assert leader.acquire()
    assert _for_lock_sessions(database_url, "pg_terminate_backend(l.pid)") == [True]
    wait_for(lambda: standby.acquire(), 10, "the ended session's lock was never released")
    with pytest.raises(LeadershipLostError, match="session ended"):
        leader.check()
    assert not leader.held
    assert not leader.acquire()  # competes again: the standby leads now
    standby.release()
    assert leader.acquire()


def test_a_postgres_restart_ends_the_leaders_lock_and_it_is_taken_again(tmp_path: Path) -> None:
    """A restart ends every session, the lock's too: the old leader must notice before it writes again."""
    server = PostgresServer().start()  # a private server: the session's shared one is never stopped
    try:
        url = server.create_database("leader")
        leader, standby = leader_lock(url), leader_lock(url)
        try:
            assert leader.acquire() and not standby.acquire()
            server.halt()
            server.resume()
            with pytest.raises(LeadershipLostError, match="session ended"):
                leader.check()
            assert standby.acquire() and not leader.acquire()
        finally:
            leader.release()
            standby.release()
    finally:
        server.stop()


def _hold(ready: Any, done: Any) -> None:
    ready.set()  # the child runs: whatever it inherited and kept, it holds now
    done.wait(30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_forked_child_does_not_keep_the_leaders_file_lock(locks: list[LeaderLock], database_url: str) -> None:
    """The catch-up fetcher is a forked child: a leader killed during catch-up must not leave it holding the lock."""
    leader, standby = locks
    assert leader.acquire()
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    child = context.Process(target=_hold, args=(ready, done), daemon=True)
    child.start()
    try:
        assert ready.wait(30)
        leader.release()
        assert standby.acquire(), "the forked child kept the leader's lock"
    finally:
        done.set()
        child.join(10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_removed_lock_file_is_a_lost_lock(locks: list[LeaderLock], database_url: str) -> None:
    """A newcomer would lock a new file at that path: the old holder must stop writing."""
    leader, newcomer = locks
    assert leader.acquire()
    Path(leader.where).unlink()
    assert newcomer.acquire()
    with pytest.raises(LeadershipLostError, match="removed or replaced"):
        leader.check()
    assert not leader.acquire()


def test_an_in_memory_database_needs_no_lock_and_a_file_uri_is_locked_beside_its_file(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        lock = leader_lock(url)
        assert lock.acquire() and lock.held and leader_lock(url).acquire(), url
    lock = leader_lock(f"sqlite:///file:{tmp_path / 'mirror.db'}?uri=true")
    try:
        assert lock.acquire() and lock.where == str(tmp_path / "mirror.db.indexer.lock")
    finally:
        lock.release()


def test_sync_once_writes_nothing_while_another_indexer_leads(
    locks: list[LeaderLock], database_url: str, anvil: AnvilNode, chain: SeededConsortium
) -> None:
    other = locks[0]
    assert other.acquire()
    with open_indexer(database_url, anvil.url, chain.deployment) as indexer:
        with pytest.raises(NotLeaderError, match="another indexer holds"):
            indexer.sync_once()
        assert indexer.checkpoint is None and indexer.status.role == "standby" and indexer.status.last_error is None
        other.release()
        result = indexer.sync_once()
        assert result.blocks > 0 and indexer.checkpoint == result.to_block
        assert indexer.status.role == "standby"  # a lone sync_once lets the lock go
        assert other.acquire()


def _health(api: ApiProcess) -> dict[str, Any]:
    answer = httpx.get(f"{api.url}/healthz", timeout=5)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _role_changes(log_file: Path) -> list[str]:
    """The role-change events a process logged, in order."""
    found = [log_events(log_file, event) for event in (STANDBY_EVENT, LEADER_EVENT, LOST_EVENT)]
    return [e["event"] for e in sorted((e for events in found for e in events), key=lambda e: e["timestamp"])]


def _register(w3: Web3, chain: SeededConsortium, serials: range) -> set[str]:
    inputs = [device_input(serial) for serial in serials]
    registry_call(w3, chain, "registerDevices", inputs)
    return {item[0] for item in inputs}


def test_one_of_two_indexer_processes_leads_and_the_other_takes_over_when_it_is_killed(
    service_settings: Settings, anvil: AnvilNode, chain: SeededConsortium, w3: Web3, replay_url: str, tmp_path: Path
) -> None:
    """`dirchain indexer run` and `dirchain serve` (its indexer inside) start while the test holds the lock: both
    stand by. Released, the lock goes to one of them; SIGKILL that one and the other leads. Both processes start
    at once (their start-up is most of the test's time), so either may win: the checks hold for both outcomes."""
    database_url = service_settings.database_url
    api = ApiProcess(service_settings, tmp_path, run_indexer_in_api="true", run_gateway_in_api="false", log_json="true")
    indexer = ServiceProcess(api, "indexer", tmp_path / "indexer.log")
    blocker = leader_lock(database_url)
    marks = [("begin", time.monotonic())]
    with ExitStack() as stack:
        stack.callback(indexer.stop)
        stack.callback(api.stop)
        stack.callback(blocker.release)
        assert blocker.acquire()
        indexer.start()
        api.start()
        assert indexer.process is not None and api.process is not None
        pids = {indexer.process.pid: "indexer", api.process.pid: "api"}
        wait_for(lambda: _health(api)["indexer"]["role"] == "standby", 30, "the API's indexer is not standing by")
        wait_for(lambda: log_events(indexer.log, STANDBY_EVENT), 30, "the indexer process is not standing by")
        first = _register(w3, chain, range(SERIAL_BASE, SERIAL_BASE + 5))
        assert mirrored_codes(database_url) == set() and lock_holders(database_url) == [os.getpid()]
        marks.append(("started", time.monotonic()))

        blocker.release()
        wait_for(lambda: set(lock_holders(database_url)) & set(pids), 15, "neither process took the lock")
        leader = lock_holders(database_url)
        assert len(leader) == 1 and leader[0] in pids, leader
        api_leads = pids[leader[0]] == "api"
        assert _health(api)["indexer"]["role"] == ("leader" if api_leads else "standby")
        wait_for(lambda: mirrored_codes(database_url) >= first, 30, "the leader did not mirror the devices")
        assert lock_holders(database_url) == leader  # the standby never took it meanwhile
        marks.append(("mirrored", time.monotonic()))

        (api if api_leads else indexer).kill()  # SIGKILL: no handler runs; the kernel or the server frees the lock
        killed = time.monotonic()
        heir = indexer.process.pid if api_leads else api.process.pid
        wait_for(lambda: lock_holders(database_url) == [heir], TAKEOVER_SECONDS, "the standby never took the lock")
        takeover = time.monotonic() - killed
        marks.append(("taken over", time.monotonic()))
        heir_log = indexer.log if api_leads else api.log  # it stood by, then led: no other role change
        wait_for(lambda: log_events(heir_log, LEADER_EVENT), 5, "the new leader does not say it leads")
        assert _role_changes(heir_log) == [STANDBY_EVENT, LEADER_EVENT]
        if not api_leads:
            assert _health(api)["indexer"]["role"] == "leader"
        second = _register(w3, chain, range(SERIAL_BASE + 5, SERIAL_BASE + 10))
        wait_for(lambda: mirrored_codes(database_url) >= first | second, 30, "the new leader did not mirror")
        if not api_leads:
            health = _health(api)
            assert health["status"] == "ok" and health["indexer"]["error"] is None, health
        marks.append(("mirrored again", time.monotonic()))
    assert_equals_fresh_replay(database_url, replay_url, anvil.url, chain.deployment)
    marks.append(("replayed", time.monotonic()))
    log.warning(
        "leader takeover (%s): the %s led first; the other led %.2f s after the SIGKILL; seconds: %s",
        make_url(database_url).get_backend_name(),
        "API" if api_leads else "indexer process",
        takeover,
        {name: round(at - prev, 1) for (_, prev), (name, at) in zip(marks, marks[1:], strict=False)},
    )
