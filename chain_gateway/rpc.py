"""A small JSON-RPC client over httpx: single and batched calls, several endpoints with failover.

Failover has two triggers: a transport failure or a 429/5xx answer moves a call to the next endpoint at once;
`prefer_fresh` (called every few seconds by the gateway and the indexer) moves to the first endpoint, in the
configured order, whose head is within `max_lag` blocks of the highest head: a node cut off from its peers
still answers, but its chain has stopped, and writes sent to it would wait there until it rejoins.

This is the one boundary where transport and node errors become `GatewayRPCError` (retryable or not);
revert data in an error answer becomes `ContractRevert` via `chain_gateway.revert`.
Code outside tests talks plain JSON-RPC only, so it runs on anvil, geth, Besu or any consortium node.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from chain_gateway.errors import GatewayRPCError

__all__ = ["EndpointWatch", "JsonRpcClient", "RpcErrorAnswer"]

RETRYABLE_HTTP = {429, 500, 502, 503, 504}
HEAD_PROBE_TIMEOUT_SECONDS = 2.0


class RpcErrorAnswer(GatewayRPCError):
    """The node answered a call with a JSON-RPC error object; `data` carries revert data when there is any."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        message = str(error.get("message", "error"))
        super().__init__(f"{method}: {message}", retryable=False, code=error.get("code"))
        self.method = method
        self.message = message
        self.data = error.get("data")


class JsonRpcClient:
    """JSON-RPC over HTTP; on a transport failure it moves to the next endpoint in `urls`."""

    def __init__(self, urls: Sequence[str], timeout: float = 10.0) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self._urls = list(urls)
        self._active = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=20))

    @property
    def url(self) -> str:
        return self._urls[self._active]

    def close(self) -> None:
        self._client.close()

    def prefer_fresh(self, max_lag: int) -> str | None:
        """Switch to the first endpoint whose head is within `max_lag` blocks of the highest one; return the new
        URL when the active endpoint changed (None when it stays, or when no endpoint answered)."""
        if len(self._urls) < 2:
            return None
        heads: dict[int, int] = {}
        for i, url in enumerate(self._urls):
            body = {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
            try:
                answer = self._client.post(url, json=body, timeout=HEAD_PROBE_TIMEOUT_SECONDS).json()
                heads[i] = int(answer["result"], 16)
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                continue  # down or answering nonsense: not a candidate
        if not heads:
            return None
        best = max(heads.values())
        chosen = min(i for i, head in heads.items() if head >= best - max_lag)
        with self._lock:
            if chosen == self._active:
                return None
            self._active = chosen
        return self._urls[chosen]

    def __enter__(self) -> JsonRpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, payload: Any) -> Any:
        last: Exception | None = None
        for attempt in range(len(self._urls)):
            url = self._urls[(self._active + attempt) % len(self._urls)]
            try:
                response = self._client.post(url, json=payload)
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code in RETRYABLE_HTTP:
                last = GatewayRPCError(f"{url} answered HTTP {response.status_code}", retryable=True)
                continue
            if response.status_code != 200:
                raise GatewayRPCError(f"{url} answered HTTP {response.status_code}", retryable=False)
            try:
                answer = response.json()
            except ValueError:  # a node shutting down (geth) may answer 200 with an empty or cut body: as if down
                last = GatewayRPCError(f"{url} answered HTTP 200 without JSON ({len(response.content)} bytes)")
                continue
            with self._lock:
                self._active = (self._active + attempt) % len(self._urls)
            return answer
        raise GatewayRPCError(f"no RPC endpoint answered: {last}", retryable=True) from last

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; raises `RpcErrorAnswer` if the node answers with an error object."""
        answer = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        if "error" in answer:
            raise RpcErrorAnswer(method, answer["error"])
        return answer["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; each result is the value or an `RpcErrorAnswer` (not raised)."""
        if not calls:
            return []
        first = next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": list(params)}
            for i, (method, params) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        answers = self._post(payload)
        if not isinstance(answers, list):  # some nodes answer a whole failed batch with one error object
            raise RpcErrorAnswer("batch", answers.get("error", {"message": "batch refused"}))
        by_id = {a.get("id"): a for a in answers}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            answer = by_id.get(first + i, {"error": {"message": "missing answer"}})
            results.append(RpcErrorAnswer(method, answer["error"]) if "error" in answer else answer["result"])
        return results

    # -------------------------------------------------------------- common calls

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def get_block(self, number: int | str, full: bool = False) -> dict[str, Any] | None:
        tag = hex(number) if isinstance(number, int) else number
        block: dict[str, Any] | None = self.call("eth_getBlockByNumber", [tag, full])
        return block

    def get_logs(self, addresses: Sequence[str], from_block: int, to_block: int) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = self.call(
            "eth_getLogs", [{"address": list(addresses), "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        )
        return logs


class EndpointWatch:
    """Calls `rpc.prefer_fresh(max_lag)` at most every `every_seconds`; the gateway and the indexer each keep one."""

    def __init__(self, rpc: JsonRpcClient, max_lag: int, every_seconds: float) -> None:
        self.rpc = rpc
        self.max_lag = max_lag
        self.every_seconds = every_seconds
        self._checked_at = time.monotonic()

    def check(self) -> str | None:
        """The URL moved to, if this check moved the client (None otherwise, and between checks)."""
        now = time.monotonic()
        if now - self._checked_at < self.every_seconds:
            return None
        self._checked_at = now
        return self.rpc.prefer_fresh(self.max_lag)
