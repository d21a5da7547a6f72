"""The kinds of record an auditor can trail: where each lives on the chain, in its contract's storage and in the mirror.

For every kind: how its id is written and checked, the events that shape it (all carry the record's id as
their first indexed argument, so one eth_getLogs filter on the contract finds them), the mirror tables that hold
it (the main row plus its history rows), the storage it occupies (a struct in a mapping or array, found through
the solc storage layout) with what each member must equal given the mirrored row, and the hashes recomputed
from the mirrored record.

A member (org) is the one kind whose trail spans two filters: its own events by org id, then the role grants and
revocations of the accounts attached to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import keccak
from sqlalchemy import Connection, select

from chain_gateway.deployments import Deployment
from indexer.abi import RawLog
from indexer.handlers import (
    ALGORITHM_STATUSES,
    CARRIER_KINDS,
    DEVICE_STATUSES,
    ENTRY_STATUSES,
    FORM_NAMES,
    ORG_KINDS,
    PROJECT_STATUSES,
    REQUEST_STATUSES,
    REVIEW_DOMAINS,
    ROLE_NAMES,
    SHARE_CONDITIONS,
)
from indexer.store import APPEND_TABLES, PROJECTION_TABLES
from registry_api.audit.proof_layout import Location, StorageLayout
from registry_api.audit.trail_checks import Check, same_value
from registry_api.audit.trail_errors import InvalidRecordId, UnknownKind
from registry_api.audit.trail_hashes import (
    abi_hash,
    algorithm_input,
    entry_input,
    event_arg_type,
    project_devices_input,
    text_hash,
)

__all__ = [
    "KINDS",
    "ChainView",
    "RecordKind",
    "RecordRef",
    "StateField",
    "Tables",
    "kind_named",
    "uint_topic",
]

Row = dict[str, Any]
Tables = dict[str, list[Row]]  # table name -> rows of one record
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # device and carrier codes (URL-safe, 1..64)
ORG_CODE_MAX_BYTES = 32  # Consortium._admit
_ROLE_IDS = {name: role_id for role_id, name in ROLE_NAMES.items()}
_FORM_BITS = {name: bit for bit, name in FORM_NAMES.items()}
ZERO_HASH = "0x" + "00" * 32


class ChainView(Protocol):
    """What a kind may read from the chain: logs of the audited range and storage at the audited block."""

    deployment: Deployment
    layouts: Mapping[str, StorageLayout]  # contract name -> its storage layout

    def logs(self, contract: str, events: Sequence[str], *topics: str | list[str] | None) -> list[RawLog]: ...
    def storage_at(self, contract: str, slot: int) -> int: ...


@dataclass(frozen=True)
class RecordRef:
    """A record resolved: the id as written, the parsed id, and the key of its main mirror row."""

    kind: str
    id: str
    value: Any
    key: Any


@dataclass(frozen=True)
class StateField:
    """A value in the contract's storage and the value it must have given the mirror (None: no mirrored record)."""

    field: str
    location: Location
    mirror_value: Any


def uint_topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _rows(conn: Connection, table_name: str, column: str, values: Sequence[Any]) -> list[Row]:
    table = {**PROJECTION_TABLES, **APPEND_TABLES}[table_name]
    if not values:
        return []
    query = select(table).where(table.c[column].in_(list(values)))
    return [dict(r) for r in conn.execute(query).mappings()]


# ---------------------------------------------------------------- mirror value converters
# Each takes the mirrored row and gives the value the contract's storage must hold for it.

Convert = Callable[[Row], Any]


def _col(column: str) -> Convert:
    return lambda row: row[column]


def _or_zero(column: str) -> Convert:
    return lambda row: 0 if row[column] is None else row[column]


def _hash_or_zero(column: str) -> Convert:
    return lambda row: row[column] or ZERO_HASH


def _enum(names: tuple[str, ...], column: str) -> Convert:
    return lambda row: names.index(row[column]) if row[column] in names else row[column]


# ---------------------------------------------------------------- the kinds


