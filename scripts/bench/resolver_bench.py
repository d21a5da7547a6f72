#!/usr/bin/env python
"""Resolver benchmark: decisions/s and latency (decision + ES256 token + receipt) on a mirror with many grants.

The mirror is synthetic, written straight into SQL (the chain is not what is measured): `--orgs` member orgs,
`--entries` catalog entries, `--grants` grants of random forms (10 % revoked, 10 % expired) with one or two
approvals each, 20 listed algorithms each entry admits some of, and the indexer checkpoint. The workload
draws (org, entry, action) from the grants (read_raw, read_desensitized and compute in equal parts; about
30 % of the decisions are permits, each signing a token and writing its usage receipt, the rest denies of
every kind) plus 10 % orgs without a grant. The tokens of the last run are checked offline at the end.
SQLite starts with its WAL checkpointed and PostgreSQL analysed, as the indexer's steady state leaves them.

(a) in process: `Resolver.resolve` called `--decisions` times from `--threads` threads (each count in
    turn), per backend (SQLite, PostgreSQL);
(b) `--http`: the API (uvicorn, one worker, anvil for the deployment) in a child process on the same
    database, driven over keep-alive HTTP by `--clients` threads of this process.

Prints decisions/s and p50/p99 latency per run and the median over `--runs` runs. Target (DESIGN.md):
>= 5,000 decisions/s, p99 <= 10 ms. Nothing is asserted.

    .venv/bin/python scripts/bench/resolver_bench.py [--grants 100000] [--decisions 20000] [--runs 3] [--http]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Figure, PeakMemory, add_json_option, median, write_figures  # noqa: E402

from chain_gateway.deployments import write_deployment  # noqa: E402
from chain_gateway.devnet import AnvilNode, free_port, seed_demo_consortium  # noqa: E402
from chain_gateway.rpc import JsonRpcClient  # noqa: E402
from indexer import models as mirror  # noqa: E402
from indexer.store import CHECKPOINT_NAME  # noqa: E402
from registry_api.app import create_read_engine  # noqa: E402
from registry_api.auth import Principal, issue_token  # noqa: E402
from registry_api.capability import SigningKeys, verify_capability  # noqa: E402
from registry_api.crud_sharing import ChainClock  # noqa: E402
from registry_api.receipts import create_receipt_tables  # noqa: E402
from registry_api.resolver import (  # noqa: E402
    ACTIONS,
    Resolver,
    ResolveRequest,
    create_resolver_engine,
    create_resolver_indexes,
)
from registry_api.zone.service import create_zone_tables  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

FORMS = ("raw", "desensitized", "result_only")
FORM_BITS = {"raw": 1, "desensitized": 2, "result_only": 4}
ALGORITHMS = 20
NOW = int(time.time())
DAY = 86_400  # seconds
BLOCK = (1_000_000, "0x" + "ab" * 32)  # the synthetic checkpoint


def _hash(*parts: object) -> str:
    return "0x" + uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts))).hex * 2


def _account(org_id: int) -> str:
    return "0x" + f"{org_id:040x}"


class FixedClock(ChainClock):
    """The chain's time at the synthetic checkpoint: now (there is no chain to ask)."""

    def block_time(self, session: Any, rpc: Any, block_hash: str) -> int | None:
        return NOW


