"""The audit report of a time range: who did what, and when, read from the chain alone.

    time range --(block timestamps)--> block range --(eth_getLogs, EventDecoder)--> activities
    tx senders (eth_getTransactionByHash, batched)  +  members and roles replayed from the Consortium's logs

Each log becomes an activity with its time (Beijing and unix), block, transaction, log index, contract, event,
the sender with the org and roles it held at that point of the chain, the signer of a relayed decision, a subject
and a one-line summary. Logs of one kind that a transaction repeats (a bulk registration) make one entry with
their count. Neither the mirror nor the API is asked: the report is what an auditor checks them against.
`report_page` cuts the JSON into pages; `registry_api.audit.report_html` prints the whole report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from eth_utils import to_checksum_address

from chain_gateway.deployments import Deployment
from chain_gateway.errors import GatewayRPCError
from chain_gateway.rpc import JsonRpcClient, RpcErrorAnswer
from indexer.abi import DecodedLog, EventDecoder
from indexer.errors import ChainMovedError
from indexer.sync import RangeSizer, fetch_blocks
from registry_api.audit.report_events import EVENT_VIEWS, EventView, generic_view, short_address
from registry_api.audit.report_members import Members
from registry_api.audit.report_range import ReportRangeError, TimeWindow, block_range
from registry_api.schemas.audit_report import (
    ActionCount,
    AuditActivity,
    AuditEntry,
    AuditReportPublic,
    ReportParty,
    ReportRange,
)
from registry_api.stats import CITY_TZ

__all__ = [
    "AUTOMATIC",
    "CONSORTIUM_VOTE",
    "DEPLOYMENT",
    "Progress",
    "ReportTooLarge",
    "build_report",
    "fetch_logs",
    "report_page",
    "who",
]

Progress = Callable[[str, int, int], None]  # (phase "logs" | "transactions", done, total)

LOGS_RANGE_MAX = 50_000  # blocks per eth_getLogs at most (the range halves when the node refuses it)
TX_PER_BATCH = 50  # eth_getTransactionByHash per JSON-RPC batch (bulk registrations carry ~120 kB of calldata)
CONSORTIUM_VOTE = "(consortium vote)"  # who did a governed change, in the summary table
DEPLOYMENT = "(deployment)"  # who did what a constructor did
AUTOMATIC = "(automatic)"  # who made a grant that followed from no signed decision (an unconditional entry's)


class ReportTooLarge(ReportRangeError):
    """The range holds more events than the caller will keep in memory (code RANGE_TOO_LARGE)."""


def _ignore(phase: str, done: int, total: int) -> None:
    """No progress shown."""


def fetch_logs(
    rpc: JsonRpcClient,
    decoder: EventDecoder,
    addresses: Sequence[str],
    start: int,
    end: int,
    progress: Progress = _ignore,
    limit: int | None = None,
) -> list[DecodedLog]:
    """The decoded logs of `addresses` in blocks `start..end`, in chain order (removed logs left out); raises
    ReportTooLarge as soon as there are more than `limit`."""
    sizer = RangeSizer(max_range=LOGS_RANGE_MAX)
    logs: list[DecodedLog] = []
    first = start
    while start <= end:
        stop = sizer.end_for(start, end)
        try:
            raw = rpc.get_logs(addresses, start, stop)
        except GatewayRPCError:
            if stop > start and sizer.shrink():  # too many results or too slow: fewer blocks may pass
                continue
            raise
        sizer.record(stop - start + 1, len(raw))
        logs.extend(d for d in map(decoder.decode, (r for r in raw if not r.get("removed"))) if d is not None)
        if limit is not None and len(logs) > limit:
            raise ReportTooLarge(
                "RANGE_TOO_LARGE",
                f"the range holds more than {limit:,} events: ask for a shorter one, or run `dirchain audit report` "
                "where you are",
                "to",
            )
        progress("logs", stop - first + 1, end - first + 1)
        start = stop + 1
    return logs


def _senders(rpc: JsonRpcClient, tx_hashes: Sequence[str], progress: Progress) -> dict[str, str]:
    """tx hash -> checksum sender, by batched eth_getTransactionByHash."""
    senders: dict[str, str] = {}
    for i in range(0, len(tx_hashes), TX_PER_BATCH):
        chunk = tx_hashes[i : i + TX_PER_BATCH]
        for tx_hash, answer in zip(chunk, rpc.batch([("eth_getTransactionByHash", [h]) for h in chunk]), strict=True):
            if isinstance(answer, RpcErrorAnswer):
                raise answer
            if answer is None:
                raise ChainMovedError(f"transaction {tx_hash} is gone")
            senders[tx_hash] = to_checksum_address(answer["from"])
        progress("transactions", min(i + TX_PER_BATCH, len(tx_hashes)), len(tx_hashes))
    return senders


class _Names:
    """Names for summaries, from the replayed membership (see registry_api.audit.report_events.Names)."""

    def __init__(self, members: Members) -> None:
        self._members = members

    def org_code(self, org_id: int) -> str:
        return self._members.org_code(org_id)

    def account(self, address: str) -> str:
        return who(self._members.party(address), with_account=True)


def who(party: ReportParty, *, with_account: bool = False) -> str:
    """An account as a summary names it: its org (and address), or the address of no member org."""
    if party.org is None:
        return f"account {short_address(party.account)} (no member org)"
    return f"{short_address(party.account)} of {party.org}" if with_account else party.org


class _Builder:
    """Turns the range's logs, in chain order, into entries and the org x action counts."""

    def __init__(
        self, members: Members, deployment: Deployment, senders: dict[str, str], times: dict[int, int]
    ) -> None:
        self.members = members
        self.names = _Names(members)
        self.senders = senders
        self.times = times
        self.deploy_txs = {c["tx_hash"].lower(): name for name, c in deployment["contracts"].items()}
        self.entries: list[AuditEntry] = []
        self.counts: Counter[tuple[str | None, str]] = Counter()
        self.txs: dict[tuple[str | None, str], set[str]] = {}
        self._open: tuple[AuditEntry, EventView, list[DecodedLog]] | None = None
        self._signed: tuple[str, ReportParty] | None = None  # the last signed decision: (tx hash, signer)

    def add(self, log: DecodedLog) -> None:
        contract, _, event = log.key.partition(":")
        view = EVENT_VIEWS.get(log.key) or generic_view(contract, event)
        opened = self._open
        joins = opened is not None and view.many is not None and opened[1] is view and opened[0].tx_hash == log.tx_hash
        if not joins:
            self.close()  # before this log changes who is who: a group's summary names things as they were
        actor = self.members.party(self.senders[log.tx_hash])
        signer = self.members.party(log.args[view.signer]) if view.signer else None
        if signer is not None:
            self._signed = (log.tx_hash, signer)
        activity = AuditActivity(
            log_index=log.log_index,
            subject=view.subject(log.args),
            summary=self._summary(view, view.says(log.args, self.names), actor, signer, log.tx_hash),
            args=log.args,
        )
        if contract == "Consortium":
            self.members.apply(log)  # after the snapshot: an activity sees the roles from before it
        by = self._responsible(view, actor, signer, log.tx_hash)
        self.counts[(by, view.action)] += 1
        self.txs.setdefault((by, view.action), set()).add(log.tx_hash)
        if joins and opened is not None:
            entry, _, logs = opened
            logs.append(log)
            entry.activities.append(activity)
            entry.count += 1
            return
        unix = self.times[log.block_number]
        entry = AuditEntry(
            time=datetime.fromtimestamp(unix, CITY_TZ),
            unix=unix,
            block=log.block_number,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            contract=contract,
            event=event,
            action=view.action,
            actor=actor,
            signer=signer,
            subject=activity.subject,
            summary=activity.summary,
            count=1,
            activities=[activity],
        )
        self.entries.append(entry)
        self._open = (entry, view, [log])

    def close(self) -> None:
        """Finish the open entry: several activities get the group's summary ("registered 250 devices")."""
        if self._open is not None:
            entry, view, logs = self._open
            if view.many is not None and len(logs) > 1:
                said = view.many([x.args for x in logs], self.names)
                entry.summary = self._summary(view, said, entry.actor, None, entry.tx_hash)
            self._open = None

    def _responsible(self, view: EventView, actor: ReportParty, signer: ReportParty | None, tx_hash: str) -> str | None:
        if signer is not None:
            return signer.org
        if view.impersonal:  # it follows from the decision signed in the same transaction, if there is one
            return self._signed[1].org if self._signed is not None and self._signed[0] == tx_hash else AUTOMATIC
        if view.governed:
            return DEPLOYMENT if tx_hash.lower() in self.deploy_txs else CONSORTIUM_VOTE
        return actor.org

    def _summary(self, view: EventView, said: str, actor: ReportParty, signer: ReportParty | None, tx_hash: str) -> str:
        if view.impersonal:
            return said
        if signer is not None:
            title = "approver" if "APPROVER" in signer.roles else "signer"
            relayed = "" if signer.account == actor.account else f" (relayed by {who(actor, with_account=True)})"
            return f"{title} {short_address(signer.account)} of {signer.org or 'no member org'} {said}{relayed}"
        if view.governed:
            deployed = self.deploy_txs.get(tx_hash.lower())
            if deployed is not None:
                return f"{said} at the deployment of {deployed} (by {who(actor, with_account=True)})"
            return f"{said} by consortium vote (executed by {who(actor, with_account=True)})"
        return f"{who(actor)} {said}"

    def summary(self) -> list[ActionCount]:
        return [
            ActionCount(org=org, action=action, activities=n, transactions=len(self.txs[(org, action)]))
            for (org, action), n in sorted(self.counts.items(), key=lambda item: (item[0][0] or "~", item[0][1]))
        ]


