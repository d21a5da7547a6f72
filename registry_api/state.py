"""What the app holds while it runs: settings, engines, deployment, gateway, indexer, scheduler."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from chain_gateway.deployments import Deployment
from chain_gateway.gateway import Gateway
from chain_gateway.outbox import MINED, QUEUED, SUBMITTED, Operation
from chain_gateway.rpc import JsonRpcClient
from chain_gateway.settings import Settings
from indexer.service import Indexer

__all__ = ["PENDING_STATUSES", "AppState"]

PENDING_STATUSES = (QUEUED, SUBMITTED, MINED)  # operations not yet confirmed or failed


@dataclass
class AppState:
    settings: Settings
    engine: Engine  # reads of the mirror and the API's own tables
    outbox_engine: Engine  # the gateway's (SQLite: BEGIN IMMEDIATE transactions)
    deployment: Deployment
    gateway: Gateway
    indexer: Indexer
    health_rpc: JsonRpcClient  # short timeout: /healthz must answer fast when the node is gone
    rpcs: list[JsonRpcClient] = field(default_factory=list)
    scheduler: Any = None  # APScheduler BackgroundScheduler running the indexer
    gateway_thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    gateway_running: bool = False
    indexer_running: bool = False

    def queue_by_status(self) -> dict[str, int]:
        """Operations not yet confirmed or failed, by status (the outbox queue depth)."""
        with Session(self.engine) as session:  # not the outbox engine: its SQLite reads take the write lock
            rows = session.execute(
                select(Operation.status, func.count())  # type: ignore[call-overload]
                .where(Operation.status.in_(PENDING_STATUSES))  # type: ignore[attr-defined]
                .group_by(Operation.status)
            ).all()
        counts = dict.fromkeys(PENDING_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts
