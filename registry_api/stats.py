"""Assessment indicators (考核评估) of a period, computed in SQL over the indexer's mirror.

Definitions (the API docs and `dirchain report --help` repeat them):
- Periods are calendar days in Beijing time (UTC+8): a month `YYYY-MM`, or `from`..`to` both included. Everything
  is counted "as of" the period's last second, or the ledger's time (the newest indexed block) if that is earlier.
- Devices on the ledger: registered by as_of, in the status they had at as_of, grouped by their current district
  and owner. Registered: the DeviceRegistered event's block time is within the period.
- Inspection overdue: a device active at as_of whose last inspection recorded by as_of (`inspected_at`), or its
  registration if it has none, is older than `overdue_days` (default 90, setting `inspection_overdue_days`).
- Catalog entries: created (version 1.0) by as_of, counted by their current status and share condition (the
  mirror keeps no history of entry status). Sharing requests are counted for the entry owner's org (the org
  that approves): requested, granted and refused within the period, pending at as_of, and the median of
  grant time - request time over the period's grants. All times are block times.

How "as of" stays fast at a million devices: the devices table holds the current state, so the counts are one
GROUP BY over it, corrected for the devices that have device events after as_of (a past period: usually few),
whose status and last inspection at as_of come from their event history in a second GROUP BY. The block of an
instant is found by binary search on `device_events.block_number` (indexed): block times never decrease along
the chain, so no index on block times is needed, and nothing is added to the indexer's write path.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, and_, case, cast, func, literal, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from indexer.handlers import DEVICE_STATUSES, ENTRY_STATUSES, SHARE_CONDITIONS
from indexer.models import (
    CatalogEntry,
    CatalogEntryVersion,
    CodeRule,
    Device,
    DeviceEvent,
    Inspection,
    Member,
    SharingRequest,
)
from indexer.spatial import create_index_if_missing
from registry_api.city import DISTRICTS, district_by_code
from registry_api.schemas.stats import (
    CatalogCounts,
    DeviceCounts,
    DistrictOrgStats,
    DistrictStats,
    OrgStats,
    PeriodPublic,
    SharingCounts,
    StatsPublic,
    StatsTotals,
)

__all__ = [
    "ASSESSMENT_INDEX",
    "CITY_TZ",
    "DEFAULT_OVERDUE_DAYS",
    "Period",
    "StatsError",
    "compute_stats",
    "create_assessment_index",
    "days_period",
    "month_period",
]

CITY_TZ = timezone(timedelta(hours=8), "CST")  # Beijing: assessment months and days are local
DEFAULT_OVERDUE_DAYS = 90
DAY_SECONDS = 86_400
STATUSES = DEVICE_STATUSES[1:]  # planned, active, suspended, replaced, retired
ENTRY_STATES = ENTRY_STATUSES[1:]  # draft, published, deprecated
ASSESSED_KINDS = ("department", "district")  # orgs listed even when they have nothing yet
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_STATUS_EVENTS = ("DeviceRegistered", "DeviceLifecycleChanged")


class StatsError(ValueError):
    """A request the indicators cannot answer: a stable code, a message and the parameter at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Period:
    """Calendar days `first_day`..`last_day` (both included) in Beijing time; `month` when it is one."""

    first_day: date
    last_day: date
    month: str | None = None

    @property
    def start(self) -> int:
        """Unix seconds of the period's first instant."""
        return int(datetime.combine(self.first_day, time(), CITY_TZ).timestamp())

    @property
    def end(self) -> int:
        """Unix seconds of the first instant after the period."""
        return int(datetime.combine(self.last_day + timedelta(days=1), time(), CITY_TZ).timestamp())


def month_period(month: str) -> Period:
    """The calendar month `YYYY-MM`; StatsError BAD_MONTH (field `month`) otherwise."""
    found = _MONTH.match(month)
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1970:
        raise StatsError("BAD_MONTH", f"month must be YYYY-MM (e.g. 2025-05), not {month!r}", "month")
    year, number = int(found.group(1)), int(found.group(2))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return Period(first, following - timedelta(days=1), month)


def days_period(first: date, last: date) -> Period:
    """Days `first`..`last`, both included; StatsError BAD_PERIOD (field `to`) if `last` is before `first`."""
    if last < first:
        raise StatsError("BAD_PERIOD", f"to ({last}) is before from ({first})", "to")
    return Period(first, last)


# ---------------------------------------------------------------- tallies


ASSESSMENT_INDEX = "ix_devices_assessment"


def create_assessment_index(engine: Engine) -> None:
    """The covering index of the indicators' GROUP BY over devices (idempotent; ~2 s per million devices once).

    (district, owner, type, status) in group order plus the registration block and last inspection: the current
    state of a million devices is counted from the index alone (SQLite: 4 s -> 0.6 s here), at the price of one
    more index entry per device write.
    """
    columns = "district, owner_org_id, type_id, status, block_number, last_inspected_at"
    create_index_if_missing(engine, ASSESSMENT_INDEX, f"devices ({columns})")


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@dataclass
class _DeviceTally:
    """Device counts of one group, added up from the grouped query rows."""

    by_type: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    registered: int = 0
    overdue: int = 0

    def merge(self, other: _DeviceTally) -> None:
        for type_name, counts in other.by_type.items():
            self.by_type[type_name].update(counts)
        self.registered += other.registered
        self.overdue += other.overdue

    def public(self) -> DeviceCounts:
        by_status = dict.fromkeys(STATUSES, 0)
        by_type: dict[str, dict[str, int]] = {}
        for type_name in sorted(self.by_type):
            counts = {s: n for s, n in self.by_type[type_name].items() if n}
            if counts:
                by_type[type_name] = dict(sorted(counts.items(), key=lambda item: STATUSES.index(item[0])))
                for status, n in counts.items():
                    by_status[status] += n
        return DeviceCounts(
            total=sum(by_status.values()),
            by_status=by_status,
            by_type=by_type,
            registered=self.registered,
            inspections_overdue=self.overdue,
        )


@dataclass
class _CatalogTally:
    by_status: Counter[str] = field(default_factory=Counter)
    by_condition: Counter[str] = field(default_factory=Counter)
    new: int = 0

    def merge(self, other: _CatalogTally) -> None:
        self.by_status.update(other.by_status)
        self.by_condition.update(other.by_condition)
        self.new += other.new

    def public(self) -> CatalogCounts:
        return CatalogCounts(
            total=sum(self.by_status.values()),
            new=self.new,
            by_status={s: self.by_status[s] for s in ENTRY_STATES},
            by_share_condition={c: self.by_condition[c] for c in SHARE_CONDITIONS},
        )


@dataclass
class _SharingTally:
    requested: int = 0
    granted: int = 0
    refused: int = 0
    pending: int = 0
    median: float | None = None

    def merge(self, other: _SharingTally) -> None:
        self.requested += other.requested
        self.granted += other.granted
        self.refused += other.refused
        self.pending += other.pending

    def public(self) -> SharingCounts:
        return SharingCounts(
            requested=self.requested,
            granted=self.granted,
            refused=self.refused,
            pending=self.pending,
            median_approval_seconds=self.median,
        )


# ---------------------------------------------------------------- SQL


_DEVICES = _table(Device)
_EVENTS = _table(DeviceEvent)
_INSPECTIONS = _table(Inspection)
_ENTRIES = _table(CatalogEntry)
_VERSIONS = _table(CatalogEntryVersion)
_REQUESTS = _table(SharingRequest)


def _block_at(conn: Connection, instant: int) -> int:
    """The newest block holding a device event with block time <= `instant` (-1 if none), by binary search."""
    e = _EVENTS
    # two scalar subqueries: SQLite reads min() or max() alone from the index end, but scans for both in one SELECT
    low, high = conn.execute(
        select(
            select(func.min(e.c.block_number)).scalar_subquery(), select(func.max(e.c.block_number)).scalar_subquery()
        )
    ).one()
    if low is None:
        return -1
    probe = select(e.c.block_number, e.c.block_time).order_by(e.c.block_number).limit(1)
    found = -1
    while low <= high:
        middle = (low + high) // 2
        block, block_time = conn.execute(probe.where(e.c.block_number >= middle)).one()
        if block_time <= instant:
            found, low = block, block + 1
        else:
            high = middle - 1
    return found


