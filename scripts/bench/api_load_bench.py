#!/usr/bin/env python
"""API load benchmark: lookups by code and filtered lists over a 1,000,000-device mirror, driven by wrk on loopback.

A read benchmark, so the devices do not come from a chain. The demo consortium is seeded on a throw-away anvil
and indexed (members, accounts, roles and code rules as the indexer writes them), then anvil is stopped (reads
never touch the chain) and `--devices` rows of `registry_api.synthetic_city` (codes by the demo code rules, the
type mix, owners, the 16 districts by population, carriers' locations, active or planned, attributes) are
bulk-inserted straight into the mirror (SQLite executemany, PostgreSQL COPY and ANALYZE), with their keccak
attribute hashes and registration transactions of 250 devices.

The API then runs as a production deployment would, in its own processes on 127.0.0.1: uvicorn on the app
factory with `--workers` workers (default 2: the machine has 2 cores and the API is CPU-bound Python, one
process per core; the GIL makes threads no substitute) and the gateway, indexer, import runner and receipt
anchoring off (they run as their own services). A second process, `wrk` (C, one thread: a few % of a core; the
bench installs Debian's package when it is missing), drives it with `--connections` keep-alive connections,
each request a random line of a prepared list (Lua): a bearer token of one of the demo orgs and

* lookups: GET /v1/devices/{code} for random existing codes;
* lists: GET /v1/devices with a mix of filters people use: type + district (30 %), owner + district (15 %),
  status=planned + district (10 %), a bbox of ~1 km (25 %), near 500 m (20 %, half of them with a type), pages
  of 50 at random offsets (up to the 5th page; the spatial ones the first page).

Each phase warms up for a third of `--seconds`, then measures `--seconds`; every answer must be 200 (any other
counts as an error and fails the run). Per run it prints req/s, p50/p90/p99 latency (wrk's), the CPU the API
and wrk used per request, and at the end peak memory of the API processes, wrk and this process.

    .venv/bin/python scripts/bench/api_load_bench.py [--devices 1000000] [--seconds 20] [--runs 3]
        [--workers 2] [--connections 16] [--postgres] [--json PATH]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, PeakMemory, add_json_option, median, peak_rss_mib, write_figures  # noqa: E402
from eth_utils import keccak  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from web3 import Web3  # noqa: E402

from chain_gateway.deployments import write_deployment  # noqa: E402
from chain_gateway.devnet import AnvilNode, SeededConsortium, free_port, seed_demo_consortium  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402
from indexer.service import Indexer  # noqa: E402
from registry_api.app import create_read_engine  # noqa: E402
from registry_api.auth import issue_token  # noqa: E402
from registry_api.city import DISTRICTS  # noqa: E402
from registry_api.synthetic_city import DEVICE_TYPES, generate_devices  # noqa: E402
from tests.support.mirror_rows import insert_devices  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

TARGET_REQ_PER_S = 1_500.0  # DESIGN.md: API at 1M devices
TARGET_P99_MS = 25.0
DEVICES_PER_TX = 250  # a registerDevices transaction of the bulk import
TXS_PER_BLOCK = 64
FIRST_BLOCK = 1_000
LOOKUP_CODES = 50_000  # distinct codes the lookups pick from
LIST_QUERIES = 20_000  # distinct list requests
PAGE = 50
MAX_PAGES = 5
NEAR_RADIUS_M = 500
BOX_HALF_DEGREES = (0.0045, 0.0059)  # lat, lon: ~1 km x 1 km at Beijing's latitude
INSPECTED_SHARE = 0.5  # of active devices, with a last inspection
START_TIMEOUT_S = 120.0
# Where a request's CPU goes (CPU of the app driven in-process without a server, cProfile of it, 100k devices,
# against the bench's CPU per request).
PROFILES = {
    "lookup": "Profile: the server (uvicorn, httptools, uvloop) ~35 % (0.53 ms per request here, 0.34 ms in the app "
    "alone), FastAPI's dependency solving and routing ~30 %, the read (SQL prepared once, run on the DB-API cursor) "
    "~15 %; a route that reads its token and path itself, without FastAPI's per-parameter machinery, would move it.",
    "list": "Profile: the server ~1/3 of the CPU; in the app FastAPI solving the 8 query parameters and 2 dependencies "
    "~40 %, the read ~30 % (SQLite ~14 %, rows to dicts ~12 %; SQL prepared once per filter shape, count from the "
    "page or an index-only count); validating the query as one pydantic model in a route that takes only the request "
    "saved ~0.2 of ~1.1 ms of app CPU in a trial and would move it.",
}
WRK_SCRIPT = """
local lines = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\\t", 1, true)
    n = n + 1
    lines[n] = {line:sub(1, tab - 1), line:sub(tab + 1)}
  end
  math.randomseed(tonumber(args[2]))
