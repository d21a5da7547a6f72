"""One handler per event, keyed "Contract:Event" (Ponder's model), each writing the mirror through a `Batch`.

Invariants:
- A handler is a pure function of the decoded log, the rows it reads and the block facts (time, sender):
  replaying the same logs in chain order gives the same rows, which is what reorg rewinds and the
  "equals a fresh replay" checks rely on.
- Every device event appends one `device_events` row (args as JSON, enums by name) and stamps the device's
  `updated_block`/`updated_tx_hash`; roles are stored by name and a revocation deletes the row.
- Catalog: `catalog_entries` holds the current version of each entry, `catalog_entry_versions` every version's
  full record, `catalog_lineage` and `catalog_search` are derived from the current version and rewritten on
  each revision. Sharing: `sharing_requests` holds each request's state, `sharing_approvals` every signed
  decision relayed on-chain (approve, refuse, revoke). "Expired" is never stored: readers compare
  `expires_at` with the time.
- Algorithm center: `algorithms` holds each algorithm's record, status and latest evaluation,
  `algorithm_evaluations` every evaluation in chain order, `entry_algorithms` the admissions in force (a
  withdrawal deletes the row; whether an admission counts is decided by readers joining the algorithm's
  status). `receipt_batches` holds every anchored batch of data-zone usage receipts (append-only).
- Joint review: `projects` holds each project's state, `project_devices` its planned devices exactly as filed
  (append-only, written in the filing block: the approval re-sends them), `review_leads` the lead org of each
  domain. The approved devices reach `devices` through the DeviceRegistered events of the approval.
- Carriers: `carriers` holds each carrier with its capacity and usage (a grant's CarrierUsageChanged moves the
  usage), `carrier_reuse_requests` each reuse request's state.
- Events without a handler (RoleAdminChanged, ThresholdChanged, ...) are skipped: the mirror holds no state
  for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from eth_utils import keccak

from indexer.abi import DecodedLog

__all__ = [
    "ALGORITHM_STATUSES",
    "CARRIER_KINDS",
    "ENTRY_STATUSES",
    "FORM_NAMES",
    "HANDLERS",
    "INSPECTION_RESULTS",
    "LIFECYCLE_ACTIONS",
    "ORG_KINDS",
    "PREFETCH",
    "PROJECT_STATUSES",
    "REQUEST_STATUSES",
    "REUSE_STATUSES",
    "REVIEW_DOMAINS",
    "ROLE_NAMES",
    "DEVICE_STATUSES",
    "SHARE_CONDITIONS",
    "Handler",
    "HandlerContext",
    "carrier_attribute",
    "compact_json",
    "NEEDS_BLOCK_FACTS",
    "form_names",
    "role_name",
    "search_text",
]

# Enum member names in declaration order (contracts/interfaces/*.sol).
ORG_KINDS = ("none", "department", "district", "company", "auditor")
DEVICE_STATUSES = ("none", "planned", "active", "suspended", "replaced", "retired")
LIFECYCLE_ACTIONS = ("activate", "suspend", "resume", "upgrade", "replace", "retire")
INSPECTION_RESULTS = ("passed", "issues", "failed")
SHARE_CONDITIONS = ("unconditional", "conditional", "not_shareable")
ENTRY_STATUSES = ("none", "draft", "published", "deprecated")
REQUEST_STATUSES = ("none", "pending", "granted", "refused", "revoked")
ALGORITHM_STATUSES = ("none", "submitted", "evaluated", "listed", "delisted")
REVIEW_DOMAINS = ("imagery", "city_management", "emergency", "other")
PROJECT_STATUSES = ("none", "filed", "approved", "refused", "withdrawn")
CARRIER_KINDS = ("pole", "mount", "cabinet", "building")
REUSE_STATUSES = ("none", "requested", "granted", "refused", "withdrawn")
# Form bits of DataCatalog (FORM_RAW, FORM_DESENSITIZED, FORM_RESULT_ONLY) and their names, in bit order.
FORM_NAMES: dict[int, str] = {1: "raw", 2: "desensitized", 4: "result_only"}

_ROLES = ("ADMIN", "REGISTRAR", "REVIEWER", "APPROVER", "AUDITOR", "RELAYER")
ROLE_NAMES: dict[str, str] = {"0x" + keccak(text=name).hex(): name for name in _ROLES}
ROLE_NAMES["0x" + "00" * 32] = "DEFAULT_ADMIN"

_STDLIB_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one encoder, not one per call


def compact_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept: orjson (~5x faster), or the standard encoder where orjson refuses (ints
    beyond 64 bits, lone surrogates). Both give the same text for everything else, so mirrors stay equal."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _STDLIB_JSON(value)


# Enum-typed arguments of device events, rendered by name in `device_events.data`.
_DEVICE_ENUMS: dict[str, tuple[str, ...]] = {
    "status": DEVICE_STATUSES,
    "fromStatus": DEVICE_STATUSES,
    "toStatus": DEVICE_STATUSES,
    "action": LIFECYCLE_ACTIONS,
    "result": INSPECTION_RESULTS,
}


class HandlerContext(Protocol):
    """What a handler may do: read and write projection rows, append history, look up block facts."""

    block_number: int

    def get(self, table_name: str, key: tuple[Any, ...]) -> dict[str, Any] | None: ...
    def put(self, table_name: str, row: dict[str, Any]) -> None: ...
    def insert(self, table_name: str, row: dict[str, Any]) -> None: ...
    def delete(self, table_name: str, key: tuple[Any, ...]) -> None: ...
    def append(self, table_name: str, row: dict[str, Any]) -> None: ...
    def sender(self, tx_hash: str) -> str | None: ...
    def block_time(self, number: int) -> int: ...


Handler = Callable[[DecodedLog, HandlerContext], None]


def role_name(role: str) -> str:
    """The name of an AccessControl role id (0x-hex); unknown ids stay hex."""
    return ROLE_NAMES.get(role.lower(), role.lower())


def _enum(names: tuple[str, ...], value: int) -> str:
    if not 0 <= value < len(names):
        raise ValueError(f"enum value {value} out of range for {names}")
    return names[value]


def form_names(mask: int) -> list[str]:
    """The names of the forms in a form bit set, in bit order (unknown bits are an error)."""
    if mask & ~sum(FORM_NAMES):
        raise ValueError(f"form bit set {mask} has unknown bits")
    return [name for bit, name in FORM_NAMES.items() if mask & bit]


def _form_name(bit: int) -> str:
    if bit not in FORM_NAMES:
        raise ValueError(f"form {bit} is not one form bit")
    return FORM_NAMES[bit]


def _schema_field_names(schema: str) -> list[str]:
    """The field names of a schema JSON `{"fields": [{"name": ...}, ...]}`; none if it has another shape."""
    try:
        parsed = orjson.loads(schema)  # not json.loads: chain text nested ~100k deep would crash the process
    except ValueError:
        return []
    fields = parsed.get("fields") if isinstance(parsed, dict) else None
    if not isinstance(fields, list):
        return []
    return [f["name"] for f in fields if isinstance(f, dict) and isinstance(f.get("name"), str) and f["name"]]


def search_text(title: str, classification: str, schema: str) -> str:
    """The text searched for an entry: title, classification and schema field names, one line each."""
    return "\n".join((title, classification, " ".join(_schema_field_names(schema))))


# ---------------------------------------------------------------- Consortium


def member_admitted(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.insert(
        "members",
        {
            "org_id": a["orgId"],
            "code": a["code"],
            "name": a["name"],
            "kind": _enum(ORG_KINDS, a["kind"]),
            "active": True,
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def member_status_changed(log: DecodedLog, ctx: HandlerContext) -> None:
    row = ctx.get("members", (log.args["orgId"],))
    if row is None:
        raise ValueError(f"MemberStatusChanged for unknown org {log.args['orgId']}")
    row.update(active=log.args["active"], block_number=log.block_number, tx_hash=log.tx_hash)
    ctx.put("members", row)


def account_added(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.insert(
        "accounts",
        {
            "address": log.args["account"],
            "org_id": log.args["orgId"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def role_granted(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.put(
        "account_roles",
        {
            "address": log.args["account"],
            "role": role_name(log.args["role"]),
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def role_revoked(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.delete("account_roles", (log.args["account"], role_name(log.args["role"])))


def proposal_created(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.insert(
        "proposals",
        {
            "proposal_id": a["proposalId"],
            "proposer": a["proposer"],
            "proposer_org_id": a["proposerOrg"],
            "target": a["target"],
            "data": a["data"],
            "description": a["description"],
            "votes": 0,
            "executed": False,
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
            "updated_block": log.block_number,
            "updated_tx_hash": log.tx_hash,
        },
    )


def _touch_proposal(log: DecodedLog, ctx: HandlerContext, **changes: Any) -> None:
    row = ctx.get("proposals", (log.args["proposalId"],))
    if row is None:
        raise ValueError(f"{log.key} for unknown proposal {log.args['proposalId']}")
    row.update(changes, updated_block=log.block_number, updated_tx_hash=log.tx_hash)
    ctx.put("proposals", row)


def proposal_voted(log: DecodedLog, ctx: HandlerContext) -> None:
    _touch_proposal(log, ctx, votes=log.args["votes"])


def proposal_executed(log: DecodedLog, ctx: HandlerContext) -> None:
    _touch_proposal(log, ctx, executed=True)


# ---------------------------------------------------------------- DeviceRegistry


def code_rule_set(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.put(
        "code_rules",
        {
            "type_id": a["typeId"],
            "type_name": a["typeName"],
            "prefix": a["prefix"],
            "length": a["length"],
            "charset": a["charset"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def _device_event(log: DecodedLog, ctx: HandlerContext, event: str) -> None:
    data = dict(log.args)
    for name in _DEVICE_ENUMS.keys() & data.keys():
        data[name] = _enum(_DEVICE_ENUMS[name], data[name])
    ctx.append(
        "device_events",
        {
            "code": log.args["code"],
            "event": event,
            "block_number": log.block_number,
            "block_hash": log.block_hash,
            "block_time": ctx.block_time(log.block_number),
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
            "sender": ctx.sender(log.tx_hash),
            "data": compact_json(data),
        },
    )


def _device(log: DecodedLog, ctx: HandlerContext) -> dict[str, Any]:
    row = ctx.get("devices", (log.args["code"],))
    if row is None:
        raise ValueError(f"{log.key} for unknown device {log.args['code']!r}")
    row["updated_block"] = log.block_number
    row["updated_tx_hash"] = log.tx_hash
    return row


def device_registered(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.insert(
        "devices",
        {
            "code": a["code"],
            "type_id": a["typeId"],
            "owner_org_id": a["ownerOrg"],
            "status": _enum(DEVICE_STATUSES, a["status"]),
            "district": a["district"],
            "lat_e6": a["lat"],
            "lon_e6": a["lon"],
            "built_at": a["builtAt"],
            "attributes": a["attributes"],
            "attributes_hash": a["attributesHash"],
            "replaced_by": None,
            "last_inspected_at": None,
            "tx_hash": log.tx_hash,
            "block_number": log.block_number,
            "updated_block": log.block_number,
            "updated_tx_hash": log.tx_hash,
        },
    )
    _device_event(log, ctx, "DeviceRegistered")


def device_updated(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    row = _device(log, ctx)
    row.update(
        district=a["district"],
        lat_e6=a["lat"],
        lon_e6=a["lon"],
        attributes=a["attributes"],
        attributes_hash=a["attributesHash"],
    )
    ctx.put("devices", row)
    _device_event(log, ctx, "DeviceUpdated")


def device_lifecycle_changed(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    row = _device(log, ctx)
    row["status"] = _enum(DEVICE_STATUSES, a["toStatus"])
    if a["replacedBy"]:
        row["replaced_by"] = a["replacedBy"]
    ctx.put("devices", row)
    _device_event(log, ctx, "DeviceLifecycleChanged")


def device_inspected(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    row = _device(log, ctx)
    row["last_inspected_at"] = a["inspectedAt"]
    ctx.put("devices", row)
    ctx.append(
        "inspections",
        {
            "code": a["code"],
            "result": _enum(INSPECTION_RESULTS, a["result"]),
            "inspected_at": a["inspectedAt"],
            "report_hash": a["reportHash"],
            "note": a["note"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
        },
    )
    _device_event(log, ctx, "DeviceInspected")


# ---------------------------------------------------------------- DataCatalog


def _lineage_refs(device_codes: list[str], upstream: list[int]) -> dict[tuple[str, str], int]:
    """(kind, ref) -> position of a version's lineage; a reference listed twice keeps its first position."""
    refs: dict[tuple[str, str], int] = {}
    for position, code in enumerate(device_codes):
        refs.setdefault(("device", code), position)
    for position, entry_id in enumerate(upstream):
        refs.setdefault(("entry", str(entry_id)), position)
    return refs


