"""/v1/audit/report: who did what, and when, over a time range, read from the chain (see registry_api.audit.report).

The report is made from the chain's logs over JSON-RPC, never from the mirror. The last few reports are kept a
few minutes so that paging through a long JSON report does not read the chain again for every page.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from chain_gateway.rpc import JsonRpcClient
from indexer.errors import ChainMovedError, IndexerFatalError
from registry_api.audit.report import build_report, report_page
from registry_api.audit.report_html import report_html
from registry_api.audit.report_range import ReportRangeError, TimeWindow, parse_window
from registry_api.deps import AuditorDep, PageDep, SettingsDep
from registry_api.errors import ApiError
from registry_api.schemas.audit_report import AuditReportPublic
from registry_api.schemas.common import ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

CACHED_REPORTS = 4  # whole reports kept for paging
CACHE_SECONDS = 300.0  # how long a kept report is served (a reorg past a closed range shows after this at most)
RPC_TIMEOUT_SECONDS = 60.0  # one eth_getLogs over a long range may take a while
MAX_LOGS = 100_000  # events of one report in the API process (~350 MB, ~10 s); the CLI has no limit

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token (UNAUTHENTICATED)"},
    403: {"model": ErrorPublic, "description": "the account lacks the AUDITOR role (ROLE_REQUIRED)"},
    422: {
        "model": ErrorPublic,
        "description": "BAD_DATETIME, RANGE_REVERSED, RANGE_TOO_LARGE (field from or to), VALIDATION_ERROR",
    },
    502: {"model": ErrorPublic, "description": "a log the deployment's ABIs do not decode (UNDECODABLE_LOG)"},
    503: {
        "model": ErrorPublic,
        "description": "the node cannot be reached (CHAIN_UNAVAILABLE) or reorganised (CHAIN_MOVED)",
    },
}
_DESCRIPTION = """
Every event of the deployment's contracts in blocks whose times fall in `from`..`to` (both included), with its
time (Beijing, UTC+8, and unix), block, transaction, log index, contract and event; the sender with the org and
roles it held at that point (replayed from the Consortium's logs); the approver who signed a relayed sharing
decision; the subject and a one-line summary. Logs of one kind repeated by a transaction (a bulk registration)
make one entry with their count; `activities` lists each. A summary counts activities per org and kind of action.

`from` and `to` are ISO 8601 dates or datetimes; without an offset they are Beijing time, and a date covers its
whole day. `format=html` gives the whole report as one printable page (A4); `format=json` a page of the
chronological list (`limit`, `offset`) with the whole header and summary. A range of more than 100,000 events
is refused (RANGE_TOO_LARGE): `dirchain audit report` makes any range where the auditor is.
"""

From = Annotated[str, Query(alias="from", description="start, included", examples=["2025-05-01", "2025-05-01T08:00"])]
To = Annotated[str, Query(description="end, included (a date: its whole day)", examples=["2025-05-31"])]
Format = Annotated[Literal["html", "json"], Query(alias="format", description="html: printable page; json: paginated")]


class _Reports:
    """The last few reports, for `CACHE_SECONDS`. A range that ends before the head block's time is closed (later
    blocks have later times) and keyed by the range alone; an open one also by the head block's hash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, int, str], tuple[float, AuditReportPublic]] = OrderedDict()

    def get(self, key: tuple[int, int, str]) -> AuditReportPublic | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > CACHE_SECONDS:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: tuple[int, int, str], report: AuditReportPublic) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), report)
            while len(self._items) > CACHED_REPORTS:
                self._items.popitem(last=False)


_cache_lock = threading.Lock()


def _cache(request: Request) -> _Reports:
    with _cache_lock:
        reports: _Reports | None = getattr(request.app.state, "audit_reports", None)
        if reports is None:
            reports = request.app.state.audit_reports = _Reports()
        return reports


def _report(request: Request, rpc: JsonRpcClient, window: TimeWindow) -> AuditReportPublic:
    head = rpc.get_block("latest") or {}
    closed = int(head.get("timestamp", "0x0"), 16) > window.end
    key = (window.start, window.end, "closed" if closed else str(head.get("hash")))
    cache = _cache(request)
    report = cache.get(key)
    if report is None:
        report = build_report(rpc, request.app.state.services.deployment, window, max_logs=MAX_LOGS)
        cache.put(key, report)
    return report


@router.get(
    "/report",
    summary="Who did what, and when, over a time range",
    description=_DESCRIPTION,
    responses={**_ERRORS, 200: {"content": {"text/html": {}}, "description": "JSON (AuditReportPublic) or HTML"}},  # type: ignore[dict-item]
    response_model=AuditReportPublic,
)
def get_report(
    request: Request,
    settings: SettingsDep,
    _: AuditorDep,
    page: PageDep,
    from_: From,
    to: To,
    format_: Format = "html",
) -> Response | AuditReportPublic:
    """The audit report of `from`..`to` from the chain's logs, as HTML or a JSON page."""
    try:
        window = parse_window(from_, to)
        with JsonRpcClient(settings.rpc_urls, timeout=RPC_TIMEOUT_SECONDS) as rpc:
            report = _report(request, rpc, window)
    except ReportRangeError as exc:
        raise ApiError(422, exc.code, exc.message, field=exc.field) from exc
    except ChainMovedError as exc:  # a block or transaction of the range vanished while it was read: a reorg
        raise ApiError(503, "CHAIN_MOVED", f"the chain changed while the report was read ({exc}); try again",
                       headers={"Retry-After": "2"}) from exc  # fmt: skip
    except IndexerFatalError as exc:  # a log of a deployment address that its ABI does not decode
        raise ApiError(
            502, "UNDECODABLE_LOG", f"the chain holds a log the deployment's ABIs do not decode: {exc}"
        ) from exc
    if format_ == "html":
        return HTMLResponse(report_html(report))
    return report_page(report, page.limit, page.offset)