end
function request()
  local pick = lines[math.random(n)]
  return wrk.format("GET", pick[2], {["Authorization"] = "Bearer " .. pick[1]})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# ---------------------------------------------------------------- the mirror


def device_rows(count: int, seed: int, type_ids: dict[str, int], org_ids: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The synthetic city's devices as mirror rows, registered in transactions of 250, 64 per block."""
    rng = random.Random(seed + 7)
    days: dict[str, int] = {}  # ISO date -> unix seconds (a few thousand dates)
    tx_hash = ""
    for serial, device in enumerate(generate_devices(count, seed)):
        tx, first_of_tx = divmod(serial, DEVICES_PER_TX)
        if first_of_tx == 0:
            tx_hash = "0x" + keccak(b"bench-tx-%d" % tx).hex()
        block = FIRST_BLOCK + tx // TXS_PER_BLOCK
        built_at = days.get(device.built_at)
        if built_at is None:
            built_at = days[device.built_at] = calendar.timegm(date.fromisoformat(device.built_at).timetuple())
        inspected = device.status == "active" and rng.random() < INSPECTED_SHARE
        yield {
            "code": device.code,
            "type_id": type_ids[device.type],
            "owner_org_id": org_ids[device.owner_org],
            "status": device.status,
            "district": device.district,
            "lat_e6": round(device.lat * 1e6),
            "lon_e6": round(device.lon * 1e6),
            "built_at": built_at,
            "attributes": device.attributes,
            "attributes_hash": "0x" + keccak(device.attributes.encode()).hex(),
            "replaced_by": None,
            "last_inspected_at": built_at + rng.randrange(86_400, 400 * 86_400) if inspected else None,
            "tx_hash": tx_hash,
            "block_number": block,
            "updated_block": block,
            "updated_tx_hash": tx_hash,
        }


def seed_chain(tmp: Path) -> tuple[SeededConsortium, Path, AnvilNode]:
    node = AnvilNode().start()
    chain = seed_demo_consortium(Web3(Web3.HTTPProvider(node.url)))
    path = tmp / "deployment.json"
    write_deployment(chain.deployment, path)
    return chain, path, node


def build_mirror(engine: Engine, chain: SeededConsortium, node: AnvilNode, devices: int, seed: int) -> None:
    """The consortium indexed from the chain, then the devices bulk-inserted (PostgreSQL analysed)."""
    rpc = JsonRpcClient([node.url])
    try:
        indexer = Indexer(engine, rpc, chain.deployment)
        indexer.create_tables()
        indexer.sync_once()
    finally:
        rpc.close()
    with engine.connect() as conn:
        type_ids = dict(conn.execute(text("SELECT type_name, type_id FROM code_rules")).all())
        org_ids = dict(conn.execute(text("SELECT code, org_id FROM members")).all())
    missing = {t.name for t in DEVICE_TYPES} - set(type_ids)
    if missing:
        raise RuntimeError(f"the demo consortium has no code rule for {sorted(missing)}")
    started = time.perf_counter()
    inserted = insert_devices(engine, device_rows(devices, seed, type_ids, org_ids))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))  # as PostgreSQL's autovacuum would; SQLite: what `PRAGMA optimize` keeps
    print(f"mirror: {inserted:,} devices inserted in {time.perf_counter() - started:.1f} s")


