"""The FastAPI application: `create_app(settings)` wires the routers, errors, metrics and, in its lifespan, the
database engines, deployment, keystore, gateway and indexer; optionally the indexer runs in-process on an
APScheduler BackgroundScheduler and the gateway in its own worker thread (its loop sleeps only when idle).

Reads are SQL over the indexer's mirror; writes go to the gateway's durable outbox and answer 202 with an
operation. With `run_gateway_in_api` / `run_indexer_in_api` off (tests, or separate `dirchain gateway run` and
`dirchain indexer run` processes) nothing moves an operation along inside the API process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from chain_gateway.deployments import load_deployment
from chain_gateway.errors import GatewayConfigError, GatewayRPCError
from chain_gateway.gateway import Gateway
from chain_gateway.keystore import Keystore
from chain_gateway.outbox import create_outbox_engine
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings, get_settings
from indexer.service import Indexer, create_mirror_engine, indexer_options
from registry_api.anchoring import ReceiptAnchorer
from registry_api.auth import create_token_table
from registry_api.capability import SigningKeys, load_secret
from registry_api.console.mount import mount_console
from registry_api.crud import create_device_read_indexes
from registry_api.crud_sharing import ChainClock
from registry_api.errors import install_error_handlers
from registry_api.imports import ImportRunner
from registry_api.json_depth import JsonDepthLimit
from registry_api.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from registry_api.receipts import create_receipt_tables
from registry_api.resolver import Resolver, create_resolver_engine, create_resolver_indexes
from registry_api.routers import (
    algorithms,
    audit,
    audit_approvals,
    audit_code,
    audit_records,
    audit_report,
    carriers,
    catalog,
    code_rules,
    devices,
    districts,
    governance,
    health,
    imports,
    map,
    me,
    members,
    operations,
    resolver,
    reviews,
    sharing,
    stats,
    zone,
)
from registry_api.schema import check_at_start
from registry_api.search import create_search_tables
from registry_api.startup_lock import startup_lock
from registry_api.state import AppState
from registry_api.stats import create_assessment_index
from registry_api.url_guard import NulInUrl
from registry_api.zone.service import ZoneService, create_zone_tables

__all__ = [
    "API_VERSION",
    "ZoneParts",
    "create_app",
    "create_read_engine",
    "start_imports",
    "start_services",
    "start_zone",
    "stop_services",
]

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
HEALTH_RPC_TIMEOUT_SECONDS = 2.0
GATEWAY_RESTART_SECONDS = 5.0
GATEWAY_JOIN_SECONDS = 30.0
POSTGRES_POOL = {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}
SQLITE_MMAP_BYTES = 4 * 1024**3  # address space, not memory: the OS pages the mirror in and shares it

DESCRIPTION = """
The directory chain (目录链) of the city's sensing devices: a permissioned EVM ledger with a SQL mirror.

* **Auth**: `Authorization: Bearer <token>`; a token belongs to one member org and signs its writes with that
  org's own account. Writes need the on-chain **REGISTRAR** role.
* **Writes** answer `202` with an operation (`GET /v1/operations/{id}`: queued, submitted, mined, confirmed,
  failed) and honour an `Idempotency-Key` header.
* **Reads** come from the mirror of the chain (`block_number`, `tx_hash` on every record).
* **Errors** are `{"code", "message", "field"}` with a stable code; contract refusals add
  `contract_error: {name, args}`.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "devices", "description": "Sensing front ends: register, find, update, life cycle, inspections."},
    {
        "name": "imports",
        "description": "Bulk import of devices from CSV or NDJSON: streamed, validated per row, registered in "
        "batches, resumable, with a per-row report.",
    },
    {"name": "catalog", "description": "The sensing-data catalog: entries, versions, lineage, full-text search."},
    {
        "name": "sharing",
        "description": "Sharing requests, the approvers' EIP-712 signed decisions (relayed, never made by the API), "
        "and grants.",
    },
    {
        "name": "algorithms",
        "description": "The algorithm center: submit, evaluate (REVIEWER), list and delist algorithms; the "
        "listed algorithms each catalog entry's owner admits for the data zone.",
    },
    {
        "name": "reviews",
        "description": "Joint review (联审) of projects of planned front ends by the lead org of their domain, with "
        "the existing devices and spare carriers around each planned one; approval puts them on the ledger.",
    },
    {
        "name": "carriers",
        "description": "Carriers (感知载体): poles and mounts with slots and ports, and requests to reuse them.",
    },
    {
        "name": "resolver",
        "description": "Permit or deny a read or a computation, with proof and an ES256 capability token that data "
        "holders verify offline against the published keys.",
    },
    {
        "name": "data zone",
        "description": "Usable but invisible: admitted algorithms run where the data is and only results under "
        "disclosure control leave; rows behind a capability token; usage receipts anchored on-chain.",
    },
    {"name": "operations", "description": "Writes on their way to the chain."},
    {"name": "members", "description": "Member organisations, their accounts and roles."},
    {"name": "code rules", "description": "How each device type's codes are formed."},
    {
        "name": "stats",
        "description": "Assessment indicators (考核评估) per district and department, and the monthly report.",
    },
    {
        "name": "audit",
        "description": "Check the service against the chain: the mirror rebuilt and compared block by block, each "
        "record's on-chain trail and storage proof, approvals' signers and roles, the deployed code, a report.",
    },
    {"name": "health", "description": "Liveness of the database, the chain, the indexer and the outbox."},
]


