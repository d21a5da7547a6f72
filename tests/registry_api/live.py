"""A live API for tests that need one: uvicorn in a thread, gateway and indexer scheduled in it, blocks mined."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from web3 import Web3

from chain_gateway.devnet import free_port
from chain_gateway.settings import Settings
from registry_api.app import create_app

__all__ = ["BLOCK_SECONDS", "blocks", "scheduled", "serve", "wait_until"]

BLOCK_SECONDS = 0.2


@contextmanager
def blocks(w3: Web3, interval: float = BLOCK_SECONDS) -> Iterator[None]:
    """Mine a block every `interval` seconds (automining makes blocks only for transactions; confirmations need
    blocks on top, as a real chain makes them)."""
    stop = threading.Event()

    def mine() -> None:
        while not stop.wait(interval):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    thread = threading.Thread(target=mine, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def scheduled(settings: Settings) -> Settings:
    """`settings` with gateway and indexer running inside the API, polling fast."""
    return settings.model_copy(
        update={"run_gateway_in_api": True, "run_indexer_in_api": True, "gateway_poll_seconds": 0.2,
                "indexer_poll_seconds": 0.2}
    )  # fmt: skip


def wait_until(fetch: Any, done: Any, timeout: float = 30.0) -> Any:
    """fetch() again every 0.1 s until done(value); fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last: {value}"
        time.sleep(0.1)


@contextmanager
def serve(settings: Settings) -> Iterator[tuple[str, Any]]:
    """The app on a real uvicorn server in a thread; yields (base URL, app)."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, bool)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
