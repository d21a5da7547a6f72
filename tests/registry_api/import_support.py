"""Import files for the import tests and benchmark: deterministic good rows and bad rows of every kind, each
bad row with the reason and column the report must give; and the chain's registrations counted per code."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_utils import keccak
from web3 import Web3

from chain_gateway.deployments import Deployment
from chain_gateway.devnet import DEMO_CODE_RULES, free_port
from chain_gateway.settings import Settings
from registry_api.app import create_read_engine
from registry_api.auth import create_token_table, issue_token
from registry_api.city import DISTRICTS
from registry_api.imports.runner import CRASH_ENV
from tests.chain_gateway.support import DEVICE_REGISTERED_TOPIC

__all__ = [
    "ApiProcess",
    "BAD_KINDS",
    "CSV_COLUMNS",
    "Sample",
    "SampleRow",
    "ServiceProcess",
    "registrations",
    "sample_rows",
    "org_token",
    "write_csv",
    "wait_for",
    "write_ndjson",
]

CSV_COLUMNS = ("code", "type", "district", "lat", "lon", "built_at", "status", "owner_org", "attr.vendor",
               "attr.pole", "attr.phone")  # fmt: skip
NOT_UTF8_MARK = "@@NOT-UTF8@@"  # replaced by invalid bytes when written
# kind -> (reason code, column) the report must show
BAD_KINDS: dict[str, tuple[str, str | None]] = {
    "code_rule": ("CODE_RULE_VIOLATION", "code"),
    "unknown_type": ("UNKNOWN_TYPE", "type"),
    "missing_code": ("MISSING_FIELD", "code"),
    "bad_lat": ("INVALID_VALUE", "lat"),
    "outside_city": ("OUTSIDE_CITY", "lat"),
    "district_mismatch": ("DISTRICT_MISMATCH", "district"),
    "unknown_district": ("UNKNOWN_DISTRICT", "district"),
    "future_built": ("INVALID_VALUE", "built_at"),
    "bad_status": ("INVALID_VALUE", "status"),
    "personal_data": ("PERSONAL_DATA_NOT_ALLOWED", "attr.phone"),
    "other_org": ("ORG_MISMATCH", "owner_org"),
    "dup_in_file": ("DUPLICATE_CODE_IN_FILE", "code"),
    "dup_on_ledger": ("DUPLICATE_CODE", "code"),
    "malformed": ("MALFORMED_ROW", None),
    "not_utf8": ("NOT_UTF8", "attr.vendor"),
}
_TYPES = [(name, prefix) for _, name, prefix, _, _ in DEMO_CODE_RULES]


@dataclass(frozen=True)
class SampleRow:
    number: int  # data row number (1-based)
    values: dict[str, str]
    kind: str | None = None  # None: a good row
    extra_field: bool = False

    @property
    def code(self) -> str:
        return self.values["code"]


@dataclass
class Sample:
    """What a written file holds: good codes, bad rows by number with (reason, column), ledger duplicates."""

    good: list[str] = field(default_factory=list)
    bad: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    on_ledger: dict[int, str] = field(default_factory=dict)  # row -> code the test registers before importing

    def unregistered(self) -> Sample:
        """The expectations when the `on_ledger` codes are not registered first: those rows are good then."""
        return Sample(
            good=self.good + list(self.on_ledger.values()),
            bad={row: why for row, why in self.bad.items() if row not in self.on_ledger},
        )


def _good(rng: random.Random, serial: int) -> dict[str, str]:
    district = DISTRICTS[serial % len(DISTRICTS)]
    west, south, east, north = district.bbox
    type_name, prefix = _TYPES[serial % len(_TYPES)]
    return {
        "code": f"{prefix}{district.code}{serial % 1_000_000:06d}",
        "type": type_name,
        "district": str(district.code),
        "lat": f"{rng.uniform(south + 0.005, north - 0.005):.6f}",
        "lon": f"{rng.uniform(west + 0.005, east - 0.005):.6f}",
        "built_at": f"20{rng.randrange(15, 24)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "status": "active" if serial % 7 else "planned",
        "owner_org": "",
        "attr.vendor": ("海康威视", "大华", "宇视")[serial % 3],
        "attr.pole": f"P-{serial}",
        "attr.phone": "",
    }


def _spoil(values: dict[str, str], kind: str, first: dict[str, str]) -> bool:
    """Make a good row bad in the way `kind` names; True if the row gets an extra field (malformed)."""
    if kind == "code_rule":
        values["code"] = "XX-" + values["code"][3:]
    elif kind == "unknown_type":
        values["type"] = "camera.thermal"
    elif kind == "missing_code":
        values["code"] = ""
    elif kind == "bad_lat":
        values["lat"] = "north"
    elif kind == "outside_city":
        values["lat"], values["lon"] = "31.230400", "121.473700"  # Shanghai
    elif kind == "district_mismatch":  # a point in southern Daxing filed under Yanqing, far north
        values["district"], values["lat"], values["lon"] = "110119", "39.550000", "116.400000"
    elif kind == "unknown_district":
        values["district"] = "120101"  # Tianjin
    elif kind == "future_built":
        values["built_at"] = "2099-01-01"
    elif kind == "bad_status":
        values["status"] = "broken"
    elif kind == "personal_data":
        values["attr.phone"] = "13800000000"
    elif kind == "other_org":
        values["owner_org"] = "BJ-CMC"
    elif kind == "dup_in_file":  # the first row again
        values.update(first)
    elif kind == "not_utf8":
        values["attr.vendor"] = NOT_UTF8_MARK
    return kind == "malformed"


def sample_rows(total: int, bad_every: int, seed: int = 7, serial_base: int = 0) -> Iterator[SampleRow]:
    """`total` rows; every `bad_every`-th is bad, cycling through BAD_KINDS (generated, never held at once)."""
    rng = random.Random(seed)
    kinds = list(BAD_KINDS)
    first: dict[str, str] = {}
    bad_seen = 0
    for number in range(1, total + 1):
        serial = serial_base + number
        values = _good(rng, serial)
        if number == 1:
            first = dict(values)
        kind = None
        extra = False
        if number % bad_every == 0 and number > 1:
            kind = kinds[bad_seen % len(kinds)]
            bad_seen += 1
            extra = _spoil(values, kind, first)
        yield SampleRow(number, values, kind, extra)


def _record(sample: Sample, row: SampleRow) -> None:
    if row.kind is None:
        sample.good.append(row.code)
    else:
        sample.bad[row.number] = BAD_KINDS[row.kind]
        if row.kind == "dup_on_ledger":
            sample.on_ledger[row.number] = row.code


def write_csv(path: Path, rows: Iterable[SampleRow], bom: bool = True) -> Sample:
    """Write a CSV file (UTF-8 with BOM, as spreadsheet programs save it) row by row."""
    sample = Sample()
    with path.open("wb") as out:
        out.write(("\ufeff" if bom else "").encode() + (",".join(CSV_COLUMNS) + "\r\n").encode())
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            fields = [row.values[c] for c in CSV_COLUMNS] + (["surplus"] if row.extra_field else [])
            writer.writerow(fields)
            data = buffer.getvalue().encode()
            out.write(data.replace(NOT_UTF8_MARK.encode(), b"\xc3\x28"))
            buffer.seek(0)
            buffer.truncate()
            _record(sample, row)
    return sample


def _as_object(values: dict[str, str]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        k: v for k, v in values.items() if v and not k.startswith("attr.") and k not in ("lat", "lon")
    }
    try:
        obj["location"] = {"lat": float(values["lat"]), "lon": float(values["lon"])}
    except ValueError:
        obj["location"] = {"lat": values["lat"], "lon": values["lon"]}
    if "district" in obj:
        obj["district"] = int(obj["district"])
    obj["attributes"] = {k[5:]: v for k, v in values.items() if k.startswith("attr.") and v}
    return obj


def write_ndjson(path: Path, rows: Iterable[SampleRow]) -> Sample:
    """Write an NDJSON file; malformed rows are a line that is not JSON. Columns in the expectations become
    JSON paths (location.lat, attributes.phone)."""
    paths = {"lat": "location.lat", "attr.phone": "attributes.phone", "attr.vendor": None}
    sample = Sample()
    with path.open("wb") as out:
        for row in rows:
            line = '{"code": "broken' if row.extra_field else json.dumps(_as_object(row.values), ensure_ascii=False)
            out.write(line.encode().replace(NOT_UTF8_MARK.encode(), b"\xc3\x28") + b"\n")
            _record(sample, row)
            if row.kind is not None:
                reason, column = sample.bad[row.number]
                sample.bad[row.number] = (reason, paths.get(column or "", column))
    return sample


def registrations(
    w3: Web3, deployment: Deployment, codes: Iterable[str], topic: str = DEVICE_REGISTERED_TOPIC
) -> Counter[str]:
    """DeviceRegistered events (or the DeviceRegistry events of `topic`, indexed by code hash) on the chain for
    `codes`, counted per code (other codes are not counted)."""
    by_hash = {"0x" + keccak(text=code).hex(): code for code in codes}
    counts: Counter[str] = Counter()
    head = w3.eth.block_number
    start = deployment["deploy_block"]
    while start <= head:
        end = min(head, start + 5_000)
        for log in w3.eth.get_logs(
            {
                "address": deployment["contracts"]["DeviceRegistry"]["address"],
                "fromBlock": start,
                "toBlock": end,
                "topics": [topic],
            }
        ):
            code = by_hash.get("0x" + bytes(log["topics"][1]).hex())
            if code is not None:
                counts[code] += 1
        start = end + 1
    return counts


def org_token(database_url: str, org: str, account: str, label: str) -> str:
    """A bearer token of `org` in the service's database (its token table made if missing)."""
    engine = create_read_engine(database_url)
    try:
        create_token_table(engine)
        return issue_token(engine, org, account, label)
    finally:
        engine.dispose()