def create_read_engine(database_url: str) -> Engine:
    """The engine for the mirror and the API's tables: SQLite in WAL across threads, PostgreSQL pooled."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_mirror_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _read_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # reads map the file instead of copying pages into each connection's cache (one copy per process)
            dbapi_connection.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")

        return engine
    return create_mirror_engine(database_url, **POSTGRES_POOL)


def _run_gateway(gateway: Gateway, stop: threading.Event) -> None:
    """The gateway's own loop (it backs off on RPC errors); restarted after anything that escapes it."""
    while not stop.is_set():
        try:
            gateway.run(stop)
        except Exception as exc:  # a worker thread must not die silently: log and start again
            log.error("gateway worker failed, restarting in %.0f s: %s", GATEWAY_RESTART_SECONDS, exc)
            stop.wait(GATEWAY_RESTART_SECONDS)


def start_services(settings: Settings) -> AppState:
    """Engines, tables, deployment, keystore, gateway and indexer, and the scheduler if they run in-process."""
    rpcs = [JsonRpcClient(settings.rpc_urls) for _ in range(2)]
    health_rpc = JsonRpcClient(settings.rpc_urls, timeout=HEALTH_RPC_TIMEOUT_SECONDS)
    rpcs.append(health_rpc)
    try:
        try:
            chain_id = settings.chain_id or rpcs[0].chain_id()
        except GatewayRPCError as exc:
            raise GatewayConfigError(
                f"cannot reach the chain at {settings.rpc_url} to learn its id; start the node or set DIRCHAIN_CHAIN_ID"
            ) from exc
        deployment = load_deployment(settings.deployments_file(chain_id))
    except Exception:
        for rpc in rpcs:
            rpc.close()
        raise
    engine = create_read_engine(settings.database_url)
    outbox_engine = create_outbox_engine(
        settings.database_url, **({} if settings.database_url.startswith("sqlite") else {"pool_pre_ping": True})
    )
    indexer = Indexer(engine, rpcs[1], deployment, **indexer_options(settings))
    gateway = Gateway(
        settings, outbox_engine, deployment, Keystore(settings.keystore_dir, settings.keystore_password), rpcs[0]
    )
    state = AppState(
        settings=settings,
        engine=engine,
        outbox_engine=outbox_engine,
        deployment=deployment,
        gateway=gateway,
        indexer=indexer,
        health_rpc=health_rpc,
        rpcs=rpcs,
    )
    try:
        indexer.create_tables()
        gateway.create_tables()
        create_token_table(engine)
        create_search_tables(engine)
        create_assessment_index(engine)
        create_device_read_indexes(engine)
        if settings.run_indexer_in_api:  # APScheduler: one sync at a time, missed runs coalesced
            scheduler = BackgroundScheduler(timezone=UTC)
            indexer.schedule(scheduler)
            scheduler.start()
            state.scheduler = scheduler
            state.indexer_running = True
        if settings.run_gateway_in_api:  # its own loop in a thread: it sleeps only when the outbox is idle
            state.gateway_thread = threading.Thread(
                target=_run_gateway, args=(gateway, state.stop), name="dirchain-gateway", daemon=True
            )
            state.gateway_thread.start()
            state.gateway_running = True
    except Exception:
        stop_services(state)
        raise
    log.info("registry API ready: chain %d, database %s", chain_id, engine.url.render_as_string(hide_password=True))
    return state


