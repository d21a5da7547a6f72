"""One record audited against the chain: its trail of events, the mirror compared with it, and its state proved.

`audit_record(rpc, engine, deployment, kind, id)` works at the mirror's checkpoint block C, so the chain and the
mirror describe the same prefix of the chain:

1. the trail: the record's logs from the deployment block to C (eth_getLogs on its contract, filtered by its
   indexed id), decoded with `indexer.abi.EventDecoder`, each with block hash and time and the transaction's
   sender (the signer of the transaction; a sharing decision's own signer is its `approval`, proven by
   `registry_api.audit.approvals.decision_provenance`);
2. the record as the chain says it is: the trail replayed through the indexer's handlers (`trail_replay`), and
   compared with the mirror's main row field by field (`mirror_record`) and its history rows (`mirror_history`);
3. hashes recomputed from the mirrored record (`trail_hashes`) against the chain's;
4. the storage the record occupies (slots from the solc storage layout, `proof_layout`) proved at C with
   eth_getProof and verified locally against C's state root (`proofs`), decoded and compared with the mirror.

The checkpoint and the record's mirror rows are read in one read snapshot of the database, so a live indexer
moving on meanwhile changes nothing. The checks are in `trail_checks`; `verified` is true when every check passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from indexer.errors import ChainMovedError
from indexer.store import Checkpoint, Store
from indexer.verify import read_snapshot
from registry_api.audit.approvals import ApprovalAuditError, DecisionProvenance, decision_provenance
from registry_api.audit.proof_layout import StorageLayout, storage_layouts
from registry_api.audit.proofs import ProvenStorage, prove_storage
from registry_api.audit.trail_chain import AuditedChain
from registry_api.audit.trail_checks import Check, FieldCheck, compare_rows, fields_check
from registry_api.audit.trail_errors import MirrorNotSynced, RecordNotFound
from registry_api.audit.trail_kinds import KINDS, RecordKind, RecordRef, StateField, Tables, kind_named
from registry_api.audit.trail_replay import replay

__all__ = ["DECISION_EVENTS", "RecordAudit", "TrailEvent", "audit_record"]

ATTEMPTS = 3  # audits restarted when the chain reorganises under them
DECISION_EVENTS = frozenset({"SharingApproved", "SharingRefused", "SharingRevoked"})


@dataclass(frozen=True)
class TrailEvent:
    """One event of a record's trail, in chain coordinates, with the transaction's sender."""

    contract: str
    event: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    block_time: int
    tx_hash: str
    log_index: int
    signer: str | None  # the transaction's `from`
    approval: DecisionProvenance | None = None  # a sharing decision's provenance (registry_api.audit.approvals)


@dataclass
class RecordAudit:
    """The whole audit of one record at one block."""

    kind: str
    id: str
    contract: str
    address: str
    block_number: int
    block_hash: str
    state_root: str
    record: dict[str, Any] | None  # the mirror's main row
    chain_record: dict[str, Any] | None  # the main row as the trail replayed says it is
    trail: list[TrailEvent]
    checks: list[Check]
    proven: dict[str, Any] = field(default_factory=dict)  # the record's storage, decoded from the proven slots

    @property
    def verified(self) -> bool:
        return all(c.ok for c in self.checks)


def _trail(chain: AuditedChain, kind: RecordKind, ref: RecordRef) -> tuple[list[TrailEvent], Tables]:
    """The record's events in chain order, and the tables their replay through the indexer's handlers gives."""
    raw = sorted(kind.fetch(chain, ref), key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
    decoded = [d for d in map(chain.decoder.decode, raw) if d is not None]
    facts = chain.facts(raw)
    events: list[TrailEvent] = []
    for log in decoded:
        if facts.hashes.get(log.block_number) != log.block_hash:
            raise ChainMovedError(f"the log of block {log.block_number} is not on the chain any more")
        contract, name = log.key.split(":", 1)
        events.append(
            TrailEvent(contract, name, log.args, log.block_number, log.block_hash, facts.times[log.block_number],
                       log.tx_hash, log.log_index, facts.senders.get(log.tx_hash))
        )  # fmt: skip
    replayed = replay(decoded, facts.times, facts.senders)
    return events, {name: replayed.table(name) for name in (kind.table, *kind.history)}


def _prove(
    chain: AuditedChain, layout: StorageLayout, contract: str, fields: list[StateField], state_root: str
) -> ProvenStorage:
    """Prove every slot of `fields`, then the data slots of long strings found in them."""
    address = chain.address(contract)
    slots = list(dict.fromkeys(s for f in fields for s in layout.slots(f.location)))
    proven = prove_storage(chain.rpc, address, slots, chain.block_number, state_root)
    words = proven.words()
    extra = [
        s
        for f in fields
        if layout.encoding(f.location.type_id) == "bytes"
        for s in layout.string_slots(f.location, words.get(f.location.slot, 0))
    ]
    if extra and proven.account_error is None:
        more = prove_storage(chain.rpc, address, extra, chain.block_number, state_root)
        proven.slots.update(more.slots)
        proven.account_error = more.account_error
    return proven


def _state_checks(
    layout: StorageLayout, fields: list[StateField], proven: ProvenStorage, state_root: str
) -> tuple[list[Check], dict[str, Any]]:
    account = Check(
        "account_proof",
        proven.account_error is None,
        proven.account_error
        or f"{proven.address} proven under the state root of block {proven.block_number}; its storage root is "
        f"{None if proven.account is None else proven.account.storage_hash}",
        expected=state_root,
    )
    slot_fields = [
        FieldCheck(hex(p.slot), None if p.claimed is None else hex(p.claimed),
                   None if p.proven is None else hex(p.proven), p.ok)
        for p in proven.slots.values()
    ]  # fmt: skip
    bad = [f.field for f in slot_fields if not f.ok]
    storage = Check(
        "storage_proof",
        not bad and proven.account_error is None,
        f"{len(slot_fields)} storage slots proven under the account's storage root"
        if not bad
        else f"{len(bad)} of {len(slot_fields)} storage proofs do not verify: "
        + "; ".join(p.error or "" for p in proven.slots.values() if not p.ok),
        fields=slot_fields,
    )
    words, values = proven.words(), {}
    for f in fields:
        needed = layout.slots(f.location)
        if layout.encoding(f.location.type_id) == "bytes":
            needed += layout.string_slots(f.location, words.get(f.location.slot, 0))
        values[f.field] = layout.decode(f.location, words) if all(s in words for s in needed) else None
    state = fields_check(
        "proven_state",
        "the proven storage against the mirror",
        ((f.field, values[f.field], f.mirror_value) for f in fields),
    )
    return [account, storage, state], values


def _onchain(kind: RecordKind, values: Mapping[str, Any], chain_row: Mapping[str, Any] | None) -> dict[str, Any]:
    """Hashes the chain holds: proven storage where it verified, else the chain's own events."""
    onchain = {k: v for k, v in values.items() if v is not None}
    for label, column in kind.onchain_columns.items():
        if label not in onchain and chain_row is not None:
            onchain[label] = chain_row.get(column)
    return onchain