class RecordKind:
    """A kind of record; subclasses set the class attributes and override what differs.

    The record's storage is the struct at `variable`[storage key] (a mapping or a dynamic array), each member
    compared with `columns[member](mirrored row)`; kinds with more storage add fields in `state`.
    """

    name: str
    description: str
    contract: str
    table: str  # the main mirror table
    key_column: str  # its primary key
    events: tuple[str, ...]  # events on `contract` whose first indexed argument is the record's id
    history: Mapping[str, tuple[str, ...]] = {}  # history table -> key columns of its rows
    variable: str  # the contract's state variable holding the records
    columns: Mapping[str, Convert]  # struct member -> its value derived from the mirrored row
    onchain_columns: Mapping[str, str] = {}  # hashed storage member -> the event-derived column holding it

    def parse(self, text: str) -> Any:
        return _uint_id(text, UINT64_MAX)

    def topic(self, value: Any) -> str:
        return uint_topic(int(value))

    def storage_key(self, ref: RecordRef) -> Any:
        """The key of the record in `variable`: the id itself (array index, uint key) unless a kind hashes it."""
        return ref.key

    def resolve(self, chain: ChainView, conn: Connection, text: str) -> RecordRef:
        value = self.parse(text)
        return RecordRef(self.name, text, value, value)

    def fetch(self, chain: ChainView, ref: RecordRef) -> list[RawLog]:
        return chain.logs(self.contract, self.events, self.topic(ref.value))

    def mirror(self, conn: Connection, ref: RecordRef) -> Tables:
        """The mirror's rows of the record: the main row (0 or 1) and its history rows."""
        tables = {self.table: _rows(conn, self.table, self.key_column, [ref.key])}
        for name in self.history:
            tables[name] = _rows(conn, name, self.key_column, [ref.key])
        return tables

    def state(self, layout: StorageLayout, ref: RecordRef, mirror: Tables) -> list[StateField]:
        """Every member of the record's struct with the value the mirrored row implies (None: no row).

        Every member must be mapped in `columns`: a member added to the struct without a mirror column is a
        KeyError, so the audit cannot silently stop covering part of a record.
        """
        at = layout.key(layout.variable(self.variable), self.storage_key(ref))
        row = _main(mirror, self.table)
        return [
            StateField(label, location, None if row is None else self.columns[label](row))
            for label, location in layout.members(at)
        ]

    def hash_checks(
        self, deployment: Deployment, mirror: Tables, chain: Tables, onchain: Mapping[str, Any]
    ) -> list[Check]:
        """Hashes recomputed from the mirrored record against the chain's (`onchain`: storage values by member)."""
        return []


