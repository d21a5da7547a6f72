"""Helpers of the import fault tests: the 10,000-device file, the API's answers about one import, and the checks
that every device is on-chain exactly once and mirrored."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from indexer.models import Device
from indexer.service import create_mirror_engine
from tests.registry_api.import_support import Sample, org_token, registrations, sample_rows, wait_for, write_csv

__all__ = [
    "GOOD_DEVICES",
    "IMPORT_ORG",
    "ImportUnderTest",
    "assert_every_device_once",
    "log_events",
    "mirrored_codes",
]

IMPORT_ORG = "BJ-PSB"
GOOD_DEVICES = 10_000
# Every 400th row is bad (25 rows cycling through every kind of bad row); the one ledger-duplicate row is good here
# (its code is not registered first): 10,024 rows hold exactly 10,000 good devices.
FILE_ROWS, BAD_EVERY = 10_024, 400
FINISH_SECONDS = 300.0  # deadline for the import to finish once the faults stop


@dataclass
class ImportUnderTest:
    """One org's token, the file it uploads and what the file holds; `upload` and the job's answers."""

    url: str
    token: str
    path: Path
    sample: Sample
    import_id: str = ""

    @classmethod
    def prepared(
        cls, settings: Settings, chain: SeededConsortium, tmp_path: Path, url: str, serial_base: int
    ) -> ImportUnderTest:
        """A token of IMPORT_ORG in the service's database and the 10,000-device file (codes from `serial_base`)."""
        token = org_token(settings.database_url, IMPORT_ORG, chain.orgs[IMPORT_ORG].account, "fault test")
        path = tmp_path / "devices.csv"
        sample = write_csv(path, sample_rows(FILE_ROWS, BAD_EVERY, seed=23, serial_base=serial_base)).unregistered()
        assert len(sample.good) == GOOD_DEVICES
        return cls(url, token, path, sample)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def upload(self) -> str:
        """POST /v1/imports once the mirror holds the org's roles (until then it is no REGISTRAR here)."""
        wait_for(
            lambda: httpx.get(f"{self.url}/v1/members/{IMPORT_ORG}", headers=self.headers).status_code == 200,
            60,
            "the mirror holds no roles",
        )
        answer = httpx.post(
            f"{self.url}/v1/imports",
            content=self.path.read_bytes(),
            headers={**self.headers, "Content-Type": "text/csv"},
            params={"filename": self.path.name},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        self.import_id = answer.json()["import_id"]
        return self.import_id

    def job(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/imports/{self.import_id}", headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        return job

    def confirmed(self) -> int:
        return int(self.job()["rows"]["confirmed"])

    def finished(self, timeout: float = FINISH_SECONDS) -> dict[str, Any]:
        """The job once done or failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job()
            if job["status"] in ("done", "failed"):
                return job
            assert time.monotonic() < deadline, f"import stuck: {job}"
            time.sleep(0.2)


def mirrored_codes(database_url: str) -> set[str]:
    """The device codes in the mirror."""
    engine = create_mirror_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(select(Device.code)).scalars())  # type: ignore[call-overload]
    finally:
        engine.dispose()


def assert_every_device_once(
    job: dict[str, Any], upload: ImportUnderTest, w3: Web3, chain: SeededConsortium, context: str
) -> Counter[str]:
    """Done with every good row confirmed and every bad row rejected; the chain (eth_getLogs, counted by code)
    holds each good device exactly once. Returns the counts per code."""
    good = upload.sample.good
    assert job["status"] == "done", f"{context}: {job}"
    assert job["rows"]["confirmed"] == len(good), f"{context}: {job}"
    assert job["rows"]["rejected"] == len(upload.sample.bad), f"{context}: {job}"
    counts = registrations(w3, chain.deployment, good)
    missing = [code for code in good if counts[code] == 0]
    twice = [code for code in good if counts[code] > 1]
    assert not missing and not twice, f"{context}: {len(missing)} lost {missing[:3]}, {len(twice)} twice {twice[:3]}"
    return counts


def log_events(log: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines (DIRCHAIN_LOG_JSON=true) of `event` in a process's log."""
    found: list[dict[str, Any]] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found