def build_report(
    rpc: JsonRpcClient,
    deployment: Deployment,
    window: TimeWindow,
    *,
    progress: Progress = _ignore,
    produced_at: datetime | None = None,
    max_logs: int | None = None,
) -> AuditReportPublic:
    """The whole report of `window` (every entry in `data`; `report_page` cuts pages from it); ReportTooLarge if
    the range holds more than `max_logs` events (a report keeps ~3.5 kB per event in memory)."""
    head = rpc.block_number()
    deploy_block = deployment["deploy_block"]
    blocks = block_range(rpc, window, deploy_block, head)
    decoder = EventDecoder(deployment)
    consortium = deployment["contracts"]["Consortium"]["address"]
    members = Members()
    logs: list[DecodedLog] = []
    if blocks is not None:
        history_end = blocks[0] - 1
        for log in fetch_logs(rpc, decoder, [consortium], deploy_block, history_end):  # who was who before
            members.apply(log)
        logs = fetch_logs(rpc, decoder, decoder.addresses, blocks[0], blocks[1], progress, max_logs)
    times = {n: int(b["timestamp"], 16) for n, b in fetch_blocks(rpc, sorted({x.block_number for x in logs})).items()}
    senders = _senders(rpc, list(dict.fromkeys(x.tx_hash for x in logs)), progress)
    builder = _Builder(members, deployment, senders, times)
    for log in logs:
        builder.add(log)
    builder.close()
    return AuditReportPublic(
        range=ReportRange(
            from_=window.start_time,
            to=window.end_time,
            from_unix=window.start,
            to_unix=window.end,
            from_block=blocks[0] if blocks else None,
            to_block=blocks[1] if blocks else None,
            head_block=head,
        ),
        chain_id=deployment["chain_id"],
        deploy_block=deploy_block,
        contracts={name: c["address"] for name, c in deployment["contracts"].items()},
        produced_at=(produced_at or datetime.now(CITY_TZ)).astimezone(CITY_TZ),
        activity_count=len(logs),
        transaction_count=len(senders),
        summary=builder.summary(),
        count=len(builder.entries),
        limit=len(builder.entries),
        offset=0,
        data=builder.entries,
    )


def report_page(report: AuditReportPublic, limit: int, offset: int) -> AuditReportPublic:
    """The report with entries `offset..offset+limit` only (header and summary whole)."""
    return report.model_copy(update={"limit": limit, "offset": offset, "data": report.data[offset : offset + limit]})
