"""Ranges fetched ahead of the one being applied: in a thread (short syncs) or in a forked process (catch-up).

Both yield the ranges `start..head` in chain order, each fetched by `fetch(start, previous)` (previous: the
last block of the range before, or the checkpoint), at most `ahead` ranges in advance, and re-raise in the
consumer whatever the fetching side raised. Both stop their fetching side before they return, whatever
happens to the consumer.

Why a process: fetching is Python work (reading and parsing the node's JSON, decoding logs) that holds the GIL
as much as the apply does, so in one process catch-up costs their sum. A forked child (it inherits the decoder
and the code already imported; a spawned one would spend seconds importing) fetches on the other core and
hands each range over a pipe (pickling a range costs a few percent of fetching it). The child only opens its
own RPC connection: it never touches the parent's database connections, and it ends with `os._exit` (no
finalizers), so the parent's sockets and files stay the parent's.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

from chain_gateway.errors import GatewayRPCError
from indexer.errors import IndexerFatalError, IndexerRetryableError
from indexer.store import BlockRef
from indexer.sync import FetchedRange

__all__ = ["Fetch", "fetch_ahead_in_process", "fetch_ahead_in_thread"]

Fetch = Callable[[int, BlockRef | None], FetchedRange]  # (first block, block before it) -> range
POLL_SECONDS = 0.1  # how often a blocked producer checks whether the consumer has stopped
JOIN_SECONDS = 5.0  # how long a stopped child may take to exit before it is terminated

_Item = FetchedRange | BaseException | None  # a range, the error that ended fetching, or the end


def _produce(fetch: Fetch, start: int, head: int, previous: BlockRef | None, put: Callable[[_Item], bool]) -> None:
    at = start
    try:
        while at <= head:
            fetched = fetch(at, previous)
            if not put(fetched):
                return
            previous, at = fetched.end_block, fetched.end + 1
        put(None)
    except BaseException as exc:  # handed to the consumer, which raises it
        put(exc)


def fetch_ahead_in_thread(
    fetch: Fetch, start: int, head: int, previous: BlockRef | None, ahead: int
) -> Generator[FetchedRange, None, None]:
    """Ranges `start..head` fetched by a background thread up to `ahead` ranges ahead.

    While a range is applied (SQL, mostly outside the GIL) the next one is fetched (the node works, the
    socket waits), so a short sync takes about max(fetch, apply) of its I/O.
    """
    ready: queue.Queue[_Item] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: _Item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    worker = threading.Thread(target=_produce, args=(fetch, start, head, previous, put), name="indexer-fetch")
    worker.daemon = True
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else an error of the same retry class that does (for the pipe)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, GatewayRPCError):
            return GatewayRPCError(message, retryable=exc.retryable, code=exc.code)
        return IndexerFatalError(message)


def _child(fetch: Fetch, start: int, head: int, previous: BlockRef | None, out: Any, stop: Any, parent: int) -> None:
    def put(item: _Item) -> bool:
        if isinstance(item, BaseException):
            item = _portable(item)
        while not stop.is_set() and os.getppid() == parent:  # a killed parent leaves no orphan behind
            try:
                out.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    _produce(fetch, start, head, previous, put)
    out.close()
    out.join_thread()  # everything put is in the pipe before the child exits


def fetch_ahead_in_process(
    fetch: Fetch, start: int, head: int, previous: BlockRef | None, ahead: int
) -> Generator[FetchedRange, None, None]:
    """Ranges `start..head` fetched by a forked child process up to `ahead` ranges ahead (Linux: fork).

    `fetch` runs in the child: it must open its own connections (see the module docstring).
    """
    context = multiprocessing.get_context("fork")
    ready = context.Queue(maxsize=ahead)
    stop = context.Event()
    child = context.Process(
        target=_child, args=(fetch, start, head, previous, ready, stop, os.getpid()), name="indexer-fetch", daemon=True
    )
    child.start()
    try:
        while True:
            try:
                item = ready.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not child.is_alive() and ready.empty():
                    raise IndexerRetryableError(f"the fetching process ended with code {child.exitcode}") from None
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        child.join(JOIN_SECONDS)
        if child.is_alive():
            child.terminate()
            child.join()
        ready.close()
        ready.cancel_join_thread()