def _uint_id(text: str, maximum: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidRecordId(f"the id {text!r} is not a decimal number")
    value = int(text)
    if not 1 <= value <= maximum:
        raise InvalidRecordId(f"the id {value} is out of range 1..{maximum}")
    return value


def _main(mirror: Tables, table: str) -> Row | None:
    rows = mirror.get(table) or []
    return rows[0] if rows else None


def _hash_check(name: str, what: str, onchain: Any, recomputed: Any) -> Check:
    ok = same_value(onchain, recomputed)
    verdict = "equals" if ok else "does not equal"
    message = f"{what} recomputed from the mirrored record {verdict} the chain's"
    return Check(name, ok, message, expected=onchain, actual=recomputed)


def _abi_hash_check(
    deployment: Deployment,
    kind: RecordKind,
    event: str,
    arg: str,
    value: Any,
    what: tuple[str, str, str],
    onchain: Mapping[str, Any],
) -> Check:
    """keccak256(abi.encode(value)) typed as argument `arg` of `event` (the struct the contract hashed), against
    the storage member the chain keeps it in; `what` is (check name, description, storage member)."""
    name, description, member = what
    recomputed = None
    if value is not None:
        recomputed = abi_hash(event_arg_type(deployment, kind.contract, event, arg), value)
    return _hash_check(name, description, onchain.get(member), recomputed)


class CodedKind(RecordKind):
    """A record keyed by a code (devices, carriers): events and storage keyed by keccak256(code); attributes
    stored as their hash."""

    onchain_columns = {"attributesHash": "attributes_hash"}

    def parse(self, text: str) -> Any:
        if not CODE_PATTERN.match(text):
            raise InvalidRecordId(f"{text!r} is not a code: 1..64 letters, digits, '.', '_' or '-'")
        return text

    def topic(self, value: Any) -> str:
        return "0x" + keccak(text=value).hex()

    def storage_key(self, ref: RecordRef) -> Any:
        return self.topic(ref.value)

    def hash_checks(
        self, deployment: Deployment, mirror: Tables, chain: Tables, onchain: Mapping[str, Any]
    ) -> list[Check]:
        row = _main(mirror, self.table)
        recomputed = None if row is None else text_hash(row["attributes"])
        what = "keccak256 of the attributes"
        return [_hash_check("attributes_hash", what, onchain.get("attributesHash"), recomputed)]


class DeviceKind(CodedKind):
    name = "device"
    description = "a sensing front end, by its city code"
    contract = "DeviceRegistry"
    table = "devices"
    key_column = "code"
    events = ("DeviceRegistered", "DeviceUpdated", "DeviceLifecycleChanged", "DeviceInspected")
    history = {"device_events": ("block_number", "log_index"), "inspections": ("block_number", "log_index")}
    variable = "_devices"
    columns = {
        "ownerOrg": _col("owner_org_id"),
        "typeId": _col("type_id"),
        "status": _enum(DEVICE_STATUSES, "status"),
        "district": _col("district"),
        "lat": _col("lat_e6"),
        "lon": _col("lon_e6"),
        "builtAt": _col("built_at"),
        "lastInspectedAt": _or_zero("last_inspected_at"),
        "attributesHash": _col("attributes_hash"),
    }


class CarrierKind(CodedKind):
    name = "carrier"
    description = "a carrier (pole, mount, cabinet, building mount), by its code"
    contract = "CarrierRegistry"
    table = "carriers"
    key_column = "code"
    events = ("CarrierRegistered", "CarrierUsageChanged")
    variable = "_carriers"
    columns = {
        "ownerOrg": _col("owner_org_id"),
        "kind": _enum(CARRIER_KINDS, "kind"),
        "district": _col("district"),
        "lat": _col("lat_e6"),
        "lon": _col("lon_e6"),
        "slots": _col("slots"),
        "slotsUsed": _col("slots_used"),
        "ports": _col("ports"),
        "portsUsed": _col("ports_used"),
        "attributesHash": _col("attributes_hash"),
    }

    def state(self, layout: StorageLayout, ref: RecordRef, mirror: Tables) -> list[StateField]:
        """The carrier's struct and its code (kept beside it, as a string, for the reuse requests' events)."""
        row = _main(mirror, self.table)
        code = layout.key(layout.variable("_codes"), self.storage_key(ref))
        return [*super().state(layout, ref, mirror), StateField("code", code, None if row is None else row["code"])]


class CatalogEntryKind(RecordKind):
    name = "catalog-entry"
    description = "a data catalog entry, by its entry id"
    contract = "DataCatalog"
    table = "catalog_entries"
    key_column = "entry_id"
    events = ("CatalogEntryVersioned", "CatalogEntryStatusChanged")
    history = {
        "catalog_entry_versions": ("block_number", "log_index"),
        "catalog_lineage": ("kind", "ref"),
        "catalog_search": ("entry_id",),
    }
    variable = "_entries"
    columns = {
        "ownerOrg": _col("owner_org_id"),
        "grade": _col("grade"),
        "shareCondition": _enum(SHARE_CONDITIONS, "share_condition"),
        "forms": _col("forms_mask"),
        "status": _enum(ENTRY_STATUSES, "status"),
        "major": _col("major"),
        "minor": _col("minor"),
        "versionHash": _col("version_hash"),
    }
    onchain_columns = {"versionHash": "version_hash"}

    def hash_checks(
        self, deployment: Deployment, mirror: Tables, chain: Tables, onchain: Mapping[str, Any]
    ) -> list[Check]:
        row, chained = _main(mirror, self.table), _main(chain, self.table)
        schema = _hash_check(
            "schema_hash",
            "keccak256 of the schema",
            None if chained is None else text_hash(chained["schema"]),
            None if row is None else text_hash(row["schema"]),
        )
        entry = None if row is None else entry_input(row)
        what = ("version_hash", "keccak256(abi.encode(EntryInput))", "versionHash")
        return [schema, _abi_hash_check(deployment, self, "CatalogEntryVersioned", "entry", entry, what, onchain)]


class SharingRequestKind(RecordKind):
    name = "sharing-request"
    description = "a sharing request and its grant, by request id"
    contract = "SharingAgreements"
    table = "sharing_requests"
    key_column = "request_id"
    events = ("SharingRequested", "SharingApproved", "SharingGranted", "SharingRefused", "SharingRevoked")
    history = {"sharing_approvals": ("block_number", "log_index")}
    variable = "_requests"
    columns = {
        "entryId": _col("entry_id"),
        "requesterOrg": _col("requester_org_id"),
        "ownerOrg": _col("owner_org_id"),
        "form": lambda row: _FORM_BITS.get(row["form"], row["form"]),
        "status": _enum(REQUEST_STATUSES, "status"),
        "approvals": _col("approvals"),
        "approvalsNeeded": _col("approvals_needed"),
        "duration": _col("duration"),
        "requestedAt": _col("requested_at"),
        "grantedAt": _or_zero("granted_at"),
        "expiresAt": _or_zero("expires_at"),
    }

    def parse(self, text: str) -> Any:
        return _uint_id(text, UINT256_MAX)

    def state(self, layout: StorageLayout, ref: RecordRef, mirror: Tables) -> list[StateField]:
        """The request's struct and, for each approval the mirror holds, the contract's approved-by flag."""
        fields = super().state(layout, ref, mirror)
        approved_by = layout.key(layout.variable("_approvedBy"), ref.value)
        for approval in mirror.get("sharing_approvals", []):
            if approval["decision"] == "approve":  # the contract marks each approver once
                where = layout.key(approved_by, approval["approver"])
                fields.append(StateField(f"approvedBy[{approval['approver']}]", where, True))
        return fields


class AlgorithmKind(RecordKind):
    name = "algorithm"
    description = "an algorithm of the algorithm center, by algorithm id"
    contract = "AlgorithmRegistry"
    table = "algorithms"
    key_column = "algorithm_id"
    events = ("AlgorithmSubmitted", "AlgorithmEvaluated", "AlgorithmStatusChanged")
    history = {"algorithm_evaluations": ("block_number", "log_index")}
    variable = "_algorithms"
    columns = {
        "submitterOrg": _col("submitter_org_id"),
        "status": _enum(ALGORITHM_STATUSES, "status"),
        "score": _or_zero("score"),
        "codeHash": _col("code_hash"),
        "reportHash": _hash_or_zero("report_hash"),
        "inputHash": _col("input_hash"),
    }
    onchain_columns = {"inputHash": "input_hash"}

    def hash_checks(
        self, deployment: Deployment, mirror: Tables, chain: Tables, onchain: Mapping[str, Any]
    ) -> list[Check]:
        row = _main(mirror, self.table)
        value = None if row is None else algorithm_input(row)
        what = ("input_hash", "keccak256(abi.encode(AlgorithmInput))", "inputHash")
        return [_abi_hash_check(deployment, self, "AlgorithmSubmitted", "input", value, what, onchain)]


class ProjectKind(RecordKind):
    name = "project"
    description = "a joint-review project of planned front ends, by project id"
    contract = "ReviewBoard"
    table = "projects"
    key_column = "project_id"
    events = ("ProjectFiled", "ProjectDecided", "ProjectWithdrawn")
    history = {"project_devices": ("position",)}
    variable = "_projects"
    columns = {
        "applicantOrg": _col("applicant_org_id"),
        "domain": _enum(REVIEW_DOMAINS, "domain"),
        "status": _enum(PROJECT_STATUSES, "status"),
        "reviewerOrg": _or_zero("reviewer_org_id"),
        "deviceCount": _col("device_count"),
        "filedAt": _col("filed_at"),
        # the contract stamps decisions only; the mirror's closed_at also holds a withdrawal's time
        "decidedAt": lambda row: row["closed_at"] if row["status"] in ("approved", "refused") else 0,
        "devicesHash": _col("devices_hash"),
    }
    onchain_columns = {"devicesHash": "devices_hash"}

    def hash_checks(
        self, deployment: Deployment, mirror: Tables, chain: Tables, onchain: Mapping[str, Any]
    ) -> list[Check]:
        value = None
        if _main(mirror, self.table) is not None:
            value = project_devices_input(mirror.get("project_devices") or [])
        what = ("devices_hash", "keccak256(abi.encode(DeviceInput[]))", "devicesHash")
        return [_abi_hash_check(deployment, self, "ProjectFiled", "devices", value, what, onchain)]


class MemberKind(RecordKind):
    name = "member"
    description = "a member organisation with its accounts and roles, by org code"
    contract = "Consortium"
    table = "members"
    key_column = "org_id"
    events = ("MemberAdmitted", "MemberStatusChanged")
    history = {"accounts": ("address",), "account_roles": ("address", "role")}
    variable = "_orgs"
    columns = {
        "id": _col("org_id"),
        "kind": _enum(ORG_KINDS, "kind"),
        "active": _col("active"),
        "code": _col("code"),
        "name": _col("name"),
    }

    def parse(self, text: str) -> Any:
        if not text or len(text.encode()) > ORG_CODE_MAX_BYTES or not text.isprintable():
            raise InvalidRecordId(f"{text!r} is not an org code: 1..{ORG_CODE_MAX_BYTES} printable bytes")
        return text

    def _by_code(self, layout: StorageLayout, code: str) -> Location:
        return layout.key(layout.variable("_orgIdByCode"), "0x" + keccak(text=code).hex())

    def resolve(self, chain: ChainView, conn: Connection, text: str) -> RecordRef:
        """The org id the chain maps the code to (`_orgIdByCode`), else the mirror's, else 0 (unknown)."""
        code = self.parse(text)
        org_id = chain.storage_at(self.contract, self._by_code(chain.layouts[self.contract], code).slot)
        if org_id == 0:
            found = _rows(conn, self.table, "code", [code])
            org_id = int(found[0]["org_id"]) if found else 0
        return RecordRef(self.name, text, code, org_id)

    def fetch(self, chain: ChainView, ref: RecordRef) -> list[RawLog]:
        """The org's own events, its AccountAdded events (org id is their second topic), and the role grants and
        revocations of those accounts (account is their second topic)."""
        if ref.key == 0:
            return []
        org = uint_topic(ref.key)
        logs = chain.logs(self.contract, self.events, org)
        added = chain.logs(self.contract, ("AccountAdded",), None, org)
        accounts = sorted({log["topics"][1] for log in added})
        roles = chain.logs(self.contract, ("RoleGranted", "RoleRevoked"), None, accounts) if accounts else []
        return [*logs, *added, *roles]

    def mirror(self, conn: Connection, ref: RecordRef) -> Tables:
        """The org's row, its accounts and their roles (an account the mirror lacks shows up as missing rows)."""
        accounts = _rows(conn, "accounts", "org_id", [ref.key])
        addresses = sorted({a["address"] for a in accounts})
        return {
            self.table: _rows(conn, self.table, self.key_column, [ref.key]),
            "accounts": accounts,
            "account_roles": _rows(conn, "account_roles", "address", addresses),
        }

    def state(self, layout: StorageLayout, ref: RecordRef, mirror: Tables) -> list[StateField]:
        """The org's struct, its code's entry in the code index, and for each mirrored account its org and roles."""
        row = _main(mirror, self.table)
        fields = super().state(layout, ref, mirror)
        fields.append(
            StateField("orgIdByCode", self._by_code(layout, ref.value), None if row is None else row["org_id"])
        )
        for account in mirror.get("accounts", []):
            where = layout.key(layout.variable("_orgOf"), account["address"])
            fields.append(StateField(f"orgOf[{account['address']}]", where, account["org_id"]))
        roles = layout.variable("_roles")
        for grant in mirror.get("account_roles", []):
            role_id = _ROLE_IDS.get(grant["role"], grant["role"])
            holders = layout.member(layout.key(roles, role_id), "hasRole")
            label = f"hasRole[{grant['role']}][{grant['address']}]"
            fields.append(StateField(label, layout.key(holders, grant["address"]), True))
        return fields


KINDS: dict[str, RecordKind] = {
    k.name: k
    for k in (
        DeviceKind(),
        CatalogEntryKind(),
        SharingRequestKind(),
        AlgorithmKind(),
        ProjectKind(),
        CarrierKind(),
        MemberKind(),
    )
}


def kind_named(name: str) -> RecordKind:
    """The kind called `name`; UnknownKind (422, field `kind`) otherwise."""
    kind = KINDS.get(name)
    if kind is None:
        raise UnknownKind(name, sorted(KINDS))
    return kind
