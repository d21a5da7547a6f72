"""One handler per event, keyed "Contract:Event" (Ponder's model), each writing the mirror through a `Batch`.

Invariants:
- A handler is a pure function of the decoded log, the rows it reads and the block facts (time, sender):
  replaying the same logs in chain order gives the same rows, which is what reorg rewinds and the
  "equals a fresh replay" checks rely on.
- Every device event appends one `device_events` row (args as JSON, enums by name) and stamps the device's
  `updated_block`/`updated_tx_hash`; roles are stored by name and a revocation deletes the row.
- Events without a handler (RoleAdminChanged, ThresholdChanged, ...) are skipped: the mirror holds no state
  for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from eth_utils import keccak

from indexer.abi import DecodedLog

__all__ = [
    "HANDLERS",
    "INSPECTION_RESULTS",
    "LIFECYCLE_ACTIONS",
    "ORG_KINDS",
    "PREFETCH",
    "ROLE_NAMES",
    "DEVICE_STATUSES",
    "Handler",
    "HandlerContext",
    "NEEDS_BLOCK_FACTS",
    "role_name",
]

# Enum member names in declaration order (contracts/interfaces/*.sol).
ORG_KINDS = ("none", "department", "district", "company", "auditor")
DEVICE_STATUSES = ("none", "planned", "active", "suspended", "replaced", "retired")
LIFECYCLE_ACTIONS = ("activate", "suspend", "resume", "upgrade", "replace", "retire")
INSPECTION_RESULTS = ("passed", "issues", "failed")

_ROLES = ("ADMIN", "REGISTRAR", "REVIEWER", "APPROVER", "AUDITOR", "RELAYER")
ROLE_NAMES: dict[str, str] = {"0x" + keccak(text=name).hex(): name for name in _ROLES}
ROLE_NAMES["0x" + "00" * 32] = "DEFAULT_ADMIN"

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one encoder: dumps() builds one per call

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
            "data": _JSON(data),
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
}

# Rows a handler reads, so a range's reads can be fetched in bulk before its handlers run.
_BY_CODE: Callable[[DecodedLog], tuple[str, tuple[Any, ...]]] = lambda log: ("devices", (log.args["code"],))  # noqa: E731
PREFETCH: dict[str, Callable[[DecodedLog], tuple[str, tuple[Any, ...]]]] = {
    "DeviceRegistry:DeviceUpdated": _BY_CODE,
    "DeviceRegistry:DeviceLifecycleChanged": _BY_CODE,
    "DeviceRegistry:DeviceInspected": _BY_CODE,
    "DeviceRegistry:CodeRuleSet": lambda log: ("code_rules", (log.args["typeId"],)),
}

# Events whose history rows need the block time and the transaction sender.
NEEDS_BLOCK_FACTS = frozenset(
    {
        "DeviceRegistry:DeviceRegistered",
        "DeviceRegistry:DeviceUpdated",
        "DeviceRegistry:DeviceLifecycleChanged",
        "DeviceRegistry:DeviceInspected",
    }
)
