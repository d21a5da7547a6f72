"""Imports survive the API process killed (kill -9) mid-import: restarted, every good row is on-chain once.

The API runs as a real subprocess (`dirchain serve` with gateway, indexer and import runner inside) against
the module's anvil and the test's database; the chain itself is the judge of "once".
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.outbox import Operation
from chain_gateway.settings import Settings
from registry_api.app import create_read_engine
from registry_api.imports.runner import CRASH_EXIT_CODE
from tests.registry_api.import_support import (
    ApiProcess,
    Sample,
    org_token,
    registrations,
    sample_rows,
    wait_for,
    write_csv,
)

ORG = "BJ-PSB"


def _server(settings: Settings, tmp_path: Path) -> ApiProcess:
    """Small batches, two at a time in the outbox: many steps, so a kill lands mid-import."""
    return ApiProcess(settings, tmp_path, import_batch_size="50", import_max_inflight_batches="2")


def _prepared(settings: Settings, chain: SeededConsortium, tmp_path: Path) -> tuple[str, Sample, Path]:
    """A token of the importing org in the database, and the file to import (3,000 rows, 75 bad)."""
    token = org_token(settings.database_url, ORG, chain.orgs[ORG].account, "crash test")
    path = tmp_path / "devices.csv"
    sample = write_csv(path, sample_rows(3_000, bad_every=40, seed=17, serial_base=60_000))
    return token, sample.unregistered(), path


def _upload(server: ApiProcess, token: str, path: Path) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    # the indexer mirrors the roles first: until then the org holds no REGISTRAR role here
    wait_for(lambda: httpx.get(f"{server.url}/v1/members/{ORG}", headers=headers).status_code == 200, 60, "no roles")
    answer = httpx.post(
        f"{server.url}/v1/imports",
        content=path.read_bytes(),
        headers={**headers, "Content-Type": "text/csv"},
        params={"filename": path.name},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    import_id: str = answer.json()["import_id"]
    return import_id


def _job(server: ApiProcess, token: str, import_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/v1/imports/{import_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def _finished(server: ApiProcess, token: str, import_id: str, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(server, token, import_id)
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"import stuck: {job}"
        time.sleep(0.2)


def _assert_once(
    server: ApiProcess, token: str, job: dict[str, Any], sample: Sample, w3: Web3, chain: SeededConsortium, url: str
) -> None:
    """Done; every good row on-chain exactly once; every bad row reported; one operation per batch."""
    assert job["status"] == "done", job
    assert job["rows"]["read"] == 3_000 and job["rows"]["confirmed"] == len(sample.good)
    counts = registrations(w3, chain.deployment, sample.good)
    missing = [c for c in sample.good if counts[c] == 0]
    twice = [c for c in sample.good if counts[c] > 1]
    assert not missing and not twice, f"{len(missing)} missing, {len(twice)} registered twice"
    report = httpx.get(
        f"{server.url}/v1/imports/{job['import_id']}/report",
        params={"outcome": "rejected"},
        headers={"Authorization": f"Bearer {token}"},
    )
    rejected = {int(line.split(",")[0]) for line in report.text.splitlines()[1:]}
    assert rejected == set(sample.bad)
    engine = create_read_engine(url)
    try:
        with Session(engine) as session:
            operations = session.execute(
                select(func.count())
                .select_from(Operation)
                .where(Operation.idempotency_key.like(f"import:{job['import_id']}:%"))  # type: ignore[union-attr]
            ).scalar_one()
    finally:
        engine.dispose()
    assert operations == job["batches"]["total"] == job["batches"]["confirmed"]


def test_import_killed_between_recording_a_batch_and_queueing_it_completes_once(
    service_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    token, sample, path = _prepared(service_settings, chain, tmp_path)
    with _server(service_settings, tmp_path) as server:
        server.start(crash_at="after_record:7")
        import_id = _upload(server, token, path)
        assert server.wait_exit() == CRASH_EXIT_CODE  # batch 7 recorded, never queued

        server.start()
        job = _finished(server, token, import_id)

        _assert_once(server, token, job, sample, w3, chain, service_settings.database_url)


def test_import_killed_with_sigkill_midway_completes_with_no_duplicate(
    service_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    token, sample, path = _prepared(service_settings, chain, tmp_path)
    with _server(service_settings, tmp_path) as server:
        server.start()
        import_id = _upload(server, token, path)
        threshold = rng.randrange(len(sample.good) // 5, len(sample.good) // 2)
        wait_for(lambda: _job(server, token, import_id)["rows"]["confirmed"] >= threshold, 120, "no progress")
        time.sleep(rng.uniform(0.0, 0.3))
        server.kill()
        engine = create_read_engine(service_settings.database_url)
        try:
            with engine.connect() as connection:
                confirmed_at_kill = connection.exec_driver_sql(
                    f"SELECT rows_confirmed FROM import_jobs WHERE import_id = '{import_id}'"
                ).scalar_one()
        finally:
            engine.dispose()
        assert confirmed_at_kill < len(sample.good), f"seed {seed}: the import ended before the kill"

        server.start()
        job = _finished(server, token, import_id)

        _assert_once(server, token, job, sample, w3, chain, service_settings.database_url)
