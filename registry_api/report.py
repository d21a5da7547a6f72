"""The monthly assessment report from the indicators of GET /v1/stats: CSV rows, SVG charts, one HTML page.

Charts are drawn as SVG here (stacked horizontal bars: a few rectangles and labels) rather than with a plotting
library: the page stays self-contained and scriptless, opens in any browser, and the project needs no
matplotlib/numpy for one chart kind. Everything here is a pure function of a `StatsPublic`, so the API's
`/v1/stats/report.*` and `dirchain report` produce the same files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from html import escape

from registry_api.schemas.stats import CatalogCounts, DeviceCounts, SharingCounts, StatsPublic
from registry_api.stats import STATUSES

__all__ = [
    "CSV_COLUMNS",
    "district_chart_svg",
    "report_csv",
    "report_html",
    "report_name",
    "report_rows",
    "stacked_bars_svg",
]

ALL = "ALL"
CSV_COLUMNS = (
    "period", "level", "district", "district_name", "org", "org_name",
    "devices_total", *(f"devices_{s}" for s in STATUSES), "devices_registered", "inspections_overdue",
    "catalog_total", "catalog_new", "catalog_draft", "catalog_published", "catalog_deprecated",
    "catalog_unconditional", "catalog_conditional", "catalog_not_shareable",
    "sharing_requested", "sharing_granted", "sharing_refused", "sharing_pending", "median_approval_hours",
)  # fmt: skip
STATUS_COLOURS = {
    "planned": "#9ecae1",
    "active": "#31a354",
    "suspended": "#fdae6b",
    "replaced": "#9e9ac8",
    "retired": "#bdbdbd",
}
_BAR_HEIGHT = 18  # px
_LABEL_WIDTH = 150  # px
_PLOT_WIDTH = 520  # px
_FONT = "font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;font-size:12px"


def report_name(stats: StatsPublic) -> str:
    """File name stem: report-2025-05, or report-2025-05-01_2025-05-15 for other periods."""
    period = stats.period
    return f"report-{period.month}" if period.month else f"report-{period.from_}_{period.to}"


def _period_label(stats: StatsPublic) -> str:
    return stats.period.month or f"{stats.period.from_}..{stats.period.to}"


def _device_cells(devices: DeviceCounts) -> dict[str, object]:
    cells: dict[str, object] = {"devices_total": devices.total}
    cells.update({f"devices_{s}": devices.by_status[s] for s in STATUSES})
    cells["devices_registered"] = devices.registered
    cells["inspections_overdue"] = devices.inspections_overdue
    return cells


def _type_columns(stats: StatsPublic) -> list[str]:
    return [f"type:{name}" for name in sorted(stats.totals.devices.by_type)]


def _catalog_sharing_cells(catalog: CatalogCounts, sharing: SharingCounts) -> dict[str, object]:
    median = sharing.median_approval_seconds
    return {
        "catalog_total": catalog.total,
        "catalog_new": catalog.new,
        **{f"catalog_{s}": n for s, n in catalog.by_status.items()},
        **{f"catalog_{c}": n for c, n in catalog.by_share_condition.items()},
        "sharing_requested": sharing.requested,
        "sharing_granted": sharing.granted,
        "sharing_refused": sharing.refused,
        "sharing_pending": sharing.pending,
        "median_approval_hours": None if median is None else round(median / 3600, 2),
    }


def _row(
    stats: StatsPublic, level: str, where: tuple[object, str | None, str, str | None], devices: DeviceCounts
) -> dict[str, object]:
    district, district_name, org, org_name = where
    return {
        "period": _period_label(stats),
        "level": level,
        "district": district,
        "district_name": district_name,
        "org": org,
        "org_name": org_name,
        **_device_cells(devices),
        **{f"type:{name}": sum(counts.values()) for name, counts in devices.by_type.items()},
    }


def report_rows(stats: StatsPublic) -> list[dict[str, object]]:
    """The CSV's rows as dicts: district x org (level `district_org`), then `org` rows (devices summed over the
    districts, with catalog and sharing), `district` rows and the `total` row."""
    names = {o.org: o.name for o in stats.by_org}
    rows = [
        _row(stats, "district_org", (c.district, c.district_name, c.org, names.get(c.org)), c.devices)
        for c in stats.by_district_org
    ]
    rows += [
        {**_row(stats, "org", (ALL, None, o.org, o.name), o.devices), **_catalog_sharing_cells(o.catalog, o.sharing)}
        for o in stats.by_org
    ]
    rows += [_row(stats, "district", (d.district, d.name, ALL, None), d.devices) for d in stats.by_district]
    totals = stats.totals
    total = _row(stats, "total", (ALL, None, ALL, None), totals.devices)
    rows.append({**total, **_catalog_sharing_cells(totals.catalog, totals.sharing)})
    return rows


def report_csv(stats: StatsPublic) -> str:
    """The report as CSV text: a BOM (spreadsheets then read the Chinese names right), a header, `report_rows`;
    one `type:<name>` column per device type after the fixed columns; empty cells where a level has no value."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, [*CSV_COLUMNS, *_type_columns(stats)], restval="", lineterminator="\r\n")
    writer.writeheader()
    for row in report_rows(stats):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def stacked_bars_svg(title: str, bars: Sequence[tuple[str, dict[str, int]]]) -> str:
    """A horizontal stacked bar chart as standalone SVG: one bar per (label, counts by status), a legend."""
    top = 28
    legend_y = top + len(bars) * (_BAR_HEIGHT + 6) + 10
    height = legend_y + 24
    width = _LABEL_WIDTH + _PLOT_WIDTH + 70
    scale = max([sum(c.values()) for _, c in bars] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" style="{_FONT}">',
        f'<text x="0" y="16" style="font-size:14px;font-weight:bold">{escape(title)}</text>',
    ]
    for row, (label, counts) in enumerate(bars):
        y = top + row * (_BAR_HEIGHT + 6)
        parts.append(f'<text x="{_LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        x = float(_LABEL_WIDTH)
        for status in STATUSES:
            n = counts.get(status, 0)
            if n <= 0:
                continue
            w = n / scale * _PLOT_WIDTH
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{_BAR_HEIGHT}" '
                f'fill="{STATUS_COLOURS[status]}"><title>{escape(label)}: {status} {n:,}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{sum(counts.values()):,}</text>')
    x = float(_LABEL_WIDTH)
    for status in STATUSES:
        parts.append(f'<rect x="{x:.0f}" y="{legend_y}" width="12" height="12" fill="{STATUS_COLOURS[status]}"/>')
        parts.append(f'<text x="{x + 16:.0f}" y="{legend_y + 10}">{status}</text>')
        x += 100
    parts.append("</svg>")
    return "\n".join(parts)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def district_chart_svg(stats: StatsPublic) -> str:
    """Devices on the ledger per district stacked by status; a bar is labelled by division code and name (the
    code stays readable where no CJK font is installed)."""
    return stacked_bars_svg(
        f"Devices on the ledger per district, by status ({_period_label(stats)})",
        [(f"{d.district} {d.name or ''}".strip(), d.devices.by_status) for d in stats.by_district],
    )


