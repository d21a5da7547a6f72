#!/usr/bin/env python
"""Import benchmark: a CSV of devices (a few hundred bad rows) from upload to on-chain and indexed.

Starts its own anvil (automining) and the demo consortium, and the API as a child process (`dirchain serve`
with gateway, indexer and import runner inside, SQLite by default or `--postgres`), then:

1. writes `--rows` rows, every `--bad-every`-th bad (15 kinds, deterministic), and parses the file once in
   this process to show that the parser's memory does not grow with the file (RSS before and after);
2. uploads it with the CLI's streaming upload, follows the import to `done` (optionally SIGKILLs the API
   when `--kill-at` of the good rows are confirmed, and restarts it), then waits until the mirror holds
   every good row;
3. checks on the chain that every good row is registered exactly once and that the report rejects exactly
   the bad rows with their reasons, and prints rows/s, wall times, the API's peak RSS and gas per device;
4. with `--sweep 100,250,400`, first imports `--sweep-rows` rows at each batch size (calldata cap lifted) and
   prints rows/s and gas per device for each.

    .venv/bin/python scripts/bench/import_bench.py [--rows 100000] [--bad-every 300] [--kill-at 0.5]
        [--postgres] [--sweep 100,250,400 --sweep-rows 20000]
"""

# ruff: noqa: T201 - a plain script whose output is its figures
from __future__ import annotations

import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain_gateway.deployments import write_deployment  # noqa: E402
from chain_gateway.devnet import AnvilNode, SeededConsortium, seed_demo_consortium  # noqa: E402
from chain_gateway.keystore import DEV_SCRYPT_N, Keystore  # noqa: E402
from chain_gateway.settings import Settings  # noqa: E402
from registry_api.app import create_read_engine  # noqa: E402
from registry_api.auth import create_token_table, issue_token  # noqa: E402
from registry_api.cli_imports import report_lines, upload_file  # noqa: E402
from registry_api.client import ApiClient, ApiClientError, Credentials  # noqa: E402
from registry_api.imports.formats import inspect_file, iter_records  # noqa: E402
from tests.registry_api.import_support import (  # noqa: E402
    ApiProcess,
    Sample,
    registrations,
    sample_rows,
    wait_for,
    write_csv,
)

ORG = "BJ-PSB"
MB = 1024 * 1024


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def parse_only(path: Path) -> tuple[int, float, int]:
    """Rows, seconds and RSS growth (bytes) of one pass of the import parser over the file."""
    before = rss_bytes()
    started = time.perf_counter()
    layout = inspect_file(path, None)
    rows = sum(1 for _ in iter_records(path, layout, layout.start))
    return rows, time.perf_counter() - started, rss_bytes() - before


def mirrored(client: ApiClient) -> bool:
    """The importing org's roles are in the mirror (until then it holds no REGISTRAR role for the API)."""
    try:
        client.request("GET", f"/v1/members/{ORG}")
    except ApiClientError:
        return False
    return True


def job(client: ApiClient, import_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.request("GET", f"/v1/imports/{import_id}")
    return answer


def follow(
    api: ApiProcess, client: ApiClient, import_id: str, good: int, kill_at: float | None, timeout: float = 3_600
) -> dict[str, Any]:
    """Poll until done; SIGKILL the API once when `kill_at` of the good rows are confirmed, and restart it."""
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        current = job(client, import_id)
        rows = current["rows"]
        if current["status"] in ("done", "failed"):
            return current
        if kill_at is not None and rows["confirmed"] >= kill_at * good:
            print(f"  kill -9 of the API at {rows['confirmed']:,} rows confirmed ({current['status']})")
            api.kill()
            api.start()
            kill_at = None
        if time.monotonic() - shown > 5:
            shown = time.monotonic()
            print(f"  {current['status']}: {rows['read']:,} read, {rows['rejected']:,} rejected, "
                  f"{rows['confirmed']:,} confirmed; API RSS {api.memory_bytes('VmRSS') / MB:,.0f} MiB")  # fmt: skip
        if time.monotonic() > deadline:
            raise RuntimeError(f"import not done in {timeout} s: {current}")
        time.sleep(0.25)


def indexed(client: ApiClient) -> int:
    page: dict[str, Any] = client.request("GET", "/v1/devices", params={"owner": ORG, "limit": 1})
    return int(page["count"])


def gas_per_device(w3: Web3, credentials: Credentials, import_id: str) -> float:
    """Gas used by the import's confirmed batch transactions per device they registered."""
    with report_lines(credentials, import_id, "accepted") as lines:
        rows = list(csv.DictReader(lines))
    hashes = {r["tx_hash"] for r in rows if r["tx_hash"]}
    gas = sum(w3.eth.get_transaction_receipt(h)["gasUsed"] for h in hashes)  # type: ignore[arg-type]
    return gas / max(1, len(rows))


def run_import(
    api: ApiProcess, client: ApiClient, w3: Web3, path: Path, sample: Sample, kill_at: float | None
) -> dict[str, Any]:
    before = indexed(client)
    started = time.perf_counter()
    accepted = upload_file(client, path)
    uploaded = time.perf_counter() - started
    done = follow(api, client, accepted["import_id"], len(sample.good), kill_at)
    confirmed = time.perf_counter() - started
    wait_for(lambda: indexed(client) >= before + len(sample.good), 600, "the mirror did not catch up")
    in_mirror = time.perf_counter() - started
    return {"job": done, "uploaded": uploaded, "confirmed": confirmed, "indexed": in_mirror}


def check(w3: Web3, chain: SeededConsortium, credentials: Credentials, result: dict[str, Any], sample: Sample) -> None:
    done = result["job"]
    if done["status"] != "done":
        raise RuntimeError(f"import ended {done['status']}: {done['error']}")
    counts = registrations(w3, chain.deployment, sample.good)
    missing = sum(1 for c in sample.good if counts[c] == 0)
    twice = sum(1 for c in sample.good if counts[c] > 1)
    with report_lines(credentials, done["import_id"], "rejected") as lines:
        rejected = {int(r["row"]): (r["reason_code"], r["column"] or None) for r in csv.DictReader(lines)}
    print(f"  on-chain: {len(sample.good) - missing:,} good rows registered, {missing} missing, {twice} twice; "
          f"report: {len(rejected)} rejected, {'equal to' if rejected == sample.bad else 'DIFFERENT FROM'} "
          "the bad rows and their reasons")  # fmt: skip
    if missing or twice or rejected != sample.bad:
        raise RuntimeError("the import is not exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad-every", type=int, default=300, help="every n-th row is bad (300: 333 of 100,000)")
    parser.add_argument("--kill-at", type=float, default=None, help="SIGKILL the API at this fraction confirmed")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (a private server) instead of SQLite")
    parser.add_argument("--sweep", default="", help="batch sizes to compare first, e.g. 100,250,400")
    parser.add_argument("--sweep-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=None, help="import_batch_size (default: the setting's)")
    parser.add_argument("--inflight", type=int, default=None, help="import_max_inflight_batches")
    parser.add_argument("--gas-estimator", choices=["estimate", "access_list"], default=None, help="gas_estimator")
    parser.add_argument("--gas-limit", type=int, default=300_000_000, help="the node's block gas limit")
    parser.add_argument("--prune-history", type=int, default=None, help="block states anvil keeps in memory")
    options = parser.parse_args()

    node = AnvilNode(gas_limit=options.gas_limit, prune_history=options.prune_history)
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp_name, node:
        tmp = Path(tmp_name)
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        chain = seed_demo_consortium(w3)
        password = SecretStr("bench-only")
        keystore = Keystore(tmp / "keystore", password)
        keystore.add(chain.orgs[ORG].private_key, DEV_SCRYPT_N)
        write_deployment(chain.deployment, tmp / "deployment.json")
        postgres = None
        if options.postgres:
            from tests.support.postgres import PostgresServer

            postgres = PostgresServer().start()
            database_url = postgres.create_database("import_bench")
        else:
            database_url = f"sqlite:///{tmp / 'dirchain.db'}"
        settings = Settings(
            rpc_urls=[node.url],
            chain_id=node.chain_id,
            deployments_path=tmp / "deployment.json",
            database_url=database_url,
            keystore_dir=tmp / "keystore",
            keystore_password=password,
        )
        engine = create_read_engine(database_url)
        create_token_table(engine)
        token = issue_token(engine, ORG, chain.orgs[ORG].account, "bench")
        engine.dispose()
        overrides = {"import_poll_seconds": "0.05", "indexer_poll_seconds": "0.5"}
        if options.batch_size:
            overrides["import_batch_size"] = str(options.batch_size)
        if options.gas_estimator:
            overrides["gas_estimator"] = options.gas_estimator
        if options.inflight:
            overrides["import_max_inflight_batches"] = str(options.inflight)
        serial = 0
        try:
            for size in [int(s) for s in options.sweep.split(",") if s]:
                path = tmp / f"sweep-{size}.csv"
                sample = write_csv(path, sample_rows(options.sweep_rows, 10**9, seed=size, serial_base=serial))
                serial += options.sweep_rows
                sweep = {**overrides, "import_batch_size": str(size), "import_batch_max_bytes": "10000000"}
                with ApiProcess(settings, tmp, **sweep) as api:
                    api.start()
                    with ApiClient(Credentials(api.url, token, ORG), timeout=600) as client:
                        wait_for(lambda: mirrored(client), 60, "the mirror holds no roles")
                        result = run_import(api, client, w3, path, sample.unregistered(), None)
                        gas = gas_per_device(w3, Credentials(api.url, token, ORG), result["job"]["import_id"])
                print(f"batch {size}: {options.sweep_rows / result['confirmed']:,.0f} rows/s to confirmed, "
                      f"{gas:,.0f} gas per device")  # fmt: skip

            path = tmp / "devices.csv"
            started = time.perf_counter()
            sample = write_csv(path, sample_rows(options.rows, options.bad_every, seed=1, serial_base=serial))
            sample = sample.unregistered()
            size_mb = path.stat().st_size / MB
            print(f"file: {options.rows:,} rows ({len(sample.bad)} bad), {size_mb:,.1f} MiB, "
                  f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
            rows, seconds, growth = parse_only(path)
            print(f"parser alone: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), RSS growth "
                  f"{growth / MB:.1f} MiB for a {size_mb:.1f} MiB file")  # fmt: skip
            with ApiProcess(settings, tmp, **overrides) as api:
                api.start()
                with ApiClient(Credentials(api.url, token, ORG), timeout=600) as client:
                    wait_for(lambda: mirrored(client), 60, "the mirror holds no roles")
                    result = run_import(api, client, w3, path, sample, options.kill_at)
                    check(w3, chain, Credentials(api.url, token, ORG), result, sample)
                    gas = gas_per_device(w3, Credentials(api.url, token, ORG), result["job"]["import_id"])
                    peak = api.memory_bytes("VmHWM")
            done = result["job"]
            print(f"import {done['import_id']} ({'PostgreSQL' if postgres else 'SQLite'}, "
                  f"{done['batches']['total']} batches, {done['batches']['split']} split)")  # fmt: skip
            print(f"  upload {result['uploaded']:.1f} s; all confirmed {result['confirmed']:.1f} s; "
                  f"all indexed {result['indexed']:.1f} s")  # fmt: skip
            print(f"  {options.rows / result['confirmed']:,.0f} rows/s to confirmed, "
                  f"{options.rows / result['indexed']:,.0f} rows/s to indexed; {gas:,.0f} gas per device")  # fmt: skip
            print(f"  API peak RSS {peak / MB:,.0f} MiB"
                  + (" (since its restart)" if options.kill_at else ""))  # fmt: skip
            print(f"  bench process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
        finally:
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    main()