# ---------------------------------------------------------------- the requests


def lookup_lines(codes: list[str], tokens: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(tokens)}\t/v1/devices/{code}" for code in rng.sample(codes, min(LOOKUP_CODES, len(codes)))]


def list_lines(points: list[tuple[float, float]], tokens: list[str], seed: int) -> list[str]:
    """GET /v1/devices with the filter mix of the module docstring."""
    rng = random.Random(seed)
    owners = sorted({t.owner for t in DEVICE_TYPES} | {"BJ-CY"})
    dlat, dlon = BOX_HALF_DEGREES
    lines = []
    for _ in range(LIST_QUERIES):
        district = rng.choice(DISTRICTS).code
        offset = PAGE * rng.randrange(MAX_PAGES)
        roll = rng.random()
        if roll < 0.30:
            query = f"type={rng.choice(DEVICE_TYPES).name}&district={district}&offset={offset}"
        elif roll < 0.45:
            query = f"owner={rng.choice(owners)}&district={district}&offset={offset}"
        elif roll < 0.55:
            query = f"status=planned&district={district}&offset={offset}"
        elif roll < 0.80:
            lat, lon = rng.choice(points)
            query = f"bbox={lon - dlon:.6f},{lat - dlat:.6f},{lon + dlon:.6f},{lat + dlat:.6f}"
        else:
            lat, lon = rng.choice(points)
            query = f"near={lat:.6f},{lon:.6f},{NEAR_RADIUS_M}"
            if rng.random() < 0.5:
                query += f"&type={rng.choice(DEVICE_TYPES).name}"
        lines.append(f"{rng.choice(tokens)}\t/v1/devices?{query}&limit={PAGE}")
    return lines