def catalog_entry_versioned(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    entry_id = a["entryId"]
    title, classification, grade, condition, forms, schema, device_codes, upstream = a["entry"]
    record = {
        "owner_org_id": a["ownerOrg"],
        "title": title,
        "classification": classification,
        "grade": grade,
        "share_condition": _enum(SHARE_CONDITIONS, condition),
        "forms": compact_json(form_names(forms)),
        "forms_mask": forms,
        "schema": schema,
        "schema_hash": "0x" + keccak(text=schema).hex(),
        "device_codes": compact_json(device_codes),
        "upstream": compact_json(upstream),
        "major": a["major"],
        "minor": a["minor"],
        "version_hash": a["versionHash"],
    }
    row = ctx.get("catalog_entries", (entry_id,))
    if row is None:
        old_refs: dict[tuple[str, str], int] = {}
        row = {
            "entry_id": entry_id,
            "status": "draft",  # createEntry sets Draft before recording version 1.0
            "created_block": log.block_number,
            "created_tx_hash": log.tx_hash,
        }
    else:
        old_refs = _lineage_refs(json.loads(row["device_codes"]), json.loads(row["upstream"]))
    row.update(record, updated_block=log.block_number, updated_tx_hash=log.tx_hash)
    ctx.put("catalog_entries", row)

    new_refs = _lineage_refs(device_codes, upstream)
    for kind, ref in old_refs.keys() - new_refs.keys():
        ctx.delete("catalog_lineage", (entry_id, kind, ref))
    for (kind, ref), position in new_refs.items():
        ctx.put(
            "catalog_lineage",
            {
                "entry_id": entry_id,
                "kind": kind,
                "ref": ref,
                "position": position,
                "block_number": log.block_number,
                "tx_hash": log.tx_hash,
            },
        )
    ctx.put(
        "catalog_search",
        {"entry_id": entry_id, "text": search_text(title, classification, schema), "block_number": log.block_number},
    )
    ctx.append(
        "catalog_entry_versions",
        {
            "entry_id": entry_id,
            **record,
            "block_number": log.block_number,
            "block_time": ctx.block_time(log.block_number),
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
            "sender": ctx.sender(log.tx_hash),
        },
    )


def catalog_entry_status_changed(log: DecodedLog, ctx: HandlerContext) -> None:
    row = ctx.get("catalog_entries", (log.args["entryId"],))
    if row is None:
        raise ValueError(f"CatalogEntryStatusChanged for unknown entry {log.args['entryId']}")
    row.update(
        status=_enum(ENTRY_STATUSES, log.args["toStatus"]), updated_block=log.block_number, updated_tx_hash=log.tx_hash
    )
    ctx.put("catalog_entries", row)


# ---------------------------------------------------------------- SharingAgreements


def sharing_requested(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.insert(
        "sharing_requests",
        {
            "request_id": a["requestId"],
            "entry_id": a["entryId"],
            "requester_org_id": a["requesterOrg"],
            "owner_org_id": a["ownerOrg"],
            "requester": a["requester"],
            "form": _form_name(a["form"]),
            "purpose": a["purpose"],
            "duration": a["duration"],
            "approvals_needed": a["approvalsNeeded"],
            "approvals": 0,
            "status": "pending",
            "requested_at": ctx.block_time(log.block_number),
            "granted_at": None,
            "expires_at": None,
            "refusal_reason": None,
            "revocation_reason": None,
            "closed_at": None,
            "closed_tx_hash": None,
            "request_tx_hash": log.tx_hash,
            "request_block": log.block_number,
            "grant_tx_hash": None,
            "grant_block": None,
            "updated_block": log.block_number,
            "updated_tx_hash": log.tx_hash,
        },
    )


def _request(log: DecodedLog, ctx: HandlerContext) -> dict[str, Any]:
    row = ctx.get("sharing_requests", (log.args["requestId"],))
    if row is None:
        raise ValueError(f"{log.key} for unknown request {log.args['requestId']}")
    row["updated_block"] = log.block_number
    row["updated_tx_hash"] = log.tx_hash
    return row


def _decision(log: DecodedLog, ctx: HandlerContext, decision: str, approvals_after: int) -> None:
    a = log.args
    ctx.append(
        "sharing_approvals",
        {
            "request_id": a["requestId"],
            "approver": a["approver"],
            "owner_org_id": a["ownerOrg"],
            "decision": decision,
            "approvals_after": approvals_after,
            "nonce": str(a["nonce"]),
            "reason": a.get("reason", ""),
            "block_number": log.block_number,
            "block_time": ctx.block_time(log.block_number),
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
            "sender": ctx.sender(log.tx_hash),
        },
    )


def sharing_approved(log: DecodedLog, ctx: HandlerContext) -> None:
    row = _request(log, ctx)
    row["approvals"] = log.args["approvals"]
    ctx.put("sharing_requests", row)
    _decision(log, ctx, "approve", log.args["approvals"])


def sharing_granted(log: DecodedLog, ctx: HandlerContext) -> None:
    row = _request(log, ctx)
    row.update(
        status="granted",
        granted_at=log.args["grantedAt"],
        expires_at=log.args["expiresAt"],
        grant_tx_hash=log.tx_hash,
        grant_block=log.block_number,
    )
    ctx.put("sharing_requests", row)


def sharing_refused(log: DecodedLog, ctx: HandlerContext) -> None:
    row = _request(log, ctx)
    row.update(
        status="refused",
        refusal_reason=log.args["reason"],
        closed_at=ctx.block_time(log.block_number),
        closed_tx_hash=log.tx_hash,
    )
    ctx.put("sharing_requests", row)
    _decision(log, ctx, "refuse", row["approvals"])


def sharing_revoked(log: DecodedLog, ctx: HandlerContext) -> None:
    row = _request(log, ctx)
    row.update(
        status="revoked",
        revocation_reason=log.args["reason"],
        closed_at=ctx.block_time(log.block_number),
        closed_tx_hash=log.tx_hash,
    )
    ctx.put("sharing_requests", row)
    _decision(log, ctx, "revoke", row["approvals"])


def approval_threshold_set(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.put(
        "approval_thresholds",
        {
            "grade": log.args["grade"],
            "approvals": log.args["approvals"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


# ---------------------------------------------------------------- AlgorithmRegistry


def algorithm_submitted(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    name, version, code_hash, outputs = a["input"]
    at = ctx.block_time(log.block_number)
    ctx.insert(
        "algorithms",
        {
            "algorithm_id": a["algorithmId"],
            "name": name,
            "version": version,
            "code_hash": code_hash,
            "outputs": outputs,
            "input_hash": a["inputHash"],
            "submitter_org_id": a["submitterOrg"],
            "submitter": a["submitter"],
            "status": "submitted",
            "status_reason": "",
            "score": None,
            "report_hash": None,
            "submitted_block": log.block_number,
            "submitted_tx_hash": log.tx_hash,
            "submitted_at": at,
            "updated_block": log.block_number,
            "updated_tx_hash": log.tx_hash,
            "updated_at": at,
        },
    )


def _algorithm(log: DecodedLog, ctx: HandlerContext) -> dict[str, Any]:
    row = ctx.get("algorithms", (log.args["algorithmId"],))
    if row is None:
        raise ValueError(f"{log.key} for unknown algorithm {log.args['algorithmId']}")
    row.update(updated_block=log.block_number, updated_tx_hash=log.tx_hash, updated_at=ctx.block_time(log.block_number))
    return row


def algorithm_evaluated(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    row = _algorithm(log, ctx)
    row.update(score=a["score"], report_hash=a["reportHash"])
    ctx.put("algorithms", row)
    ctx.append(
        "algorithm_evaluations",
        {
            "algorithm_id": a["algorithmId"],
            "reviewer_org_id": a["reviewerOrg"],
            "reviewer": a["reviewer"],
            "report_hash": a["reportHash"],
            "score": a["score"],
            "passed": a["passed"],
            "block_number": log.block_number,
            "block_time": ctx.block_time(log.block_number),
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
        },
    )


def algorithm_status_changed(log: DecodedLog, ctx: HandlerContext) -> None:
    row = _algorithm(log, ctx)
    row.update(status=_enum(ALGORITHM_STATUSES, log.args["toStatus"]), status_reason=log.args["reason"])
    ctx.put("algorithms", row)


def algorithm_admitted(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.put(
        "entry_algorithms",
        {
            "entry_id": a["entryId"],
            "algorithm_id": a["algorithmId"],
            "owner_org_id": a["ownerOrg"],
            "admitted_by": a["by"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def algorithm_withdrawn(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.delete("entry_algorithms", (log.args["entryId"], log.args["algorithmId"]))


def usage_receipts_anchored(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.append(
        "receipt_batches",
        {
            "batch_id": a["batchId"],
            "relayer_org_id": a["relayerOrg"],
            "relayer": a["relayer"],
            "merkle_root": a["merkleRoot"],
            "first_receipt": a["firstReceipt"],
            "last_receipt": a["lastReceipt"],
            "block_number": log.block_number,
            "block_time": ctx.block_time(log.block_number),
            "tx_hash": log.tx_hash,
            "log_index": log.log_index,
        },
    )


# ---------------------------------------------------------------- ReviewBoard


def lead_org_set(log: DecodedLog, ctx: HandlerContext) -> None:
    ctx.put(
        "review_leads",
        {
            "domain": _enum(REVIEW_DOMAINS, log.args["domain"]),
            "org_id": log.args["orgId"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
        },
    )


def carrier_attribute(attributes: str) -> str | None:
    """The `carrier` attribute of a planned device when it is a non-empty string (the carrier it will be mounted on)."""
    try:
        parsed = orjson.loads(attributes)  # stops at 1024 levels, where json.loads would overflow the C stack
    except ValueError:
        return None
    carrier = parsed.get("carrier") if isinstance(parsed, dict) else None
    return carrier if isinstance(carrier, str) and carrier else None


def project_filed(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    project_id = a["projectId"]
    ctx.insert(
        "projects",
        {
            "project_id": project_id,
            "applicant_org_id": a["applicantOrg"],
            "applicant": a["applicant"],
            "domain": _enum(REVIEW_DOMAINS, a["domain"]),
            "title": a["title"],
            "status": "filed",
            "device_count": len(a["devices"]),
            "devices_hash": a["devicesHash"],
            "reviewer_org_id": None,
            "reviewer": None,
            "reason": "",
            "filed_at": ctx.block_time(log.block_number),
            "closed_at": None,
            "filed_block": log.block_number,
            "filed_tx_hash": log.tx_hash,
            "closed_block": None,
            "closed_tx_hash": None,
        },
    )
    for position, (code, type_id, _, district, lat, lon, built_at, attributes) in enumerate(a["devices"]):
        ctx.append(
            "project_devices",
            {
                "project_id": project_id,
                "position": position,
                "code": code,
                "type_id": type_id,
                "district": district,
                "lat_e6": lat,
                "lon_e6": lon,
                "built_at": built_at,
                "attributes": attributes,
                "attributes_hash": "0x" + keccak(text=attributes).hex(),
                "carrier": carrier_attribute(attributes),
                "block_number": log.block_number,
                "tx_hash": log.tx_hash,
            },
        )


def _close(log: DecodedLog, ctx: HandlerContext, table_name: str, key: int, **changes: Any) -> None:
    """Close a project or reuse request: its new status and fields, with the closing block, tx and time."""
    row = ctx.get(table_name, (key,))
    if row is None:
        raise ValueError(f"{log.key} for unknown {table_name} row {key}")
    row.update(
        changes,
        closed_at=ctx.block_time(log.block_number),
        closed_block=log.block_number,
        closed_tx_hash=log.tx_hash,
    )
    ctx.put(table_name, row)


def project_decided(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    _close(
        log,
        ctx,
        "projects",
        a["projectId"],
        status="approved" if a["approved"] else "refused",
        reviewer_org_id=a["reviewerOrg"],
        reviewer=a["reviewer"],
        reason=a["reason"],
    )


def project_withdrawn(log: DecodedLog, ctx: HandlerContext) -> None:
    _close(log, ctx, "projects", log.args["projectId"], status="withdrawn")


# ---------------------------------------------------------------- CarrierRegistry


def carrier_registered(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    code, kind, district, lat, lon, slots, ports, attributes = a["carrier"]
    ctx.insert(
        "carriers",
        {
            "code": code,
            "carrier_hash": a["carrierHash"],
            "owner_org_id": a["ownerOrg"],
            "kind": _enum(CARRIER_KINDS, kind),
            "district": district,
            "lat_e6": lat,
            "lon_e6": lon,
            "slots": slots,
            "slots_used": 0,
            "ports": ports,
            "ports_used": 0,
            "attributes": attributes,
            "attributes_hash": a["attributesHash"],
            "registered_by": a["by"],
            "block_number": log.block_number,
            "tx_hash": log.tx_hash,
            "updated_block": log.block_number,
            "updated_tx_hash": log.tx_hash,
        },
    )


def carrier_usage_changed(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    row = ctx.get("carriers", (a["code"],))
    if row is None:
        raise ValueError(f"CarrierUsageChanged for unknown carrier {a['code']!r}")
    row.update(
        slots_used=a["slotsUsed"],
        ports_used=a["portsUsed"],
        updated_block=log.block_number,
        updated_tx_hash=log.tx_hash,
    )
    ctx.put("carriers", row)


def carrier_reuse_requested(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    ctx.insert(
        "carrier_reuse_requests",
        {
            "request_id": a["requestId"],
            "carrier_code": a["code"],
            "requester_org_id": a["requesterOrg"],
            "owner_org_id": a["ownerOrg"],
            "requester": a["requester"],
            "slots": a["slots"],
            "ports": a["ports"],
            "purpose": a["purpose"],
            "status": "requested",
            "reason": "",
            "decided_by": None,
            "requested_at": ctx.block_time(log.block_number),
            "closed_at": None,
            "request_block": log.block_number,
            "request_tx_hash": log.tx_hash,
            "closed_block": None,
            "closed_tx_hash": None,
        },
    )


def carrier_reuse_decided(log: DecodedLog, ctx: HandlerContext) -> None:
    a = log.args
    status = "granted" if a["granted"] else "refused"
    _close(log, ctx, "carrier_reuse_requests", a["requestId"], status=status, reason=a["reason"], decided_by=a["by"])


def carrier_reuse_withdrawn(log: DecodedLog, ctx: HandlerContext) -> None:
    _close(log, ctx, "carrier_reuse_requests", log.args["requestId"], status="withdrawn", decided_by=log.args["by"])


HANDLERS: dict[str, Handler] = {
    "Consortium:MemberAdmitted": member_admitted,
    "Consortium:MemberStatusChanged": member_status_changed,
    "Consortium:AccountAdded": account_added,
    "Consortium:RoleGranted": role_granted,
    "Consortium:RoleRevoked": role_revoked,
    "Consortium:ProposalCreated": proposal_created,
    "Consortium:ProposalVoted": proposal_voted,
    "Consortium:ProposalExecuted": proposal_executed,
    "DeviceRegistry:CodeRuleSet": code_rule_set,
    "DeviceRegistry:DeviceRegistered": device_registered,
    "DeviceRegistry:DeviceUpdated": device_updated,
    "DeviceRegistry:DeviceLifecycleChanged": device_lifecycle_changed,
    "DeviceRegistry:DeviceInspected": device_inspected,
    "DataCatalog:CatalogEntryVersioned": catalog_entry_versioned,
    "DataCatalog:CatalogEntryStatusChanged": catalog_entry_status_changed,
    "SharingAgreements:SharingRequested": sharing_requested,
    "SharingAgreements:SharingApproved": sharing_approved,
    "SharingAgreements:SharingGranted": sharing_granted,
    "SharingAgreements:SharingRefused": sharing_refused,
    "SharingAgreements:SharingRevoked": sharing_revoked,
    "SharingAgreements:ApprovalThresholdSet": approval_threshold_set,
    "SharingAgreements:UsageReceiptsAnchored": usage_receipts_anchored,
    "AlgorithmRegistry:AlgorithmSubmitted": algorithm_submitted,
    "AlgorithmRegistry:AlgorithmEvaluated": algorithm_evaluated,
    "AlgorithmRegistry:AlgorithmStatusChanged": algorithm_status_changed,
    "AlgorithmRegistry:AlgorithmAdmitted": algorithm_admitted,
    "AlgorithmRegistry:AlgorithmWithdrawn": algorithm_withdrawn,
    "ReviewBoard:LeadOrgSet": lead_org_set,
    "ReviewBoard:ProjectFiled": project_filed,
    "ReviewBoard:ProjectDecided": project_decided,
    "ReviewBoard:ProjectWithdrawn": project_withdrawn,
    "CarrierRegistry:CarrierRegistered": carrier_registered,
    "CarrierRegistry:CarrierUsageChanged": carrier_usage_changed,
    "CarrierRegistry:CarrierReuseRequested": carrier_reuse_requested,
    "CarrierRegistry:CarrierReuseDecided": carrier_reuse_decided,
    "CarrierRegistry:CarrierReuseWithdrawn": carrier_reuse_withdrawn,
}

# Rows a handler reads, so a range's reads can be fetched in bulk before its handlers run.
_BY_CODE: Callable[[DecodedLog], tuple[str, tuple[Any, ...]]] = lambda log: ("devices", (log.args["code"],))  # noqa: E731
PREFETCH: dict[str, Callable[[DecodedLog], tuple[str, tuple[Any, ...]]]] = {
    "DeviceRegistry:DeviceUpdated": _BY_CODE,
    "DeviceRegistry:DeviceLifecycleChanged": _BY_CODE,
    "DeviceRegistry:DeviceInspected": _BY_CODE,
    "DeviceRegistry:CodeRuleSet": lambda log: ("code_rules", (log.args["typeId"],)),
    "DataCatalog:CatalogEntryVersioned": lambda log: ("catalog_entries", (log.args["entryId"],)),
    "DataCatalog:CatalogEntryStatusChanged": lambda log: ("catalog_entries", (log.args["entryId"],)),
    "SharingAgreements:SharingApproved": lambda log: ("sharing_requests", (log.args["requestId"],)),
    "SharingAgreements:SharingGranted": lambda log: ("sharing_requests", (log.args["requestId"],)),
    "SharingAgreements:SharingRefused": lambda log: ("sharing_requests", (log.args["requestId"],)),
    "SharingAgreements:SharingRevoked": lambda log: ("sharing_requests", (log.args["requestId"],)),
    "AlgorithmRegistry:AlgorithmEvaluated": lambda log: ("algorithms", (log.args["algorithmId"],)),
    "AlgorithmRegistry:AlgorithmStatusChanged": lambda log: ("algorithms", (log.args["algorithmId"],)),
    "ReviewBoard:ProjectDecided": lambda log: ("projects", (log.args["projectId"],)),
    "ReviewBoard:ProjectWithdrawn": lambda log: ("projects", (log.args["projectId"],)),
    "CarrierRegistry:CarrierUsageChanged": lambda log: ("carriers", (log.args["code"],)),
    "CarrierRegistry:CarrierReuseDecided": lambda log: ("carrier_reuse_requests", (log.args["requestId"],)),
    "CarrierRegistry:CarrierReuseWithdrawn": lambda log: ("carrier_reuse_requests", (log.args["requestId"],)),
}

# Events whose history rows need the block time and the transaction sender.
NEEDS_BLOCK_FACTS = frozenset(
    {
        "DeviceRegistry:DeviceRegistered",
        "DeviceRegistry:DeviceUpdated",
        "DeviceRegistry:DeviceLifecycleChanged",
        "DeviceRegistry:DeviceInspected",
        "DataCatalog:CatalogEntryVersioned",
        "SharingAgreements:SharingRequested",
        "SharingAgreements:SharingApproved",
        "SharingAgreements:SharingRefused",
        "SharingAgreements:SharingRevoked",
        "SharingAgreements:UsageReceiptsAnchored",
        "AlgorithmRegistry:AlgorithmSubmitted",
        "AlgorithmRegistry:AlgorithmEvaluated",
        "AlgorithmRegistry:AlgorithmStatusChanged",
        "ReviewBoard:ProjectFiled",
        "ReviewBoard:ProjectDecided",
        "ReviewBoard:ProjectWithdrawn",
        "CarrierRegistry:CarrierReuseRequested",
        "CarrierRegistry:CarrierReuseDecided",
        "CarrierRegistry:CarrierReuseWithdrawn",
    }
)