def populate(engine: Engine, orgs: int, entries: int, grants: int, seed: int = 7) -> list[tuple[int, int]]:
    """Write the synthetic mirror; returns the (requester org, entry) pair of every grant."""
    SQLModel.metadata.create_all(engine)
    create_receipt_tables(engine)
    create_zone_tables(engine)
    create_resolver_indexes(engine)
    rng = random.Random(seed)
    block, block_hash = BLOCK
    common = {"block_number": 1, "tx_hash": _hash("tx")}
    schema = json.dumps({"fields": [{"name": "street", "type": "string"}, {"name": "count", "type": "integer"}]})
    owner_of = {e: rng.randint(1, orgs) for e in range(1, entries + 1)}
    rows: dict[Any, list[dict[str, Any]]] = {
        mirror.Member: [
            {"org_id": o, "code": f"ORG-{o:04d}", "name": f"org {o}", "kind": "department", "active": True, **common}
            for o in range(1, orgs + 1)
        ],
        mirror.Account: [{"address": _account(o), "org_id": o, **common} for o in range(1, orgs + 1)],
        mirror.CatalogEntry: [
            {
                "entry_id": e,
                "owner_org_id": owner_of[e],
                "title": f"entry {e}",
                "grade": 1 + e % 4,
                "classification": "城市体征/热线诉求",
                "share_condition": "conditional",
                "forms": json.dumps(FORMS),
                "forms_mask": 7,
                "schema": schema,
                "schema_hash": _hash("s", e),
                "device_codes": "[]",
                "upstream": "[]",
                "status": "published",
                "major": 1,
                "minor": 0,
                "version_hash": _hash("v", e),
                "created_block": 1,
                "created_tx_hash": _hash("c", e),
                "updated_block": 1,
                "updated_tx_hash": _hash("c", e),
            }  # fmt: skip
            for e in range(1, entries + 1)
        ],
        mirror.Algorithm: [
            {
                "algorithm_id": a,
                "name": f"algo-{a}",
                "version": "1.0.0",
                "code_hash": _hash("code", a),
                "outputs": "{}",
                "input_hash": _hash("in", a),
                "submitter_org_id": 1,
                "submitter": _account(1),
                "status": "listed",
                "submitted_block": 1,
                "submitted_tx_hash": _hash("a", a),
                "submitted_at": NOW,
                "updated_block": 1,
                "updated_tx_hash": _hash("a", a),
                "updated_at": NOW,
            }  # fmt: skip
            for a in range(1, ALGORITHMS + 1)
        ],
        mirror.EntryAlgorithm: [
            {
                "entry_id": e,
                "algorithm_id": a,
                "owner_org_id": owner_of[e],
                "admitted_by": _account(owner_of[e]),
                **common,
            }  # fmt: skip
            for e in range(1, entries + 1)
            for a in rng.sample(range(1, ALGORITHMS + 1), 3)
        ],
        mirror.IndexerCheckpoint: [{"name": CHECKPOINT_NAME, "block_number": block, "block_hash": block_hash}],
    }
    pairs: list[tuple[int, int]] = []
    requests: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    for grant_id in range(1, grants + 1):
        entry = rng.randint(1, entries)
        org = rng.randint(1, orgs)
        if org == owner_of[entry]:
            org = org % orgs + 1
        fate = rng.random()
        status = "revoked" if fate < 0.1 else "granted"
        expires = NOW - DAY if 0.1 <= fate < 0.2 else NOW + 90 * DAY
        requests.append(
            {
                "request_id": grant_id,
                "entry_id": entry,
                "requester_org_id": org,
                "owner_org_id": owner_of[entry],
                "requester": _account(org),
                "form": rng.choice(FORMS),
                "purpose": "研判",
                "duration": 90 * DAY,
                "approvals_needed": 1,
                "approvals": 1,
                "status": status,
                "requested_at": NOW - DAY,
                "granted_at": NOW - DAY,
                "expires_at": expires,
                "request_tx_hash": _hash("r", grant_id),
                "request_block": 2,
                "grant_tx_hash": _hash("g", grant_id),
                "grant_block": 3,
                "updated_block": 3,
                "updated_tx_hash": _hash("g", grant_id),
            }  # fmt: skip
        )
        for n in range(1 + grant_id % 2):
            approvals.append(
                {
                    "request_id": grant_id,
                    "approver": _account(owner_of[entry]),
                    "owner_org_id": owner_of[entry],
                    "decision": "approve",
                    "approvals_after": n + 1,
                    "nonce": str(n),
                    "reason": "",
                    "block_number": 3 + n,
                    "block_time": NOW - DAY,
                    "tx_hash": _hash("ap", grant_id, n),
                    "log_index": grant_id,
                }  # fmt: skip
            )
        pairs.append((org, entry))
    rows[mirror.SharingRequest] = requests
    rows[mirror.SharingApproval] = approvals
    with engine.begin() as conn:
        for model, values in rows.items():
            table = model.__table__  # type: ignore[attr-defined]
            for start in range(0, len(values), 5_000):
                conn.execute(insert(table), values[start : start + 5_000])
    if engine.dialect.name == "sqlite":  # the indexer's steady state: its commits keep the WAL short
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:  # and PostgreSQL's autovacuum would have analysed tables this size
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return pairs


