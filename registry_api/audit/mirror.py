"""The mirror verification as the API and the CLI serve it: one run at a time, its report as `VerifyPublic`."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import Engine

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.verify import VerifyProgress, VerifyReport, verify_mirror
from registry_api.schemas.audit import (
    BlockDigestPublic,
    RowDifferencePublic,
    TableComparisonPublic,
    VerifyPublic,
)

__all__ = ["MirrorVerifier", "verify_public"]


def verify_public(report: VerifyReport) -> VerifyPublic:
    """The report as the API answers it."""
    comparison = report.comparison
    return VerifyPublic(
        ok=report.ok,
        block=report.block,
        block_hash=report.block_hash,
        events=report.events,
        live_digest=comparison.live_digest,
        chain_digest=comparison.chain_digest,
        blocks=comparison.blocks,
        first_divergent_block=comparison.first_divergent_block,
        divergent_block_count=comparison.divergent_block_count,
        divergent_blocks=[BlockDigestPublic(**asdict(b)) for b in comparison.divergent_blocks],
        tables=[
            TableComparisonPublic(
                table=t.table,
                ok=t.ok,
                live_rows=t.live_rows,
                chain_rows=t.chain_rows,
                missing=t.missing,
                extra=t.extra,
                differing=t.differing,
                samples=[RowDifferencePublic(**asdict(s)) for s in t.samples],
            )
            for t in comparison.tables
        ],
        rebuild_seconds=round(report.rebuild_seconds, 3),
        compare_seconds=round(report.compare_seconds, 3),
    )


class MirrorVerifier:
    """Runs `verify_mirror` for the API, one at a time: a caller arriving during a run gets that run's report.

    A rebuild replays the whole chain (about a minute per million devices), so two at once would only halve the
    speed of both.
    """

    def __init__(self, engine: Engine, rpc: JsonRpcClient, deployment: Deployment, scratch_dir: Path | None) -> None:
        self.engine = engine
        self.rpc = rpc
        self.deployment = deployment
        self.scratch_dir = scratch_dir
        self._lock = threading.Lock()
        self._running: Future[VerifyReport] | None = None

    def verify(self, samples: int, progress: VerifyProgress | None = None) -> VerifyReport:
        """A fresh report, or the one of the run already under way."""
        with self._lock:
            running = self._running
            if running is None:
                running = self._running = Future()
                mine = True
            else:
                mine = False
        if not mine:
            return running.result()
        try:
            report = verify_mirror(
                self.engine, self.rpc, self.deployment, scratch_dir=self.scratch_dir, samples=samples, progress=progress
            )
        except BaseException as exc:
            running.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._running = None
        running.set_result(report)
        return report
