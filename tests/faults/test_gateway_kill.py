"""The gateway process killed (SIGKILL) at random moments of a 10,000-device import and restarted each time:
every device is registered on-chain exactly once, the import reports every good row confirmed, and the mirror
holds exactly those devices.

The API (`dirchain serve`, import runner and indexer inside) and the gateway (`python -m chain_gateway worker`) are
separate processes over one PostgreSQL database, as in production and in the city benchmark; only the gateway
is killed. The chain is the judge of "once": DeviceRegistered logs counted by code with eth_getLogs.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from chain_gateway.devnet import SeededConsortium
from chain_gateway.settings import Settings
from tests.faults.import_faults import (
    GOOD_DEVICES,
    ImportUnderTest,
    assert_every_device_once,
    log_events,
    mirrored_codes,
)
from tests.registry_api.import_support import ApiProcess, ServiceProcess, wait_for

log = logging.getLogger(__name__)

KILLS = 5
SERIAL_BASE = 100_000
PROGRESS_SECONDS = 120.0  # deadline for a restarted gateway to confirm rows again


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the production profile's database
def test_gateway_killed_at_random_points_during_a_10000_device_import_registers_each_device_once(
    service_settings: Settings, chain: SeededConsortium, w3: Web3, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    started = time.monotonic()
    # batches of 200, four in the outbox at once: 50 transactions, so the kills land between many steps; gas sized by
    # one eth_createAccessList (as the city benchmark does) rather than eth_estimateGas's binary search
    api = ApiProcess(
        service_settings,
        tmp_path,
        run_gateway_in_api="false",
        import_batch_size="200",
        import_max_inflight_batches="4",
        gas_estimator="access_list",
        log_json="true",
    )
    gateway = ServiceProcess(
        api, "gateway", tmp_path / "gateway.log", [sys.executable, "-m", "chain_gateway", "worker"]
    )
    upload = ImportUnderTest.prepared(service_settings, chain, tmp_path, api.url, SERIAL_BASE)
    # a kill once the import has confirmed past each of these row counts, a random moment later; in the first third,
    # as each restarted gateway must confirm rows before its kill (up to ~1,200 here: its backlog, then the delay)
    thresholds = sorted(rng.sample(range(GOOD_DEVICES // 50, GOOD_DEVICES // 3), KILLS))
    kills: list[tuple[int, float]] = []  # (rows confirmed at the kill, delay before it)
    with api:
        try:
            gateway.start()
            api.start()
            upload.upload()
            confirmed = 0
            for threshold in thresholds:
                # the restarted gateway must have moved the import on before it is killed again
                floor = max(threshold, confirmed + 1)
                wait_for(lambda f=floor: upload.confirmed() >= f, PROGRESS_SECONDS, f"seed {seed}: no progress")
                delay = rng.uniform(0.0, 0.5)
                time.sleep(delay)
                gateway.kill()
                confirmed = upload.confirmed()
                kills.append((confirmed, delay))
                assert confirmed < GOOD_DEVICES, f"seed {seed}: the import ended before kill {len(kills)}"
                gateway.start()
            last_kill = time.monotonic()
            job = upload.finished()
            after_last_kill = time.monotonic() - last_kill
            context = f"seed {seed}, kills at {kills}"
            assert_every_device_once(job, upload, w3, chain, context)
            # the mirror (the indexer in the API process) ends with exactly the imported devices
            wait_for(
                lambda: mirrored_codes(service_settings.database_url) >= set(upload.sample.good),
                60,
                f"{context}: the mirror did not catch up",
            )
            assert mirrored_codes(service_settings.database_url) == set(upload.sample.good), context
        finally:
            gateway.stop()
    resent = sum(int(event.get("count", 0)) for event in log_events(gateway.log, "broadcasting again"))
    log.warning(
        "gateway kill test: %d devices, %d kills (seed %d) at rows confirmed and delays %s; %.1f s from the last "
        "kill to done; %d transactions broadcast again; %d batches; 0 lost, 0 twice; %.1f s in all",
        GOOD_DEVICES,
        len(kills),
        seed,
        [(rows, round(delay, 2)) for rows, delay in kills],
        after_last_kill,
        resent,
        job["batches"]["total"],
        time.monotonic() - started,
    )