def workload(pairs: list[tuple[int, int]], orgs: int, entries: int, n: int, seed: int) -> list[tuple[int, Any]]:
    """`n` (org id, request) pairs: 90 % from the grants, 10 % random orgs (mostly without a grant)."""
    rng = random.Random(seed)
    out: list[tuple[int, Any]] = []
    for _ in range(n):
        org, entry = rng.choice(pairs) if rng.random() < 0.9 else (rng.randint(1, orgs), rng.randint(1, entries))
        action = rng.choice(ACTIONS)
        algorithm = rng.randint(1, ALGORITHMS) if action == "compute" else None
        out.append((org, ResolveRequest(entry, action, algorithm, 0.1 if action == "compute" else None)))
    return out


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(label: str, latencies: list[float], elapsed: float, permits: int) -> float:
    rate = len(latencies) / elapsed
    print(
        f"  {label}: {len(latencies):,} decisions ({permits:,} permits) in {elapsed:.2f} s = {rate:,.0f}/s; "
        f"p50 {_percentile(latencies, 0.5) * 1e3:.2f} ms, p99 {_percentile(latencies, 0.99) * 1e3:.2f} ms"
    )
    return rate


def _in_threads(jobs: list[Any], threads: int, work: Callable[[list[Any]], tuple[list[float], int]]) -> Any:
    """Split `jobs` over `threads` threads running `work(share) -> (latencies, permits)`; returns
    (latencies, permits, wall seconds)."""
    latencies: list[float] = []
    permits = 0
    lock = threading.Lock()

    def run(share: list[Any]) -> None:
        nonlocal permits
        mine, granted = work(share)
        with lock:
            latencies.extend(mine)
            permits += granted

    workers = [threading.Thread(target=run, args=(jobs[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, permits, time.perf_counter() - started


def in_process(
    database_url: str, keys: SigningKeys, jobs: list[tuple[int, Any]], threads: int
) -> tuple[float, float, list[str]]:
    """Run the decisions from `threads` threads; returns (decisions/s, p99 seconds, the permits' tokens)."""
    rpc = JsonRpcClient(["http://127.0.0.1:9"])  # never asked: FixedClock answers the block time
    engine = create_resolver_engine(database_url)
    resolver = Resolver(engine, keys, rpc, issuer="dirchain-resolver", ttl_seconds=300, clock=FixedClock())
    principals = {
        org: Principal(f"ORG-{org:04d}", org, _account(org), frozenset(), True) for org in {o for o, _ in jobs}
    }
    for org, request in jobs[:200]:  # warm the pool, the statement cache and the policy cache
        resolver.resolve(principals[org], request)
    tokens: list[str] = []

    def work(share: list[tuple[int, Any]]) -> tuple[list[float], int]:
        latencies: list[float] = []
        for org, request in share:
            t0 = time.perf_counter()
            resolution = resolver.resolve(principals[org], request)
            latencies.append(time.perf_counter() - t0)
            if resolution.issued is not None:
                tokens.append(resolution.issued.token)  # list.append is atomic
        return latencies, 0

    latencies, _, elapsed = _in_threads(jobs, threads, work)
    rpc.close()
    engine.dispose()
    rate = _report(f"in process, {threads} thread{'s' if threads > 1 else ''}", latencies, elapsed, len(tokens))
    return rate, _percentile(latencies, 0.99), tokens


def over_http(url: str, tokens: dict[int, str], jobs: list[tuple[int, Any]], clients: int) -> tuple[float, float]:
    """Send the decisions over HTTP from `clients` threads with keep-alive; returns (decisions/s, p99 s)."""

    def work(share: list[tuple[int, Any]]) -> tuple[list[float], int]:
        latencies: list[float] = []
        granted = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            for org, request in share:
                body: dict[str, Any] = {"entry_id": request.entry_id, "action": request.action}
                if request.action == "compute":
                    body.update(algorithm_id=request.algorithm_id, epsilon=request.epsilon)
                t0 = time.perf_counter()
                answer = http.post("/v1/resolve", json=body, headers={"Authorization": f"Bearer {tokens[org]}"})
                latencies.append(time.perf_counter() - t0)
                if answer.status_code != 200:
                    raise RuntimeError(answer.text)
                granted += answer.json()["decision"] == "permit"
        return latencies, granted

    latencies, permits, elapsed = _in_threads(jobs, clients, work)
    rate = _report(f"HTTP, {clients} clients", latencies, elapsed, permits)
    return rate, _percentile(latencies, 0.99)


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the API process exited")
        try:
            if httpx.get(f"{url}/v1/resolver/jwks", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not start")


def serve_api(database_url: str, tmp: Path, node: AnvilNode, deployment_path: Path) -> tuple[str, Callable[[], None]]:
    """The API in a child process (uvicorn, one worker) on `database_url`, without gateway, indexer or anchoring."""
    port = free_port()
    env = {
        **os.environ,
        "DIRCHAIN_DATABASE_URL": database_url,
        "DIRCHAIN_RPC_URLS": json.dumps([node.url]),
        "DIRCHAIN_CHAIN_ID": "31337",
        "DIRCHAIN_DEPLOYMENTS_PATH": str(deployment_path),
        "DIRCHAIN_KEYSTORE_DIR": str(tmp / "keystore"),
        "DIRCHAIN_RUN_GATEWAY_IN_API": "false",
        "DIRCHAIN_RUN_INDEXER_IN_API": "false",
        "DIRCHAIN_RECEIPT_ANCHOR_INTERVAL_SECONDS": "0",
        "DIRCHAIN_CAPABILITY_KEY_PATH": str(tmp / "keys" / "capability.pem"),
        "DIRCHAIN_ZONE_MASKING_KEY_PATH": str(tmp / "keys" / "masking.key"),
    }
    command = [sys.executable, "-m", "uvicorn", "registry_api.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        process.terminate()
        process.wait(30)

    try:
        _wait_for(url, process)
    except Exception:
        stop()
        raise
    return url, stop


PG_BOTTLENECK = (
    "each SQL round trip through libpq costs 150-210 us here (a bare SELECT 1), and a permit needs two (the decision "
    "and its usage receipt) plus ~60 us of ES256 signing; grouping concurrent permits' receipts into one commit and "
    "running the resolver beside a local PostgreSQL over a Unix socket would move it"
)
SQLITE_BOTTLENECK = (
    "one Python thread: a decision is one SQL statement over the mirror through SQLAlchemy, and a permit (~30 % of "
    "the mix) one more for its usage receipt plus ~60 us of ES256 signing; the statements prepared once per shape on "
    "the DB-API connection (as the device reads now are), and one resolver process per core, would move it"
)
SQLITE_THREADS_BOTTLENECK = (
    "the decision is Python-bound (SQLAlchemy, token signing) and the GIL serialises threads, so a second thread "
    "adds contention, not throughput; a second process (uvicorn worker) would use the other core"
)


def decision_figures(
    backend: str, threads: int, rates: list[float], p99s: list[float], memory: PeakMemory
) -> list[Figure]:
    """The rate and p99 figures of one backend and thread count (targets: DESIGN.md)."""
    memory.sample("bench")
    command = ".venv/bin/python scripts/bench/resolver_bench.py"
    where = f"resolver decisions, {backend}, in process, {threads} thread(s)"
    if backend == "postgresql":
        bottleneck = PG_BOTTLENECK
    else:
        bottleneck = SQLITE_BOTTLENECK if threads == 1 else SQLITE_THREADS_BOTTLENECK
    p99_ms = [p * 1e3 for p in p99s]
    return [
        Figure(key=f"resolver.{backend}_{threads}t_decisions_per_s", what=where, value=median(rates),
               unit="decisions/s", runs=rates, command=command, target=5_000, peak_memory=dict(memory.mib),
               bottleneck=bottleneck),
        Figure(key=f"resolver.{backend}_{threads}t_p99_ms", what=f"{where}, p99 latency", value=median(p99_ms),
               unit="ms", runs=p99_ms, command=command, target=10, better="lower", peak_memory=dict(memory.mib),
               bottleneck=bottleneck),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--entries", type=int, default=5_000)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="in-process decision threads, comma-separated")
    parser.add_argument("--http", action="store_true", help="also measure through HTTP from this process")
    parser.add_argument("--clients", type=int, default=2, help="HTTP client threads")
    parser.add_argument("--skip-postgres", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    memory = PeakMemory()
    logging.disable(logging.INFO)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        keys = SigningKeys.load_or_create(tmp / "keys" / "capability.pem")
        backends: list[tuple[str, PostgresServer | None]] = [("sqlite", None)]
        if not args.skip_postgres:
            backends.append(("postgresql", PostgresServer().start()))
        node = AnvilNode().start() if args.http else None
        deployment_path = tmp / "deployment.json"
        if node is not None:
            from web3 import Web3

            write_deployment(seed_demo_consortium(Web3(Web3.HTTPProvider(node.url))).deployment, deployment_path)
        try:
            for name, server in backends:
                url = server.create_database("bench_" + uuid.uuid4().hex[:10]) if server else f"sqlite:///{tmp}/b.db"
                engine = create_read_engine(url)
                started = time.perf_counter()
                pairs = populate(engine, args.orgs, args.entries, args.grants)
                print(f"{name}: mirror of {args.grants:,} grants over {args.entries:,} entries and {args.orgs} orgs "
                      f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
                for threads in (int(t) for t in args.threads.split(",")):
                    rates, p99s = [], []
                    for run in range(args.runs):
                        jobs = workload(pairs, args.orgs, args.entries, args.decisions, seed=run)
                        rate, p99, tokens = in_process(url, keys, jobs, threads)
                        rates.append(rate)
                        p99s.append(p99)
                    jwks = keys.jwks()
                    for token in tokens:  # the data holder's offline check of every permit's token
                        verify_capability(token, jwks)
                    print(f"{name} in process, {threads} thread(s): median {statistics.median(rates):,.0f} "
                          f"decisions/s, p99 {statistics.median(p99s) * 1e3:.2f} ms over {args.runs} runs "
                          f"({len(tokens):,} tokens of the last run verified offline)")  # fmt: skip
                    figures += decision_figures(name, threads, rates, p99s, memory)
                if node is not None:
                    orgs = range(1, args.orgs + 1)
                    bearer = {o: issue_token(engine, f"ORG-{o:04d}", _account(o), "bench") for o in orgs}
                    api_url, stop = serve_api(url, tmp, node, deployment_path)
                    try:
                        rates, p99s = [], []
                        for run in range(args.runs):
                            jobs = workload(pairs, args.orgs, args.entries, args.decisions // 4, seed=100 + run)
                            rate, p99 = over_http(api_url, bearer, jobs, args.clients)
                            rates.append(rate)
                            p99s.append(p99)
                        print(f"{name} over HTTP: median {statistics.median(rates):,.0f} decisions/s, "
                              f"p99 {statistics.median(p99s) * 1e3:.2f} ms over {args.runs} runs")  # fmt: skip
                    finally:
                        stop()
                engine.dispose()
            write_figures(args.json, figures)
        finally:
            if node is not None:
                node.stop()
            for _, server in backends:
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
