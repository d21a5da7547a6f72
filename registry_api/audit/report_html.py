"""The audit report as one printable HTML page: header, org x action summary, then the chronological list.

Self-contained and scriptless (inline CSS, no fonts or images fetched), A4 in print: the list's header row repeats
on every page, rows are not split across pages, and the list starts on a new page. Every text from the chain
(purposes, titles, reasons, org names) is escaped: the chain is written by many members and a report is opened in
an auditor's browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from registry_api.schemas.audit_report import ActionCount, AuditEntry, AuditReportPublic, ReportParty

__all__ = ["report_html", "summary_by_org"]

_NO_ORG = "(no member org)"
_CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
body { font-family: 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif; font-size: 10.5px;
       color: #111; margin: 20px; }
h1 { font-size: 18px; margin: 0 0 6px 0; } h2 { font-size: 14px; margin: 18px 0 6px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 2px 5px; vertical-align: top; text-align: left; }
th { background: #eee; } td.n, th.n { text-align: right; white-space: nowrap; }
.mono { font-family: 'DejaVu Sans Mono', Consolas, monospace; font-size: 9px; word-break: break-all; }
.meta th { width: 22%; background: #f6f6f6; font-weight: normal; } .muted { color: #666; }
.count { font-weight: bold; } table.summary { width: auto; min-width: 50%; }
@media print {
  body { margin: 0; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; break-inside: avoid; }
  .list { page-break-before: always; break-before: page; }
}
"""


def summary_by_org(report: AuditReportPublic) -> list[tuple[str, list[ActionCount]]]:
    """The summary's counts grouped by org (in the summary's order: orgs, then the bracketed kinds of doer)."""
    groups: dict[str, list[ActionCount]] = {}
    for count in report.summary:
        groups.setdefault(count.org or _NO_ORG, []).append(count)
    return list(groups.items())


def _party(party: ReportParty) -> str:
    org = escape(party.org) if party.org else _NO_ORG
    state = "" if party.org_active is not False else " (suspended)"
    roles = escape(", ".join(party.roles)) if party.roles else "no role"
    return f'{org}{state}<br><span class="mono">{escape(party.account)}</span><br><span class="muted">{roles}</span>'


def _rows(cells: Iterable[str]) -> str:
    return "".join(cells)


def _summary_table(report: AuditReportPublic) -> str:
    """One row per org and kind of action (long rather than wide: it fits A4 whatever the number of actions)."""
    groups = summary_by_org(report)
    if not groups:
        return "<p>No activity in this range.</p>"
    rows: list[str] = []
    for org, counts in groups:
        for i, count in enumerate(counts):
            first = f'<td rowspan="{len(counts) + 1}">{escape(org)}</td>' if i == 0 else ""
            rows.append(
                f'<tr>{first}<td>{escape(count.action)}</td><td class="n">{count.activities:,}</td>'
                f'<td class="n">{count.transactions:,}</td></tr>'
            )
        total = sum(c.activities for c in counts)
        rows.append(f'<tr><td class="muted">all</td><td class="n count">{total:,}</td><td></td></tr>')
    return (
        '<table class="summary"><thead><tr><th>org</th><th>kind of action</th><th class="n">activities</th>'
        f'<th class="n">transactions</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _entry_row(entry: AuditEntry) -> str:
    who = _party(entry.actor)
    if entry.signer is not None:
        who = f"<b>signed by</b> {_party(entry.signer)}<br><b>sent by</b> {who}"
    count = f' <span class="count">×{entry.count:,}</span>' if entry.count > 1 else ""
    return (
        f"<tr><td>{escape(entry.time.strftime('%Y-%m-%d %H:%M:%S'))}<br>"
        f'<span class="muted">{entry.unix}</span></td>'
        f'<td class="n">{entry.block}<br><span class="muted">log {entry.log_index}</span></td>'
        f'<td class="mono">{escape(entry.tx_hash)}</td>'
        f"<td>{who}</td>"
        f"<td>{escape(entry.contract)}.{escape(entry.event)}<br><span class='muted'>{escape(entry.action)}</span></td>"
        f"<td>{escape(entry.summary)}{count}</td></tr>"
    )


def _meta(pairs: Sequence[tuple[str, str]]) -> str:
    return (
        '<table class="meta"><tbody>'
        + _rows(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs)
        + "</tbody></table>"
    )


def report_html(report: AuditReportPublic) -> str:
    """The whole report (every entry of `report.data`) as one HTML page."""
    span = report.range
    blocks = "no block falls in this range" if span.from_block is None else f"{span.from_block} .. {span.to_block}"
    title = f"Audit report {span.from_.strftime('%Y-%m-%d %H:%M:%S')} .. {span.to.strftime('%Y-%m-%d %H:%M:%S')}"
    contracts = "<br>".join(
        f'{escape(name)}: <span class="mono">{escape(address)}</span>' for name, address in report.contracts.items()
    )
    header = _meta(
        [
            ("range (Beijing time, UTC+8)", f"{escape(span.from_.isoformat())} .. {escape(span.to.isoformat())}"),
            ("range (unix seconds)", f"{span.from_unix} .. {span.to_unix}"),
            ("chain id", str(report.chain_id)),
            ("blocks", f"{blocks} (head {span.head_block}, deployed at {report.deploy_block})"),
            ("contracts", contracts),
            (
                "activity",
                f"{report.activity_count:,} events in {report.transaction_count:,} transactions, "
                f"{report.count:,} entries",
            ),
            ("produced", escape(report.produced_at.isoformat(timespec="seconds"))),
        ]
    )
    entries = _rows(_entry_row(entry) for entry in report.data)
    listing = (
        "<table><thead><tr><th>time (UTC+8) / unix</th><th class='n'>block</th><th>transaction</th>"
        f"<th>who (org, account, roles then)</th><th>event</th><th>what</th></tr></thead><tbody>{entries}</tbody>"
        "</table>"
        if report.data
        else "<p>No activity in this range.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head><body>
<h1>目录链 audit report (审计报告)</h1>
<p class="muted">Who did what, and when, read from the chain's logs: senders from the transactions, orgs and roles
as the Consortium's logs stood at each event; sharing decisions name the approver who signed them.</p>
{header}
<h2>Summary: activities per org and kind of action</h2>
<p class="muted">An org is the signer's for signed decisions (and the grants they bring into force), else the
sender's; (consortium vote) and (deployment) count the changes made by proposals and constructors, (automatic) the
grants of unconditional entries.</p>
{_summary_table(report)}
<section class="list"><h2>Chronological list</h2>
{listing}
</section>
</body></html>
"""