def _approvals(events: list[TrailEvent], rpc: JsonRpcClient, deployment: Deployment) -> tuple[list[TrailEvent], Check]:
    """Each sharing decision of the trail with its provenance, and whether every one verified."""
    bad: list[str] = []
    proved: list[TrailEvent] = []
    for event in events:
        if event.event not in DECISION_EVENTS:
            proved.append(event)
            continue
        where = f"{event.tx_hash}#{event.log_index}"
        try:
            approval = decision_provenance(rpc, deployment, event.tx_hash, event.log_index)
        except ApprovalAuditError as exc:  # the node lost the transaction the log names: a finding
            bad.append(f"{where} ({exc})")
            proved.append(event)
            continue
        if not approval.verified:
            bad.append(where)
        proved.append(replace(event, approval=approval))
    count = sum(1 for e in events if e.event in DECISION_EVENTS)
    message = (
        f"{count} signed decisions: each signer recovered and an APPROVER of the owner org at its block"
        if not bad
        else f"{len(bad)} of {count} signed decisions do not verify: {', '.join(bad)}"
    )
    return proved, Check("approval_provenance", not bad, message)


def _checkpoint_check(header: Mapping[str, Any], checkpoint: Checkpoint) -> Check:
    ok = header["hash"] == checkpoint.block_hash
    message = (
        f"the mirror's checkpoint is block {checkpoint.block_number} of this chain"
        if ok
        else f"the mirror's checkpoint block {checkpoint.block_number} is not this chain's (a fork or a reorg)"
    )
    return Check("checkpoint", ok, message, expected=header["hash"], actual=checkpoint.block_hash)


