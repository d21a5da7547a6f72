"""Prometheus metrics: request counts and latency per route, gateway queue depth, indexer checkpoint and lag.

Each app gets its own `CollectorRegistry` (several apps in one process, as in the tests, must not clash).
The queue and lag gauges are read when /metrics is scraped, not kept up to date on every request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware", "metrics_endpoint"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds


class _StateCollector(Collector):
    """Gauges read from the app state at scrape time."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = getattr(self._app.state, "services", None)
        if state is None:
            return
        queue = GaugeMetricFamily(
            "dirchain_gateway_queue_depth", "operations not yet confirmed or failed", labels=["status"]
        )
        checkpoint = GaugeMetricFamily("dirchain_indexer_checkpoint_block", "last block indexed into the mirror")
        head = GaugeMetricFamily("dirchain_chain_head_block", "chain head seen by the indexer")
        lag = GaugeMetricFamily("dirchain_indexer_lag_blocks", "chain head minus last indexed block")
        try:
            for status, count in state.queue_by_status().items():
                queue.add_metric([status], count)
            cp = state.indexer.store.checkpoint()
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            return
        yield queue
        if cp is not None:
            seen = state.indexer.head if state.indexer.head is not None else cp.chain_head
            checkpoint.add_metric([], cp.block_number)
            yield checkpoint
            if seen is not None:
                head.add_metric([], seen)
                lag.add_metric([], max(0, seen - cp.block_number))
                yield head
                yield lag


class Metrics:
    """The registry and instruments of one app."""

    def __init__(self, app: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dirchain_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dirchain_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(app))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead) that times every HTTP request.

    The labelled counter and histogram of each (method, route, status) are looked up once and kept: `labels()`
    checks and locks on every call, a cost the hot reads would pay twice per request.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            counter = self._counters.get((method, template, status))
            if counter is None:
                counter = self._counters[method, template, status] = self.metrics.requests.labels(
                    method, template, str(status)
                )
            timer = self._timers.get((method, template))
            if timer is None:
                timer = self._timers[method, template] = self.metrics.latency.labels(method, template)
            counter.inc()
            timer.observe(time.perf_counter() - started)


def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this app's registry (sync: the gauges read SQL, so it runs in the threadpool)."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