# ---------------------------------------------------------------- the API and wrk


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Api:
    url: str
    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        return [self.process.pid, *_children(self.process.pid)]

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def sample_memory(self, peak: PeakMemory) -> None:
        total = sum(peak_rss_mib(pid) for pid in self.pids())
        peak.mib["api"] = round(max(peak.mib.get("api", 0.0), total), 1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def api_settings(database_url: str, tmp: Path, deployment_path: Path) -> Settings:
    """A read-serving API: gateway, indexer, imports and anchoring run as their own services, not in it."""
    return Settings(
        database_url=database_url,
        rpc_urls=["http://127.0.0.1:9"],  # reads never touch the chain
        chain_id=31337,
        deployments_path=deployment_path,
        keystore_dir=tmp / "keystore",
        run_gateway_in_api=False,
        run_indexer_in_api=False,
        run_imports_in_api=False,
        receipt_anchor_interval_seconds=0,
        capability_key_path=tmp / "keys" / "capability.pem",
        zone_masking_key_path=tmp / "keys" / "masking.key",
        import_dir=tmp / "imports",
    )


def start_api(settings: Settings, workers: int) -> Api:
    """uvicorn on the app factory with `workers` processes, configured by `settings` through the environment."""
    port = free_port()
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json", exclude_unset=True).items():
        env[f"DIRCHAIN_{name.upper()}"] = json.dumps(value) if isinstance(value, list | bool) else str(value)
    command = [sys.executable, "-m", "uvicorn", "registry_api.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    api = Api(f"http://127.0.0.1:{port}", subprocess.Popen(command, cwd=ROOT, env=env))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            if httpx.get(f"{api.url}/openapi.json", timeout=2).status_code == 200 and len(api.pids()) > workers:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    api.stop()
    raise RuntimeError("the API did not start")


def wrk_binary() -> str:
    """Debian's wrk, installed (apt-get, as root or through sudo) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


@dataclass
class Phase:
    req_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    api_cpu_ms: float  # API CPU per request
    wrk_cpu_ms: float  # wrk CPU per request
    wrk_peak_mib: float


def run_wrk(api: Api, script: Path, lines: Path, seconds: int, connections: int, seed: int) -> Phase:
    """One wrk run against `api`; raises if any answer was not 200 or a socket failed."""
    command = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
               api.url, "--", str(lines), str(seed)]  # fmt: skip
    api_cpu = api.cpu_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wrk_peak = 0.0
    while True:  # VmHWM of wrk itself (wait4's ru_maxrss would count the forked Python before exec)
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        wrk_peak = max(wrk_peak, peak_rss_mib(process.pid))
        time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    api_cpu = api.cpu_seconds() - api_cpu
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    found = [line for line in out.splitlines() if line.startswith("WRK_JSON ")]
    if process.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out}\n{err}")
    r = json.loads(found[0].removeprefix("WRK_JSON "))
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    if errors:
        raise RuntimeError(f"wrk saw errors {errors} in {r['requests']:,} requests")
    done = r["requests"]
    return Phase(
        req_per_s=done / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1e3,
        p90_ms=r["p90_us"] / 1e3,
        p99_ms=r["p99_us"] / 1e3,
        api_cpu_ms=api_cpu * 1e3 / done,
        wrk_cpu_ms=(usage.ru_utime + usage.ru_stime) * 1e3 / done,
        wrk_peak_mib=wrk_peak,
    )


def check_answers(api: Api, lines: list[str]) -> None:
    """A few requests of each list by hand: 200 and a body of the documented shape (wrk only sees statuses)."""
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for line in lines[:20]:
            token, path = line.split("\t")
            answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
            body = answer.json()
            if answer.status_code != 200 or not ("code" in body or ("data" in body and "count" in body)):
                raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")


# ---------------------------------------------------------------- figures


def bottleneck(kind: str, phases: list[Phase], workers: int) -> str:
    """What limits a phase that misses a target, from its CPU accounting."""
    rate = median([p.req_per_s for p in phases])
    api_ms = median([p.api_cpu_ms for p in phases])
    wrk_ms = median([p.wrk_cpu_ms for p in phases])
    cores = os.cpu_count() or 1
    busy = rate * (api_ms + wrk_ms) / 1e3
    return (
        f"CPU: the API spends {api_ms:.2f} ms of CPU per {kind} request ({workers} worker processes) and wrk "
        f"{wrk_ms:.3f} ms, so {rate:,.0f} req/s keeps {busy:.2f} of {cores} cores busy"
        f"{' (other processes held the rest)' if busy < 0.8 * cores else ''}; {TARGET_REQ_PER_S:,.0f} req/s "
        f"needs <= {cores * 1e3 / TARGET_REQ_PER_S - wrk_ms:.2f} ms per request in the API on {cores} cores. "
        f"{PROFILES[kind]} More cores would move it too (workers scale with cores: reads share only the database)."
    )


def figures_for(kind: str, what: str, phases: list[Phase], command: str, memory: dict[str, float], workers: int,
                note: str) -> list[Figure]:  # fmt: skip
    rates = [round(p.req_per_s, 1) for p in phases]
    p99s = [round(p.p99_ms, 2) for p in phases]
    rate_figure = Figure(
        key=f"api.{kind}_req_per_s",
        what=f"API {what}: requests/s",
        value=median(rates),
        unit="req/s",
        runs=rates,
        command=command,
        target=TARGET_REQ_PER_S,
        peak_memory=memory,
        note=note,
    )
    p99_figure = Figure(
        key=f"api.{kind}_p99_ms",
        what=f"API {what}: p99 latency",
        value=median(p99s),
        unit="ms",
        runs=p99s,
        command=command,
        target=TARGET_P99_MS,
        better="lower",
        peak_memory=memory,
        note=note,
    )
    for figure in (rate_figure, p99_figure):
        if figure.met is False:
            figure.bottleneck = bottleneck(kind, phases, workers)
    return [rate_figure, p99_figure]


def report(label: str, phase: Phase) -> None:
    print(
        f"  {label:<8} {phase.req_per_s:8,.0f} req/s   p50 {phase.p50_ms:6.2f} ms   p90 {phase.p90_ms:6.2f} ms   "
        f"p99 {phase.p99_ms:6.2f} ms   CPU per request: API {phase.api_cpu_ms:.2f} ms, wrk {phase.wrk_cpu_ms:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds per load phase")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (one per core)")
    parser.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (a private server) instead of SQLite")
    parser.add_argument("--keep-api", action="store_true", help="print the API's URL and pids, wait for Enter")
    add_json_option(parser)
    args = parser.parse_args()
    peak = PeakMemory()
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp_dir:
        tmp = Path(tmp_dir)
        server = PostgresServer().start() if args.postgres else None
        try:
            url = server.create_database("api_" + uuid.uuid4().hex[:10]) if server else f"sqlite:///{tmp}/mirror.db"
            chain, deployment_path, node = seed_chain(tmp)
            engine = create_read_engine(url)
            try:
                build_mirror(engine, chain, node, args.devices, args.seed)
            finally:
                node.stop()
            tokens = [issue_token(engine, code, org.account, "load bench") for code, org in chain.orgs.items()]
            with engine.connect() as conn:
                codes = [row[0] for row in conn.execute(text("SELECT code FROM devices"))]
                rows = conn.execute(text("SELECT lat_e6, lon_e6 FROM devices ORDER BY random() LIMIT 5000")).all()
            points = [(lat / 1e6, lon / 1e6) for lat, lon in rows]
            engine.dispose()
            work = {
                "lookup": lookup_lines(codes, tokens, args.seed),
                "list": list_lines(points, tokens, args.seed),
            }
            del codes
            script = tmp / "bench.lua"
            script.write_text(WRK_SCRIPT)
            files = {}
            for kind, lines in work.items():
                files[kind] = tmp / f"{kind}.txt"
                files[kind].write_text("\n".join(lines) + "\n")
            settings = api_settings(url, tmp, deployment_path)
            api = start_api(settings, args.workers)
            phases: dict[str, list[Phase]] = {kind: [] for kind in work}
            try:
                for lines in work.values():
                    check_answers(api, lines)
                if args.keep_api:
                    print(f"API at {api.url}, pids {api.pids()}; lines in {tmp}; Enter to go on", flush=True)
                    input()
                print(f"API: {args.workers} workers, wrk with {args.connections} connections, {args.seconds:g} s per "
                      f"phase, {args.devices:,} devices ({'PostgreSQL' if server else 'SQLite'})")  # fmt: skip
                for run in range(args.runs):
                    print(f"run {run + 1}:")
                    for kind in work:
                        run_wrk(api, script, files[kind], max(1, args.seconds // 3), args.connections, 1000 + run)
                        phase = run_wrk(api, script, files[kind], args.seconds, args.connections, run)
                        phases[kind].append(phase)
                        peak.mib["wrk"] = round(max(peak.mib.get("wrk", 0.0), phase.wrk_peak_mib), 1)
                        report(kind, phase)
                api.sample_memory(peak)
            finally:
                api.stop()
        finally:
            if server is not None:
                server.stop()
    peak.sample("bench")
    backend = "PostgreSQL" if args.postgres else "SQLite"
    note = (f"{args.devices:,} devices, {backend}, uvicorn {args.workers} workers, wrk 1 thread "
            f"{args.connections} connections on the same 2 cores")  # fmt: skip
    command = f".venv/bin/python scripts/bench/api_load_bench.py --devices {args.devices} --seconds {args.seconds:g}"
    if args.postgres:
        command += " --postgres"
    memory = dict(peak.mib)
    figures = figures_for("lookup", "GET /v1/devices/{code}", phases["lookup"], command, memory, args.workers, note)
    figures += figures_for(
        "list", "GET /v1/devices (filters, pages)", phases["list"], command, memory, args.workers, note
    )
    print("\nmedians:")
    for figure in figures:
        print(f"  {figure.what:<55} {figure.value:10,.2f} {figure.unit:<6} target {figure.target:g} "
              f"{'met' if figure.met else 'NOT met'}")  # fmt: skip
    print("peak memory (MiB): " + ", ".join(f"{name} {mib:,.0f}" for name, mib in memory.items()))
    write_figures(args.json, figures)


if __name__ == "__main__":
    main()