def _kill(process: subprocess.Popen[bytes] | None, what: str) -> None:
    """SIGKILL: no handler runs, nothing is flushed or closed."""
    assert process is not None and process.poll() is None, f"the {what} exited before the kill"
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it is not gone in 30 s."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


class ApiProcess:
    """`dirchain serve` in a child process (gateway, indexer and import runner inside), started and killed at
    will, on one port; `overrides` are more settings (e.g. import_batch_size="100")."""

    def __init__(self, settings: Settings, tmp_path: Path, **overrides: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "api.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DIRCHAIN_")}
        self.env.update(
            DIRCHAIN_RPC_URLS=json.dumps(settings.rpc_urls),
            DIRCHAIN_CHAIN_ID=str(settings.chain_id),
            DIRCHAIN_DEPLOYMENTS_PATH=str(settings.deployments_path),
            DIRCHAIN_DATABASE_URL=settings.database_url,
            DIRCHAIN_KEYSTORE_DIR=str(settings.keystore_dir),
            DIRCHAIN_KEYSTORE_PASSWORD=settings.keystore_password.get_secret_value(),
            DIRCHAIN_CONFIRMATIONS="0",  # automining makes no block on top of the last batch
            DIRCHAIN_GATEWAY_POLL_SECONDS="0.05",
            DIRCHAIN_INDEXER_POLL_SECONDS="0.2",
            DIRCHAIN_IMPORT_POLL_SECONDS="0.05",
            DIRCHAIN_IMPORT_DIR=str(tmp_path / "imports"),
            DIRCHAIN_RECEIPT_ANCHOR_INTERVAL_SECONDS="0",
            DIRCHAIN_CAPABILITY_KEY_PATH=str(tmp_path / "keys" / "capability.pem"),
            DIRCHAIN_ZONE_MASKING_KEY_PATH=str(tmp_path / "keys" / "masking.key"),
            DIRCHAIN_API_PORT=str(self.port),
        )
        self.env.update({f"DIRCHAIN_{name.upper()}": value for name, value in overrides.items()})
        self.cwd = tmp_path  # away from any .env of the checkout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: str | None = None) -> None:
        env = dict(self.env)
        if crash_at is not None:
            env[CRASH_ENV] = crash_at
        with open(self.log, "ab") as out:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from registry_api.cli import main; main()", "serve"],
                cwd=self.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self._up(), 60, "the API did not start")

    def _up(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"API exited with {self.process.returncode}: {self.log.read_text()[-3000:]}"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    def memory_bytes(self, field: str = "VmHWM") -> int:
        """The process's resident memory from /proc: VmHWM (peak so far) or VmRSS (now)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        return 0

    def kill(self) -> None:
        _kill(self.process, "API")

    def wait_exit(self) -> int:
        assert self.process is not None
        return self.process.wait(120)

    def __enter__(self) -> ApiProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        _terminate(self.process)


class ServiceProcess:
    """`dirchain gateway run` or `dirchain indexer run` in a child process with an `ApiProcess`'s environment
    (run it with `run_gateway_in_api` / `run_indexer_in_api` off), started, killed and stopped at will;
    `command` runs it otherwise (e.g. `python -m chain_gateway worker`: a second less of imports per start)."""

    def __init__(self, api: ApiProcess, service: str, log: Path, command: list[str] | None = None) -> None:
        self.service = service
        self.command = command or [sys.executable, "-c", "from registry_api.cli import main; main()", service, "run"]
        self.env, self.cwd, self.log = api.env, api.cwd, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with open(self.log, "ab") as out:  # the child keeps its own descriptor
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=out)
        return self

    def kill(self) -> None:
        _kill(self.process, self.service)

    def stop(self) -> None:
        _terminate(self.process)