def report_html(stats: StatsPublic) -> str:
    """The report as one self-contained HTML page: headline figures, two charts, the per-org and per-district
    tables."""
    label = _period_label(stats)
    totals = stats.totals
    district_chart = district_chart_svg(stats)
    org_chart = stacked_bars_svg(
        "Devices on the ledger per department, by status",
        [(o.org, o.devices.by_status) for o in stats.by_org if o.devices.total],
    )
    median = totals.sharing.median_approval_seconds
    headline = [
        ("devices on the ledger", f"{totals.devices.total:,}"),
        ("registered in the period", f"{totals.devices.registered:,}"),
        (f"inspections overdue (> {stats.overdue_days} days)", f"{totals.devices.inspections_overdue:,}"),
        ("catalog entries", f"{totals.catalog.total:,} ({totals.catalog.new:,} new)"),
        ("sharing: granted / refused / pending", f"{totals.sharing.granted} / {totals.sharing.refused} / "
         f"{totals.sharing.pending}"),
        ("median approval time", "-" if median is None else f"{median / 3600:.1f} h"),
    ]  # fmt: skip
    org_rows = [
        (o.org, o.name, o.devices.total, *(o.devices.by_status[s] for s in STATUSES), o.devices.registered,
         o.devices.inspections_overdue, o.catalog.total, o.sharing.granted, o.sharing.refused, o.sharing.pending,
         "-" if o.sharing.median_approval_seconds is None else f"{o.sharing.median_approval_seconds / 3600:.1f} h")
        for o in stats.by_org
    ]  # fmt: skip
    district_rows = [
        (d.district, d.name, d.devices.total, *(d.devices.by_status[s] for s in STATUSES), d.devices.registered,
         d.devices.inspections_overdue)
        for d in stats.by_district
    ]  # fmt: skip
    filters = ", ".join(f"{k} {v}" for k, v in (("district", stats.district), ("org", stats.org)) if v is not None)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Assessment report {escape(label)}</title>
<style>
body {{ {_FONT}; margin: 24px; color: #222; }} h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:nth-child(2) {{ text-align: left; }} .meta {{ color: #666; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 4px 16px; }} dt {{ color: #555; }}
</style></head><body>
<h1>目录链 assessment report (考核评估) {escape(label)}</h1>
<p class="meta">{escape(str(stats.period.from_))} .. {escape(str(stats.period.to))} (Beijing time), counted as of
{escape(stats.period.as_of.isoformat())}{"" if stats.period.complete else " (period not over)"}; ledger block
{stats.ledger_block if stats.ledger_block is not None else "-"}{escape(f"; {filters}" if filters else "")}</p>
<dl>{"".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in headline)}</dl>
{district_chart}
{org_chart}
<h2>Per department</h2>
{
        _table(
            [
                "org",
                "name",
                "devices",
                *STATUSES,
                "registered",
                "overdue",
                "catalog",
                "granted",
                "refused",
                "pending",
                "median approval",
            ],
            org_rows,
        )
    }
<h2>Per district</h2>
{_table(["district", "name", "devices", *STATUSES, "registered", "overdue"], district_rows)}
</body></html>
"""
