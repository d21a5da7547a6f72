"""Several API processes starting at once on one fresh database (uvicorn --workers): all of them come up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import inspect

from chain_gateway.settings import Settings
from registry_api.app import create_app
from registry_api.startup_lock import startup_lock

INSTANCES = 3


def test_apps_starting_together_on_a_fresh_database_all_serve(api_settings: Settings) -> None:
    """Each instance creates the tables in its lifespan, as each uvicorn worker does; none fails on the others'."""
    barrier = threading.Barrier(INSTANCES)

    def start() -> int:
        app = create_app(api_settings)
        barrier.wait()  # every lifespan starts at the same moment
        with TestClient(app) as client:
            return client.get("/v1/devices", headers={"Authorization": "Bearer dct_unknown"}).status_code

    with ThreadPoolExecutor(INSTANCES) as pool:
        statuses = list(pool.map(lambda _: start(), range(INSTANCES)))
    assert statuses == [401] * INSTANCES  # up, reading the token table that one of them made
    app = create_app(api_settings)
    with TestClient(app):
        tables = set(inspect(app.state.engine).get_table_names())
    assert {"devices", "api_tokens", "usage_receipts", "operations"} <= tables


def test_startup_lock_lets_one_process_in_at_a_time(database_url: str) -> None:
    inside: list[int] = []
    most = [0]
    guard = threading.Lock()

    def hold(i: int) -> None:
        with startup_lock(database_url):
            with guard:
                inside.append(i)
                most[0] = max(most[0], len(inside))
            threading.Event().wait(0.05)
            with guard:
                inside.remove(i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(hold, range(4)))
    assert most[0] == 1
