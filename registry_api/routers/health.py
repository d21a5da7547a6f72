"""/healthz: database, chain head, last indexed block and lag, outbox queue depth (503 when DB or chain is down)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from registry_api.schemas.health import ChainHealth, DatabaseHealth, Health, IndexerHealth, OutboxHealth
from registry_api.state import AppState

__all__ = ["MAX_HEALTHY_LAG", "router"]

router = APIRouter(tags=["health"])

MAX_HEALTHY_LAG = 10  # blocks behind the head before the mirror is reported degraded


def health_report(state: AppState) -> Health:
    """Probe the database and the chain; read the indexer checkpoint and the outbox from SQL."""
    database = DatabaseHealth(ok=True)
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "down" here, the reason goes in the report
        database = DatabaseHealth(ok=False, error=type(exc).__name__)
    chain = ChainHealth(ok=True, chain_id=state.deployment["chain_id"])
    try:
        chain.head = state.health_rpc.block_number()
    except Exception as exc:
        chain = ChainHealth(ok=False, chain_id=state.deployment["chain_id"], error=type(exc).__name__)
    indexer = IndexerHealth(last_indexed_block=None, lag=None, synced_at=None, running_here=state.indexer_running)
    outbox = OutboxHealth(running_here=state.gateway_running)
    if database.ok:
        try:
            checkpoint = state.indexer.store.checkpoint()
            if checkpoint is not None:
                head = chain.head if chain.head is not None else checkpoint.chain_head
                indexer.last_indexed_block = checkpoint.block_number
                indexer.synced_at = checkpoint.synced_at
                indexer.lag = max(0, head - checkpoint.block_number) if head is not None else None
            outbox.by_status = state.queue_by_status()
            outbox.queue_depth = sum(outbox.by_status.values())
        except Exception as exc:
            database = DatabaseHealth(ok=False, error=type(exc).__name__)
    if state.indexer_running:
        status = state.indexer.status
        indexer.error, indexer.role = status.last_error, status.role
    if not database.ok or not chain.ok:
        verdict = "down"
    elif indexer.lag is None or indexer.lag > MAX_HEALTHY_LAG or indexer.error:
        verdict = "degraded"
    else:
        verdict = "ok"
    return Health(status=verdict, database=database, chain=chain, indexer=indexer, outbox=outbox)


@router.get(
    "/healthz",
    summary="Health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database or the chain is down"}},
)
def healthz(request: Request) -> JSONResponse:
    """`status` is ok, degraded (mirror lagging or not yet built) or down (503: database or chain unreachable)."""
    report = health_report(request.app.state.services)
    return JSONResponse(report.model_dump(), status_code=503 if report.status == "down" else 200)