def _record_check(kind: RecordKind, chain_row: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> Check:
    columns = [c for c in (record or chain_row or {}) if c != "id"]
    check = fields_check(
        "mirror_record",
        f"the mirror's {kind.table} row against the trail replayed",
        (
            (c, None if chain_row is None else chain_row.get(c), None if record is None else record.get(c))
            for c in columns
        ),
    )
    if record is None:
        return Check(check.name, False, "the chain has this record and the mirror does not", fields=check.fields)
    if chain_row is None:
        return Check(check.name, False, "the mirror has this record and the chain does not", fields=check.fields)
    return check


def _audit_once(
    rpc: JsonRpcClient, engine: Engine, deployment: Deployment, kind: RecordKind, record_id: str
) -> RecordAudit:
    layouts = storage_layouts(tuple(sorted({k.contract for k in KINDS.values()})))
    with read_snapshot(engine) as conn:  # the checkpoint and the record's rows as of one state of the mirror
        checkpoint = Store(engine).read_checkpoint(conn)
        if checkpoint is None:
            raise MirrorNotSynced()
        chain = AuditedChain(rpc, deployment, layouts, checkpoint.block_number)
        ref = kind.resolve(chain, conn, record_id)
        mirror = kind.mirror(conn, ref)
    header = chain.header()
    events, chain_tables = _trail(chain, kind, ref)
    record = (mirror.get(kind.table) or [None])[0]
    chain_row = (chain_tables.get(kind.table) or [None])[0]
    if record is None and chain_row is None and not events:
        raise RecordNotFound(kind.name, record_id)

    checks = [
        _checkpoint_check(header, checkpoint),
        _record_check(kind, chain_row, record),
        compare_rows("mirror_history", "the history rows against the trail", chain_tables, mirror, kind.history),
    ]
    layout = layouts[kind.contract]
    fields = kind.state(layout, ref, mirror)
    proven = _prove(chain, layout, kind.contract, fields, header["stateRoot"])
    state_checks, values = _state_checks(layout, fields, proven, header["stateRoot"])
    checks += kind.hash_checks(deployment, mirror, chain_tables, _onchain(kind, values, chain_row))
    checks += state_checks
    if any(e.event in DECISION_EVENTS for e in events):
        events, approvals = _approvals(events, rpc, deployment)
        checks.append(approvals)
    return RecordAudit(
        kind=kind.name,
        id=record_id,
        contract=kind.contract,
        address=chain.address(kind.contract),
        block_number=checkpoint.block_number,
        block_hash=header["hash"],
        state_root=header["stateRoot"],
        record=record,
        chain_record=chain_row,
        trail=events,
        checks=checks,
        proven=values,
    )


def audit_record(rpc: JsonRpcClient, engine: Engine, deployment: Deployment, kind: str, record_id: str) -> RecordAudit:
    """Audit the record `kind`/`record_id` at the mirror's checkpoint; see the module docstring.

    Raises UnknownKind, InvalidRecordId, RecordNotFound, MirrorNotSynced (`trail_errors`), GatewayRPCError when
    the node fails, and ChainMovedError when the chain keeps reorganising under the audit.
    """
    record_kind = kind_named(kind)
    record_kind.parse(record_id)  # a bad id is the caller's error before any chain or database read
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _audit_once(rpc, engine, deployment, record_kind, record_id)
        except ChainMovedError:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")
