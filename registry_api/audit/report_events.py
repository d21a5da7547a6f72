"""How the report reads each event of the deployment: its kind of action, its subject and a one-line summary.

A view's `says` gives the predicate of the summary ("registered device BJ-CAMR-..."); the report puts who did it
in front, except for `impersonal` events, which follow from another one in the same transaction (a grant from the
approval that reached the threshold) and say it all themselves. `many` gives the predicate for several of the
same event in one transaction ("registered 250 devices"), for the events a transaction repeats in bulk. `signer`
names the argument holding the account that signed the decision when the sender only relayed it (sharing
decisions); `governed` events happen only by consortium vote (or in a constructor), so their sender is the admin
whose vote executed the proposal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from indexer.handlers import (
    ALGORITHM_STATUSES,
    CARRIER_KINDS,
    DEVICE_STATUSES,
    ENTRY_STATUSES,
    FORM_NAMES,
    INSPECTION_RESULTS,
    LIFECYCLE_ACTIONS,
    ORG_KINDS,
    REVIEW_DOMAINS,
    SHARE_CONDITIONS,
    role_name,
)
from registry_api.schemas.audit_report import ReportSubject
from registry_api.stats import CITY_TZ

__all__ = ["EVENT_VIEWS", "EventView", "Names", "generic_view", "quote", "short_address"]

Args = Mapping[str, Any]
QUOTE_CHARS = 80  # longest free text (purpose, reason, title) quoted in a summary


class Names(Protocol):
    """What a summary may name: orgs by id and accounts by address, as the chain knew them then."""

    def org_code(self, org_id: int) -> str: ...
    def account(self, address: str) -> str: ...


def short_address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """Free text from the chain in quotes, on one line, cut at `limit` characters."""
    flat = " ".join(str(text).split())
    return f"“{flat if len(flat) <= limit else flat[: limit - 1] + '…'}”"


def _enum(names: Sequence[str], value: Any) -> str:
    return names[value] if isinstance(value, int) and 0 <= value < len(names) else str(value)


def _forms(mask: Any) -> str:
    if not isinstance(mask, int):
        return str(mask)
    return "/".join(name for bit, name in FORM_NAMES.items() if mask & bit) or str(mask)


def _day(unix: int) -> str:
    return datetime.fromtimestamp(unix, CITY_TZ).strftime("%Y-%m-%d %H:%M")


def _subject(kind: str, arg: str) -> Callable[[Args], ReportSubject]:
    return lambda a: ReportSubject(kind=kind, id=str(a[arg]))


def _span(items: Sequence[Args], key: Callable[[Args], str]) -> str:
    first, last = key(items[0]), key(items[-1])
    return first if first == last else f"{first} … {last}"


@dataclass(frozen=True)
class EventView:
    action: str
    subject: Callable[[Args], ReportSubject]
    says: Callable[[Args, Names], str]
    many: Callable[[Sequence[Args], Names], str] | None = None
    signer: str | None = None
    governed: bool = False
    impersonal: bool = False


def generic_view(contract: str, event: str) -> EventView:
    """The view of an event the report has no words for (a contract upgraded past this code): its name."""
    return EventView(
        f"{contract}.{event}", lambda a: ReportSubject(kind="contract", id=contract), lambda a, n: f"emitted {event}"
    )


def _role_change(verb: str, prep: str) -> Callable[[Args, Names], str]:
    return lambda a, n: f"{verb} {role_name(a['role'])} {prep} {n.account(a['account'])}"


_CONSORTIUM: dict[str, EventView] = {
    "MemberAdmitted": EventView(
        "admit member",
        _subject("org", "code"),
        lambda a, n: f"admitted member {a['code']} ({quote(a['name'])}, {_enum(ORG_KINDS, a['kind'])})",
        governed=True,
    ),
    "MemberStatusChanged": EventView(
        "suspend or reinstate member",
        _subject("org", "code"),
        lambda a, n: f"{'reinstated' if a['active'] else 'suspended'} member {a['code']}",
        governed=True,
    ),
    "AccountAdded": EventView(
        "add account",
        _subject("account", "account"),
        lambda a, n: f"added account {short_address(a['account'])} to {n.org_code(a['orgId'])}",
        governed=True,
    ),
    "RoleGranted": EventView(
        "grant role", _subject("account", "account"), _role_change("granted", "to"), governed=True
    ),
    "RoleRevoked": EventView(
        "revoke role", _subject("account", "account"), _role_change("revoked", "from"), governed=True
    ),
    "RoleAdminChanged": EventView(
        "set role admin",
        lambda a: ReportSubject(kind="role", id=role_name(a["role"])),
        lambda a, n: f"made {role_name(a['newAdminRole'])} the admin role of {role_name(a['role'])}",
        governed=True,
    ),
    "ProposalCreated": EventView(
        "propose",
        _subject("proposal", "proposalId"),
        lambda a, n: f"proposed #{a['proposalId']}: {quote(a['description'])}",
    ),
    "ProposalVoted": EventView(
        "vote",
        _subject("proposal", "proposalId"),
        lambda a, n: f"voted for proposal #{a['proposalId']} ({a['votes']} vote{'' if a['votes'] == 1 else 's'} now)",
    ),
    "ProposalExecuted": EventView(
        "execute proposal",
        _subject("proposal", "proposalId"),
        lambda a, n: f"executed proposal #{a['proposalId']}",
    ),
    "ThresholdChanged": EventView(
        "set voting threshold",
        lambda a: ReportSubject(kind="consortium", id="threshold"),
        lambda a, n: f"set the voting threshold to {a['threshold']} of {a['adminOrgs']} ADMIN orgs",
        governed=True,
    ),
}


def _device_code(a: Args) -> str:
    return str(a["code"])


_DEVICES: dict[str, EventView] = {
    "CodeRuleSet": EventView(
        "set code rule",
        _subject("device_type", "typeId"),
        lambda a, n: (
            f"set the code rule of type {a['typeId']} {a['typeName']}: prefix {a['prefix']!r}, {a['length']} characters"
        ),
        governed=True,
    ),
    "DeviceRegistered": EventView(
        "register device",
        _subject("device", "code"),
        lambda a, n: (
            f"registered device {a['code']} (type {a['typeId']}, {_enum(DEVICE_STATUSES, a['status'])}, "
            f"district {a['district']})"
        ),
        lambda items, n: f"registered {len(items)} devices ({_span(items, _device_code)})",
    ),
    "DeviceUpdated": EventView(
        "update device",
        _subject("device", "code"),
        lambda a, n: f"updated device {a['code']} (district {a['district']}, location and attributes)",
        lambda items, n: f"updated {len(items)} devices ({_span(items, _device_code)})",
    ),
    "DeviceLifecycleChanged": EventView(
        "change device life cycle",
        _subject("device", "code"),
        lambda a, n: (
            f"{_enum(LIFECYCLE_ACTIONS, a['action'])}: device {a['code']} "
            f"{_enum(DEVICE_STATUSES, a['fromStatus'])} -> {_enum(DEVICE_STATUSES, a['toStatus'])}"
            + (f", replaced by {a['replacedBy']}" if a["replacedBy"] else "")
            + (f", {quote(a['note'])}" if a["note"] else "")
        ),
        lambda items, n: f"changed the life cycle of {len(items)} devices ({_span(items, _device_code)})",
    ),
    "DeviceInspected": EventView(
        "inspect device",
        _subject("device", "code"),
        lambda a, n: (
            f"inspected device {a['code']}: {_enum(INSPECTION_RESULTS, a['result'])}"
            + (f", {quote(a['note'])}" if a["note"] else "")
        ),
        lambda items, n: f"inspected {len(items)} devices ({_span(items, _device_code)})",
    ),
    "ReviewBoardSet": EventView(
        "set review board",
        lambda a: ReportSubject(kind="contract", id=str(a["reviewBoard"])),
        lambda a, n: f"hooked review board {a['reviewBoard']} into the device registry",
        governed=True,
    ),
}


def _entry_versioned(a: Args, n: Names) -> str:
    title, _, grade, condition, forms = a["entry"][:5]
    verb = "created" if (a["major"], a["minor"]) == (1, 0) else "revised"
    return (
        f"{verb} catalog entry {a['entryId']} v{a['major']}.{a['minor']} {quote(title)} (grade {grade}, "
        f"{_enum(SHARE_CONDITIONS, condition)}, {_forms(forms)})"
    )


_CATALOG: dict[str, EventView] = {
    "CatalogEntryVersioned": EventView("file catalog entry", _subject("catalog_entry", "entryId"), _entry_versioned),
    "CatalogEntryStatusChanged": EventView(
        "change catalog entry status",
        _subject("catalog_entry", "entryId"),
        lambda a, n: (
            f"set catalog entry {a['entryId']} to {_enum(ENTRY_STATUSES, a['toStatus'])} "
            f"({'new' if a['fromStatus'] == 0 else 'was ' + _enum(ENTRY_STATUSES, a['fromStatus'])})"
        ),
    ),
}

_REQUEST = _subject("sharing_request", "requestId")
_SHARING: dict[str, EventView] = {
    "SharingRequested": EventView(
        "request sharing",
        _REQUEST,
        lambda a, n: (
            f"requested {_forms(a['form'])} data of catalog entry {a['entryId']} (owner "
            f"{n.org_code(a['ownerOrg'])}) for {quote(a['purpose'])}, {a['duration'] / 86_400:g} days: request "
            f"{a['requestId']}"
        ),
    ),
    "SharingApproved": EventView(
        "approve sharing",
        _REQUEST,
        lambda a, n: f"approved request {a['requestId']} (approval {a['approvals']})",
        signer="approver",
    ),
    "SharingGranted": EventView(
        "grant sharing",
        _REQUEST,
        lambda a, n: (
            f"request {a['requestId']} granted: {_forms(a['form'])} data of catalog entry {a['entryId']} "
            f"for {n.org_code(a['requesterOrg'])} until {_day(a['expiresAt'])}"
        ),
        impersonal=True,
    ),
    "SharingRefused": EventView(
        "refuse sharing",
        _REQUEST,
        lambda a, n: f"refused request {a['requestId']}: {quote(a['reason'])}",
        signer="approver",
    ),
    "SharingRevoked": EventView(
        "revoke sharing",
        _REQUEST,
        lambda a, n: f"revoked the grant of request {a['requestId']}: {quote(a['reason'])}",
        signer="approver",
    ),
    "ApprovalThresholdSet": EventView(
        "set approval threshold",
        lambda a: ReportSubject(kind="grade", id=str(a["grade"])),
        lambda a, n: f"set the approvals a grade {a['grade']} entry needs to {a['approvals']}",
        governed=True,
    ),
    "UsageReceiptsAnchored": EventView(
        "anchor usage receipts",
        _subject("receipt_batch", "batchId"),
        lambda a, n: f"anchored usage receipts {a['firstReceipt']}..{a['lastReceipt']} as batch {a['batchId']}",
    ),
}

_ALGORITHM = _subject("algorithm", "algorithmId")
_ALGORITHMS: dict[str, EventView] = {
    "AlgorithmSubmitted": EventView(
        "submit algorithm",
        _ALGORITHM,
        lambda a, n: f"submitted algorithm {a['algorithmId']} {a['input'][0]} {a['input'][1]}",
    ),
    "AlgorithmEvaluated": EventView(
        "evaluate algorithm",
        _ALGORITHM,
        lambda a, n: (
            f"evaluated algorithm {a['algorithmId']}: score {a['score']}, {'passed' if a['passed'] else 'not passed'}"
        ),
    ),
    "AlgorithmStatusChanged": EventView(
        "change algorithm status",
        _ALGORITHM,
        lambda a, n: (
            f"moved algorithm {a['algorithmId']} {_enum(ALGORITHM_STATUSES, a['fromStatus'])} -> "
            f"{_enum(ALGORITHM_STATUSES, a['toStatus'])}" + (f": {quote(a['reason'])}" if a["reason"] else "")
        ),
    ),
    "AlgorithmAdmitted": EventView(
        "admit algorithm",
        _ALGORITHM,
        lambda a, n: f"admitted algorithm {a['algorithmId']} for catalog entry {a['entryId']}",
    ),
    "AlgorithmWithdrawn": EventView(
        "withdraw algorithm",
        _ALGORITHM,
        lambda a, n: f"withdrew algorithm {a['algorithmId']} from catalog entry {a['entryId']}",
    ),
}

_PROJECT = _subject("project", "projectId")
_REVIEWS: dict[str, EventView] = {
    "LeadOrgSet": EventView(
        "set lead org",
        lambda a: ReportSubject(kind="review_domain", id=_enum(REVIEW_DOMAINS, a["domain"])),
        lambda a, n: f"named {n.org_code(a['orgId'])} lead org of the {_enum(REVIEW_DOMAINS, a['domain'])} domain",
        governed=True,
    ),
    "ProjectFiled": EventView(
        "file project",
        _PROJECT,
        lambda a, n: (
            f"filed project {a['projectId']} {quote(a['title'])} ({len(a['devices'])} planned devices, "
            f"{_enum(REVIEW_DOMAINS, a['domain'])})"
        ),
    ),
    "ProjectDecided": EventView(
        "decide project",
        _PROJECT,
        lambda a, n: (
            f"{'approved' if a['approved'] else 'refused'} project {a['projectId']}"
            + (f": {quote(a['reason'])}" if a["reason"] else "")
        ),
    ),
    "ProjectWithdrawn": EventView("withdraw project", _PROJECT, lambda a, n: f"withdrew project {a['projectId']}"),
}


def _carrier_code(a: Args) -> str:
    return str(a["carrier"][0])


_REUSE = _subject("carrier_reuse_request", "requestId")
_CARRIERS: dict[str, EventView] = {
    "CarrierRegistered": EventView(
        "register carrier",
        lambda a: ReportSubject(kind="carrier", id=_carrier_code(a)),
        lambda a, n: (
            f"registered carrier {_carrier_code(a)} ({_enum(CARRIER_KINDS, a['carrier'][1])}, "
            f"{a['carrier'][5]} slots, {a['carrier'][6]} ports)"
        ),
        lambda items, n: f"registered {len(items)} carriers ({_span(items, _carrier_code)})",
    ),
    "CarrierUsageChanged": EventView(
        "change carrier usage",
        _subject("carrier", "code"),
        lambda a, n: f"set carrier {a['code']} in use: {a['slotsUsed']} slots, {a['portsUsed']} ports",
    ),
    "CarrierReuseRequested": EventView(
        "request carrier reuse",
        _REUSE,
        lambda a, n: (
            f"asked {n.org_code(a['ownerOrg'])} to reuse carrier {a['code']} ({a['slots']} slots, "
            f"{a['ports']} ports) for {quote(a['purpose'])}: request {a['requestId']}"
        ),
    ),
    "CarrierReuseDecided": EventView(
        "decide carrier reuse",
        _REUSE,
        lambda a, n: (
            f"{'granted' if a['granted'] else 'refused'} carrier reuse request {a['requestId']}"
            + (f": {quote(a['reason'])}" if a["reason"] else "")
        ),
    ),
    "CarrierReuseWithdrawn": EventView(
        "withdraw carrier reuse", _REUSE, lambda a, n: f"withdrew carrier reuse request {a['requestId']}"
    ),
}

EVENT_VIEWS: dict[str, EventView] = {
    f"{contract}:{event}": view
    for contract, views in (
        ("Consortium", _CONSORTIUM),
        ("DeviceRegistry", _DEVICES),
        ("DataCatalog", _CATALOG),
        ("SharingAgreements", _SHARING),
        ("AlgorithmRegistry", _ALGORITHMS),
        ("ReviewBoard", _REVIEWS),
        ("CarrierRegistry", _CARRIERS),
    )
    for event, view in views.items()
}
