"""/v1/stats: the assessment indicators of a period (考核评估), and the monthly report as CSV or HTML."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from registry_api import report, stats
from registry_api.crud_sharing import ChainClock
from registry_api.deps import PrincipalDep, SessionDep, SettingsDep
from registry_api.errors import ApiError
from registry_api.schemas.common import ErrorPublic
from registry_api.schemas.stats import StatsPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/stats", tags=["stats"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token (UNAUTHENTICATED)"},
    422: {
        "model": ErrorPublic,
        "description": "BAD_MONTH, BAD_PERIOD, CONFLICTING_PERIOD, PERIOD_NOT_STARTED, UNKNOWN_ORG, VALIDATION_ERROR",
    },
}
_DEFINITIONS = """
Periods are calendar days in Beijing time (UTC+8): `month=YYYY-MM`, or `from` and `to` (dates, both included);
by default the current month. Counts are as of the period's last second, or the ledger's time if earlier.
Devices on the ledger are grouped by status at that time; an active device is overdue for inspection when its
last inspection (or its registration, if never inspected) is more than `overdue_days` old (default: the
`inspection_overdue_days` setting, 90). Catalog entries count by current status and share condition; sharing
requests count for the entry owner's org, with the median of grant time - request time over the period's grants.
`district` narrows the device indicators; `org` narrows everything to one owner org.
"""

Month = Annotated[str | None, Query(description="YYYY-MM (Beijing time)", examples=["2025-05"])]
From = Annotated[date | None, Query(alias="from", description="first day, with `to`")]
To = Annotated[date | None, Query(description="last day (included), with `from`")]
District = Annotated[int | None, Query(ge=100_000, le=999_999, description="6-digit division code")]
Org = Annotated[str | None, Query(min_length=1, max_length=64, description="owner org code, e.g. BJ-PSB")]
OverdueDays = Annotated[int | None, Query(ge=1, le=3_650, description="days without inspection that are overdue")]


def _ledger_time(request: Request, session: Session) -> int:
    """The time of the newest indexed block (asked of the node once per block); the clock if there is none."""
    clock: ChainClock | None = getattr(request.app.state, "chain_clock", None)
    services = getattr(request.app.state, "services", None)
    if clock is None or services is None:
        return int(time.time())
    now = clock.now(session, services.health_rpc)
    return int(now) if now is not None else int(time.time())


def _period(month: str | None, first: date | None, last: date | None, now: int) -> stats.Period:
    if month is not None and (first is not None or last is not None):
        raise stats.StatsError("CONFLICTING_PERIOD", "give month, or from and to, not both", "month")
    if month is not None:
        return stats.month_period(month)
    if first is None and last is None:
        return stats.month_period(datetime.fromtimestamp(now, stats.CITY_TZ).strftime("%Y-%m"))
    if first is None or last is None:
        missing = "from" if first is None else "to"
        raise stats.StatsError("BAD_PERIOD", "from and to go together (both dates included)", missing)
    return stats.days_period(first, last)


def _stats(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: PrincipalDep,
    month: Month = None,
    from_: From = None,
    to: To = None,
    district: District = None,
    org: Org = None,
    overdue_days: OverdueDays = None,
) -> StatsPublic:
    """The indicators the query string asks for (a dependency of the three routes)."""
    now = _ledger_time(request, session)
    try:
        period = _period(month, from_, to, now)
        overdue = overdue_days or settings.inspection_overdue_days
        return stats.compute_stats(session.connection(), period, now, overdue, district=district, org=org)
    except stats.StatsError as exc:
        raise ApiError(422, exc.code, exc.message, field=exc.field) from exc


StatsDep = Annotated[StatsPublic, Depends(_stats)]


@router.get("", summary="Assessment indicators", responses=_ERRORS, description=_DEFINITIONS)  # type: ignore[arg-type]
def get_stats(result: StatsDep) -> StatsPublic:
    """Per district, per org and per district x org: devices on the ledger by type and status, registered in the
    period, overdue for inspection; per org also catalog entries and sharing requests; totals."""
    return result


@router.get(
    "/report.csv",
    summary="The assessment report as CSV",
    responses={**_ERRORS, 200: {"content": {"text/csv": {}}, "description": "one row per district x org, subtotals"}},  # type: ignore[dict-item]
    response_class=Response,
)
def get_report_csv(result: StatsDep) -> Response:
    """The indicators of GET /v1/stats as CSV (UTF-8 with BOM, for spreadsheets): a row per district x org, then
    the per-org rows (with catalog and sharing), per-district rows and the total; column `level` tells which."""
    return Response(
        report.report_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report.report_name(result)}.csv"'},
    )


@router.get(
    "/report.html",
    summary="The assessment report as a page with charts",
    responses={**_ERRORS, 200: {"content": {"text/html": {}}, "description": "self-contained HTML with SVG charts"}},  # type: ignore[dict-item]
    response_class=HTMLResponse,
)
def get_report_html(result: StatsDep) -> HTMLResponse:
    """One self-contained page: the totals, devices on the ledger per district and per org stacked by status (SVG
    charts, no script), and the tables of the CSV."""
    return HTMLResponse(report.report_html(result))