def _json_text(dialect: str, column: Any, key: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.json_extract_path_text(cast(column, JSON), key)
    return func.json_extract(column, f"$.{key}")


def _overdue(status: Any, last_inspected: Any, registered_block: Any, cut: int, cut_block: int) -> Any:
    """1 if a device in `status` with that last inspection and registration block is overdue, else 0."""
    stale = or_(and_(last_inspected.is_(None), registered_block <= cut_block), last_inspected <= cut)
    return case((and_(status == "active", stale), 1), else_=0)


def _device_filters(query: Any, district: int | None, org_id: int | None) -> Any:
    if district is not None:
        query = query.where(_DEVICES.c.district == district)
    if org_id is not None:
        query = query.where(_DEVICES.c.owner_org_id == org_id)
    return query


@dataclass(frozen=True)
class _Instants:
    as_of: int
    cut: int  # inspections at or before this are too old
    as_of_block: int
    cut_block: int
    before_block: int  # the newest device-event block before the period


def _device_tallies(
    conn: Connection, at: _Instants, district: int | None, org_id: int | None, types: dict[int, str]
) -> dict[tuple[int, int], _DeviceTally]:
    d = _DEVICES
    tallies: dict[tuple[int, int], _DeviceTally] = defaultdict(_DeviceTally)

    def type_name(type_id: int) -> str:
        return types.get(type_id, f"#{type_id}")

    # 1. the current state of every device, and its registration block (which never changes): one index-only scan
    overdue = _overdue(d.c.status, d.c.last_inspected_at, d.c.block_number, at.cut, at.cut_block)
    registered = case((d.c.block_number.between(at.before_block + 1, at.as_of_block), 1), else_=0)
    keys = (d.c.district, d.c.owner_org_id, d.c.type_id, d.c.status)
    now = select(*keys, func.count(), func.sum(overdue), func.sum(registered)).group_by(*keys)
    for dist, org, type_id, status, n, late, new in conn.execute(_device_filters(now, district, org_id)):
        tally = tallies[(dist, org)]
        tally.by_type[type_name(type_id)][status] += n
        tally.overdue += int(late or 0)
        tally.registered += int(new or 0)

    # 2. devices with events after as_of: take their current state out, put their state at as_of back in
    newest = conn.execute(select(func.max(_EVENTS.c.block_number))).scalar()
    if newest is not None and newest > at.as_of_block:
        for dist, org, type_id, status, late, then_status, then_late, n in conn.execute(
            _corrections(conn.dialect.name, at, district, org_id)
        ):
            tally = tallies[(dist, org)]
            tally.by_type[type_name(type_id)][status] -= n
            tally.overdue -= late * n
            if then_status is not None:
                tally.by_type[type_name(type_id)][then_status] += n
                tally.overdue += then_late * n
    return tallies


def _corrections(dialect: str, at: _Instants, district: int | None, org_id: int | None) -> Any:
    """Per group of devices with events after as_of: current (status, overdue), at-as_of (status, overdue), count.

    Only the events after as_of are read (a range of `device_events.block_number`): a device's status at as_of is
    the `fromStatus` of its first life-cycle change after it, none if that first event is its registration, and its
    current status if it only had inspections or updates since. Its last inspection at as_of is looked up only if
    it was inspected since.
    """
    d, e, i = _DEVICES, _EVENTS, _INSPECTIONS
    since = e.c.block_number > at.as_of_block
    code = e.c.code
    touched = (
        select(code.label("code"), func.max(case((e.c.event == "DeviceInspected", 1), else_=0)).label("inspected"))
        .where(since)
        .group_by(code)
        .cte("touched")
    )
    order = func.row_number().over(partition_by=code, order_by=(e.c.block_number, e.c.log_index))
    ranked = (
        select(
            code.label("code"),
            e.c.event,
            _json_text(dialect, e.c.data, "fromStatus").label("from_status"),
            order.label("rn"),
        )
        .where(since, e.c.event.in_(_STATUS_EVENTS))
        .subquery("ranked")
    )
    first = select(ranked.c.code, ranked.c.event, ranked.c.from_status).where(ranked.c.rn == 1).cte("first_change")
    then_status = case(
        (first.c.event.is_(None), d.c.status),
        (first.c.event == "DeviceLifecycleChanged", first.c.from_status),
        else_=None,
    )
    inspected_before = (
        select(func.max(i.c.inspected_at))
        .where(i.c.code == d.c.code, i.c.block_number <= at.as_of_block)
        .scalar_subquery()
    )
    then_inspected = case((touched.c.inspected == 1, inspected_before), else_=d.c.last_inspected_at)
    per_device = (
        _device_filters(
            select(
                d.c.district,
                d.c.owner_org_id,
                d.c.type_id,
                d.c.status,
                d.c.block_number,
                _overdue(d.c.status, d.c.last_inspected_at, d.c.block_number, at.cut, at.cut_block).label("late"),
                then_status.label("then_status"),
                then_inspected.label("then_inspected"),
            ).select_from(touched.join(d, d.c.code == touched.c.code).outerjoin(first, first.c.code == touched.c.code)),
            district,
            org_id,
        )
        .cte("per_device")
        .prefix_with("MATERIALIZED")
    )  # its inspection lookup once per device, not once per use
    p = per_device.c
    late_then = _overdue(p.then_status, p.then_inspected, p.block_number, at.cut, at.cut_block)
    keys = (p.district, p.owner_org_id, p.type_id, p.status, p.late, p.then_status, late_then)
    return select(*keys, func.count()).group_by(*keys)


def _catalog_tallies(conn: Connection, period: Period, as_of: int, org_id: int | None) -> dict[int, _CatalogTally]:
    c, v = _ENTRIES, _VERSIONS
    first_version = and_(v.c.entry_id == c.c.entry_id, v.c.major == 1, v.c.minor == 0)
    keys = (c.c.owner_org_id, c.c.status, c.c.share_condition)
    query = (
        select(*keys, func.count(), func.sum(case((v.c.block_time >= period.start, 1), else_=0)))
        .select_from(c.join(v, first_version))
        .where(v.c.block_time <= as_of)
        .group_by(*keys)
    )
    if org_id is not None:
        query = query.where(c.c.owner_org_id == org_id)
    tallies: dict[int, _CatalogTally] = defaultdict(_CatalogTally)
    for org, status, condition, n, new in conn.execute(query):
        tally = tallies[org]
        tally.by_status[status] += n
        tally.by_condition[condition] += n
        tally.new += int(new or 0)
    return tallies


def _sharing_tallies(conn: Connection, period: Period, as_of: int, org_id: int | None) -> dict[int, _SharingTally]:
    r = _REQUESTS

    def within(column: Any) -> Any:
        return case((column.between(period.start, as_of), 1), else_=0)

    undecided = func.coalesce(r.c.granted_at, r.c.closed_at, literal(as_of + 1)) > as_of
    query = select(
        r.c.owner_org_id,
        func.sum(within(r.c.requested_at)),
        func.sum(within(r.c.granted_at)),
        func.sum(case((and_(r.c.status == "refused", r.c.closed_at.between(period.start, as_of)), 1), else_=0)),
        func.sum(case((and_(r.c.requested_at <= as_of, undecided), 1), else_=0)),
    ).group_by(r.c.owner_org_id)
    if org_id is not None:
        query = query.where(r.c.owner_org_id == org_id)
    tallies: dict[int, _SharingTally] = defaultdict(_SharingTally)
    for org, requested, granted, refused, pending in conn.execute(query):
        tallies[org] = _SharingTally(int(requested or 0), int(granted or 0), int(refused or 0), int(pending or 0))
    for org, median in conn.execute(_median_approval(period, as_of, org_id, per_org=True)):
        tallies[org].median = float(median)
    return tallies


def _median_approval(period: Period, as_of: int, org_id: int | None, per_org: bool) -> Any:
    """Median of grant - request seconds over the period's grants, per owner org or overall (window functions,
    which SQLite and PostgreSQL share: the middle row, or the mean of the two middle rows)."""
    r = _REQUESTS
    seconds = r.c.granted_at - r.c.requested_at
    group = [r.c.owner_org_id] if per_org else []
    ranked = select(
        r.c.owner_org_id.label("org"),
        seconds.label("seconds"),
        func.row_number().over(partition_by=group or None, order_by=seconds).label("rn"),
        func.count().over(partition_by=group or None).label("n"),
    ).where(r.c.granted_at.between(period.start, as_of))
    if org_id is not None:
        ranked = ranked.where(r.c.owner_org_id == org_id)
    sub = ranked.subquery("ranked")
    middle = sub.c.rn.in_([(sub.c.n + 1) // 2, (sub.c.n + 2) // 2])  # integer division in both
    if per_org:
        return select(sub.c.org, func.avg(sub.c.seconds)).where(middle).group_by(sub.c.org)
    return select(func.avg(sub.c.seconds)).where(middle)


# ---------------------------------------------------------------- assembly


def _merged(tallies: Iterable[Any], empty: Any) -> Any:
    total = empty()
    for tally in tallies:
        total.merge(tally)
    return total


def compute_stats(
    conn: Connection,
    period: Period,
    now: int,
    overdue_days: int = DEFAULT_OVERDUE_DAYS,
    district: int | None = None,
    org: str | None = None,
) -> StatsPublic:
    """The indicators of `period` as of min(its last second, `now`: the ledger's time), optionally for one
    district (device indicators) and one owner org (all indicators)."""
    if period.start > now:
        field = "month" if period.month else "from"
        raise StatsError("PERIOD_NOT_STARTED", f"the period starts after the ledger's time ({_iso(now)})", field)
    if conn.dialect.name == "postgresql":
        # a few large sorts and hashes: JIT compilation cost more than it saved here (0.7 s of 4 s at 1M devices),
        # and the default 4 MB work_mem spilled them to disk; both only for this transaction
        conn.execute(text("SET LOCAL jit = off"))
        conn.execute(text("SET LOCAL work_mem = '64MB'"))
    members = {row.org_id: row for row in conn.execute(select(_table(Member)))}
    org_id = None
    if org is not None:
        org_id = next((m.org_id for m in members.values() if m.code == org), None)
        if org_id is None:
            raise StatsError("UNKNOWN_ORG", f"no member organisation {org}", "org")
    types = {row.type_id: row.type_name for row in conn.execute(select(_table(CodeRule)))}
    as_of = min(period.end - 1, now)
    cut = as_of - overdue_days * DAY_SECONDS
    at = _Instants(as_of, cut, _block_at(conn, as_of), _block_at(conn, cut), _block_at(conn, period.start - 1))

    devices = _device_tallies(conn, at, district, org_id, types)
    catalog = _catalog_tallies(conn, period, as_of, org_id)
    sharing = _sharing_tallies(conn, period, as_of, org_id)
    overall_median = conn.execute(_median_approval(period, as_of, org_id, per_org=False)).scalar()

    def org_code(org_key: int) -> str:
        member = members.get(org_key)
        return member.code if member is not None else f"#{org_key}"

    district_keys = {d for d, _ in devices} | ({district} if district is not None else {c.code for c in DISTRICTS})
    by_district = [
        DistrictStats(
            district=key,
            name=_district_name(key),
            devices=_merged((t for (d, _), t in devices.items() if d == key), _DeviceTally).public(),
        )
        for key in sorted(district_keys)
    ]
    org_keys = {o for _, o in devices} | catalog.keys() | sharing.keys()
    if org_id is None:
        org_keys |= {m.org_id for m in members.values() if m.kind in ASSESSED_KINDS}
    else:
        org_keys = {org_id}
    by_org = [
        OrgStats(
            org=org_code(key),
            name=members[key].name if key in members else None,
            kind=members[key].kind if key in members else None,
            devices=_merged((t for (_, o), t in devices.items() if o == key), _DeviceTally).public(),
            catalog=catalog.get(key, _CatalogTally()).public(),
            sharing=sharing.get(key, _SharingTally()).public(),
        )
        for key in sorted(org_keys, key=org_code)
    ]
    by_district_org = [
        DistrictOrgStats(district=d, district_name=_district_name(d), org=org_code(o), devices=tally.public())
        for (d, o), tally in sorted(devices.items(), key=lambda item: (item[0][0], org_code(item[0][1])))
        if tally.public().total or tally.registered
    ]
    sharing_total = _merged(sharing.values(), _SharingTally)
    sharing_total.median = float(overall_median) if overall_median is not None else None
    return StatsPublic(
        period=PeriodPublic(
            month=period.month,
            from_=period.first_day,
            to=period.last_day,
            start=_utc(period.start),
            end=_utc(period.end),
            as_of=_utc(as_of),
            complete=now >= period.end,
        ),
        overdue_days=overdue_days,
        district=district,
        org=org,
        ledger_block=at.as_of_block if at.as_of_block >= 0 else None,
        totals=StatsTotals(
            devices=_merged(devices.values(), _DeviceTally).public(),
            catalog=_merged(catalog.values(), _CatalogTally).public(),
            sharing=sharing_total.public(),
        ),
        by_district=by_district,
        by_org=by_org,
        by_district_org=by_district_org,
    )


def _district_name(code: int) -> str | None:
    found = district_by_code(code)
    return found.name if found is not None else None


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _iso(seconds: int) -> str:
    return _utc(seconds).isoformat().replace("+00:00", "Z")