def stop_services(state: AppState) -> None:
    """Stop the gateway thread and the scheduler (waiting for running work), close RPC clients, dispose engines."""
    state.stop.set()
    if state.gateway_thread is not None:
        state.gateway_thread.join(GATEWAY_JOIN_SECONDS)
        state.gateway_thread = None
    if state.scheduler is not None:
        state.scheduler.shutdown(wait=True)
        state.scheduler = None
    state.indexer.close()  # lets its leader lock go at once: a standby indexer takes over
    for rpc in state.rpcs:
        rpc.close()
    state.engine.dispose()
    state.outbox_engine.dispose()


@dataclass(frozen=True)
class ZoneParts:
    """The resolver, the data zone and the receipt anchoring job of a running API."""

    keys: SigningKeys
    clock: ChainClock
    resolver: Resolver
    zone: ZoneService
    anchorer: ReceiptAnchorer


def start_zone(state: AppState) -> ZoneParts:
    """Signing keys (made on first start), the receipt and zone tables, and the anchoring job on the scheduler
    (started here if the indexer does not run in-process) unless `receipt_anchor_interval_seconds` is 0."""
    settings = state.settings
    keys = SigningKeys.load_or_create(settings.capability_key_path)
    create_receipt_tables(state.engine)
    create_zone_tables(state.engine)
    create_resolver_indexes(state.engine)
    clock = ChainClock()
    resolver_ = Resolver(
        create_resolver_engine(settings.database_url),
        keys,
        state.health_rpc,
        issuer=settings.capability_issuer,
        ttl_seconds=settings.capability_ttl_seconds,
        clock=clock,
    )
    zone_ = ZoneService(state.engine, resolver_, load_secret(settings.zone_masking_key_path))
    anchorer = ReceiptAnchorer(
        state.engine, state.gateway, settings.zone_operator_org, settings.receipt_anchor_batch_max
    )
    if settings.receipt_anchor_interval_seconds > 0:
        if state.scheduler is None:
            state.scheduler = BackgroundScheduler(timezone=UTC)
            state.scheduler.start()
        anchorer.schedule(state.scheduler, settings.receipt_anchor_interval_seconds)
    return ZoneParts(keys, clock, resolver_, zone_, anchorer)


def start_imports(state: AppState) -> ImportRunner:
    """The import runner with its own engine (its thread never holds a connection of the routes' pool) and the
    API's gateway: its tables, and its thread unless `run_imports_in_api` is off (then `run_once` moves
    imports along, as tests do)."""
    engine = create_read_engine(state.settings.database_url)
    runner = ImportRunner(engine, state.gateway, state.settings, owns_engine=True)
    runner.create_tables()
    if state.settings.run_imports_in_api:
        runner.start()
    return runner


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    with startup_lock(settings.database_url):  # uvicorn's workers start together: one creates tables at a time
        check_at_start(settings)  # DIRCHAIN_SCHEMA_CHECK: refuse a database behind the migrations
        state = start_services(settings)
        try:
            parts = start_zone(state)
            imports_runner = start_imports(state)
        except Exception:
            stop_services(state)
            raise
    app.state.services = state
    app.state.engine = state.engine
    app.state.gateway = state.gateway
    app.state.indexer = state.indexer
    app.state.chain_clock = parts.clock  # shared with the sharing routes: one block-time lookup per block
    app.state.resolver = parts.resolver
    app.state.zone = parts.zone
    app.state.anchorer = parts.anchorer
    app.state.imports = imports_runner
    try:
        yield
    finally:
        app.state.imports.close()
        stop_services(state)
        parts.resolver.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (the process-wide `get_settings()` when None); services start in the lifespan."""
    app = FastAPI(
        title="Directory chain registry API",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings or get_settings()
    metrics = Metrics(app)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(JsonDepthLimit)  # a body nested ~100k deep would crash the process in json.loads
    app.add_middleware(NulInUrl)  # PostgreSQL cannot compare text with NUL: such a filter was a 500
    install_error_handlers(app)
    for router in (
        devices.router,
        imports.router,
        catalog.router,
        sharing.router,
        sharing.grants_router,
        algorithms.router,
        algorithms.entry_router,
        reviews.router,
        carriers.router,
        carriers.requests_router,
        operations.router,
        me.router,
        map.router,
        members.router,
        code_rules.router,
        districts.router,
        governance.router,
        stats.router,
        resolver.router,
        zone.router,
        audit.router,
        audit_records.router,
        audit_approvals.router,
        audit_code.router,
        audit_report.router,
        health.router,
    ):
        app.include_router(router)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    mount_console(app)
    return app
