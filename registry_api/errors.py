"""JSON errors of the API: one body shape, stable codes, and the translation of contract reverts.

Every error answers `{"code": STABLE_CODE, "message": human text, "field": "devices[0].code" | null, ...}`.

    ApiError (HTTPException)          raised by routes and dependencies, carries code, field and extras
    RequestValidationError            -> 422 VALIDATION_ERROR (400 MALFORMED_JSON for unparseable bodies)
    ContractRevert                    -> 4xx by `revert_error` (the custom error's name and args included)
    GatewayRPCError                   -> 503 CHAIN_UNAVAILABLE
    sqlalchemy OperationalError ...   -> 503 DATABASE_UNAVAILABLE
    psycopg errors of a lost server   -> 503 DATABASE_UNAVAILABLE (raw, from a pool's `raw_connection()`)
    anything else                     -> 500 INTERNAL_ERROR, logged, never a stack trace in the answer
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chain_gateway.errors import (
    ContractRevert,
    GatewayConfigError,
    GatewayRPCError,
    IdempotencyConflict,
    InvalidCall,
)
from indexer.errors import is_database_lost
from indexer.handlers import (
    ALGORITHM_STATUSES,
    DEVICE_STATUSES,
    LIFECYCLE_ACTIONS,
    PROJECT_STATUSES,
    REUSE_STATUSES,
    role_name,
)

__all__ = [
    "ApiError",
    "CodedValueError",
    "ErrorBody",
    "RevertInfo",
    "describe_revert",
    "error_body",
    "field_path",
    "install_error_handlers",
    "revert_error",
]

log = logging.getLogger(__name__)


class ApiError(StarletteHTTPException):
    """An HTTP error with a stable `code`, the `field` at fault (or None) and extra body members."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=dict(headers) if headers else None)
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.field, **self.extra)


ErrorBody = dict[str, Any]


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> ErrorBody:
    return {"code": code, "message": message, "field": field, **extra}


def _json(status_code: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers=dict(headers) if headers else None)


# ---------------------------------------------------------------- validation errors


class CodedValueError(ValueError):
    """A ValueError raised by a schema validator that answers with its own stable `code` instead of VALIDATION_ERROR."""

    def __init__(self, code: str, message: str, *, subpath: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subpath = subpath  # below the validated field, e.g. the attribute key at fault


_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_UNION_TAGS = {"single", "batch"}  # tags of the POST /v1/devices body union, not part of the client's path


def field_path(loc: Sequence[str | int]) -> str | None:
    """A pydantic error location as the client's path: ("body", "devices", 0, "code") -> "devices[0].code"."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    if parts and parts[0] in _UNION_TAGS:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in str(part) or "(" in str(part):  # pydantic's function-validator tags, not client fields
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or None


def _validation_message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


async def _on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        detail = (first.get("ctx") or {}).get("error", "")
        return _json(
            status.HTTP_400_BAD_REQUEST,
            error_body("MALFORMED_JSON", f"the request body is not valid JSON: {detail}".rstrip(": ")),
        )
    items = [
        {"field": field_path(e.get("loc", ())), "message": _validation_message(e), "type": e.get("type")}
        for e in errors
    ]
    first = items[0] if items else {"field": None, "message": "invalid request"}
    code = "VALIDATION_ERROR"
    for e in errors:  # validators that raise a coded error put it in ctx
        coded = (e.get("ctx") or {}).get("error")
        if isinstance(coded, CodedValueError):
            code = coded.code
            at = field_path(e.get("loc", ()))
            if coded.subpath:
                at = f"{at}.{coded.subpath}" if at else coded.subpath
            first = {"field": at, "message": str(coded)}
            break
    message = first["message"] if len(items) <= 1 else f"{first['message']} (and {len(items) - 1} more)"
    return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, error_body(code, message, first["field"], errors=items))


# ---------------------------------------------------------------- contract reverts


@dataclass(frozen=True)
class RevertInfo:
    """How the API reports a contract's custom error: HTTP status, stable code, message, field (relative)."""

    status: int
    code: str
    message: str
    field: str | None = None  # relative to the device the error names: "code", "location", ...
    device_code: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # more body members, e.g. the missing role


def _status_name(value: Any) -> str:
    return DEVICE_STATUSES[value] if isinstance(value, int) and 0 <= value < len(DEVICE_STATUSES) else str(value)


def _action_name(value: Any) -> str:
    return LIFECYCLE_ACTIONS[value] if isinstance(value, int) and 0 <= value < len(LIFECYCLE_ACTIONS) else str(value)


_FORBIDDEN, _CONFLICT, _INVALID, _MISSING = 403, 409, 422, 404
_ENTRY_STATUSES = ("none", "draft", "published", "deprecated")
_REQUEST_STATUSES = ("none", "pending", "granted", "refused", "revoked")
_FORMS = {1: "raw", 2: "desensitized", 4: "result_only"}


def _entry_status(value: Any) -> str:
    return _ENTRY_STATUSES[value] if isinstance(value, int) and 0 <= value < len(_ENTRY_STATUSES) else str(value)


def _request_status(value: Any) -> str:
    return _REQUEST_STATUSES[value] if isinstance(value, int) and 0 <= value < len(_REQUEST_STATUSES) else str(value)


def _algorithm_status(value: Any) -> str:
    if isinstance(value, int) and 0 <= value < len(ALGORITHM_STATUSES):
        return ALGORITHM_STATUSES[value]
    return str(value)


def _algorithm_illegal_status(a: dict[str, Any]) -> RevertInfo:
    """A refused status move; from `delisted` (final) it gets its own code: nothing is done to a delisted one."""
    current, wanted = _algorithm_status(a.get("fromStatus")), _algorithm_status(a.get("toStatus"))
    if current == "delisted":
        return RevertInfo(
            _CONFLICT,
            "ALGORITHM_DELISTED",
            f"algorithm {a.get('algorithmId')} is delisted, which is final (submit a new version)",
            "algorithm_id",
            extra={"status": current},
        )
    return RevertInfo(
        _CONFLICT,
        "ILLEGAL_STATUS",
        f"algorithm {a.get('algorithmId')} is {current}: it cannot become {wanted} "
        "(submitted -> evaluated -> listed -> delisted)",
        "algorithm_id",
        extra={"status": current},
    )


def _enum_name(names: tuple[str, ...], value: Any) -> str:
    return names[value] if isinstance(value, int) and 0 <= value < len(names) else str(value)


def _form_names(mask: Any) -> str:
    if not isinstance(mask, int):
        return str(mask)
    return ", ".join(name for bit, name in _FORMS.items() if mask & bit) or str(mask)


_REVERTS: dict[str, Callable[[dict[str, Any]], RevertInfo]] = {
    "DeviceRegistryNotOwner": lambda a: RevertInfo(
        _FORBIDDEN, "DEVICE_NOT_OWNED", f"device {a.get('code')} belongs to another organisation", "code", a.get("code")
    ),
    "ConsortiumMissingRole": lambda a: RevertInfo(
        _FORBIDDEN,
        "ROLE_REQUIRED",
        f"account {a.get('account')} lacks the {role_name(str(a.get('role', '')))} role on-chain",
        extra={"role": role_name(str(a.get("role", "")))},
    ),
    "ConsortiumUnknownAccount": lambda a: RevertInfo(
        _FORBIDDEN, "ACCOUNT_UNKNOWN", f"account {a.get('account')} belongs to no member organisation"
    ),
    "ConsortiumOrgInactive": lambda a: RevertInfo(
        _FORBIDDEN, "ORG_INACTIVE", f"organisation {a.get('orgId')} is suspended from the consortium"
    ),
    "DeviceRegistryIllegalTransition": lambda a: RevertInfo(
        _CONFLICT,
        "ILLEGAL_TRANSITION",
        f"device {a.get('code')} is {_status_name(a.get('status'))}: {_action_name(a.get('action'))} is not allowed",
        None,
        a.get("code"),
    ),
    "DeviceRegistryDuplicateCode": lambda a: RevertInfo(
        _CONFLICT, "DUPLICATE_CODE", f"device code {a.get('code')} is already registered", "code", a.get("code")
    ),
    "DeviceRegistryCodeLength": lambda a: RevertInfo(
        _INVALID,
        "CODE_RULE_VIOLATION",
        f"code {a.get('code')} has {a.get('actual')} characters; its type's rule wants {a.get('expected')}",
        "code",
        a.get("code"),
    ),
    "DeviceRegistryCodePrefix": lambda a: RevertInfo(
        _INVALID,
        "CODE_RULE_VIOLATION",
        f"code {a.get('code')} must start with {a.get('prefix')!r}",
        "code",
        a.get("code"),
    ),
    "DeviceRegistryCodeCharacter": lambda a: RevertInfo(
        _INVALID,
        "CODE_RULE_VIOLATION",
        f"code {a.get('code')} has a character its type's rule does not allow at position {a.get('position')}",
        "code",
        a.get("code"),
    ),
    "DeviceRegistryUnknownType": lambda a: RevertInfo(
        _INVALID, "UNKNOWN_TYPE", f"device type {a.get('typeId')} has no code rule on-chain", "type"
    ),
    "DeviceRegistryUnknownDevice": lambda a: RevertInfo(
        _MISSING, "DEVICE_NOT_FOUND", f"device {a.get('code')} is not registered", None, a.get("code")
    ),
    "DeviceRegistryBadLocation": lambda a: RevertInfo(
        _INVALID, "BAD_LOCATION", f"location ({a.get('lat')}, {a.get('lon')}) micro-degrees is out of range", "location"
    ),
    "DeviceRegistryBadReplacement": lambda a: RevertInfo(
        _INVALID,
        "CONTRACT_REJECTED",
        f"{a.get('replacedBy')!r} cannot replace {a.get('code')}: it must be another planned or active device "
        "of the same organisation (and only the replace action names one)",
        "replaced_by",
        a.get("code"),
    ),
    "DeviceRegistryNotInspectable": lambda a: RevertInfo(
        _INVALID,
        "CONTRACT_REJECTED",
        f"device {a.get('code')} is {_status_name(a.get('status'))}: only active or suspended devices are inspected",
        None,
        a.get("code"),
    ),
    "DeviceRegistryBadTime": lambda a: RevertInfo(
        _INVALID, "CONTRACT_REJECTED", f"time {a.get('time')} is in the future or before the previous inspection"
    ),
    "DeviceRegistryBadInitialStatus": lambda a: RevertInfo(
        _INVALID, "CONTRACT_REJECTED", "a device is registered as planned or active", "status", a.get("code")
    ),
    # ------------------------------------------------------------ DataCatalog
    "CatalogUnknownEntry": lambda a: RevertInfo(_MISSING, "ENTRY_NOT_FOUND", f"no catalog entry {a.get('entryId')}"),
    "CatalogNotOwner": lambda a: RevertInfo(
        _FORBIDDEN, "ENTRY_NOT_OWNED", f"catalog entry {a.get('entryId')} belongs to another organisation"
    ),
    "CatalogEmptyTitle": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "the title must not be empty", "title"),
    "CatalogBadGrade": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "grade is 1..4", "grade"),
    "CatalogBadForms": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "forms must be a non-empty set", "forms"),
    "CatalogUnknownDevice": lambda a: RevertInfo(
        _INVALID,
        "UNKNOWN_DEVICE",
        f"lineage names device {a.get('code')}, which is not on the ledger",
        "device_codes",
        extra={"device_code": a.get("code")},
    ),
    "CatalogUnknownUpstream": lambda a: RevertInfo(
        _INVALID,
        "UNKNOWN_UPSTREAM",
        f"lineage names upstream entry {a.get('entryId')}, which does not exist before this entry",
        "upstream",
        extra={"entry_id": a.get("entryId")},
    ),
    "CatalogIllegalStatus": lambda a: RevertInfo(
        _CONFLICT,
        "ILLEGAL_STATUS",
        f"catalog entry {a.get('entryId')} cannot go from {_entry_status(a.get('fromStatus'))} to "
        f"{_entry_status(a.get('toStatus'))} (draft -> published -> deprecated; deprecated entries are final)",
        "status",
    ),
    # ------------------------------------------------------------ SharingAgreements
    "SharingEntryNotPublished": lambda a: RevertInfo(
        _CONFLICT, "ENTRY_NOT_PUBLISHED", f"catalog entry {a.get('entryId')} is not published", "entry_id"
    ),
    "SharingNotShareable": lambda a: RevertInfo(
        _CONFLICT, "NOT_SHAREABLE", f"catalog entry {a.get('entryId')} is not shareable (不予共享)", "entry_id"
    ),
    "SharingBadForm": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "form is raw, desensitized or result_only", "form"
    ),
    "SharingFormNotAllowed": lambda a: RevertInfo(
        _INVALID,
        "FORM_NOT_ALLOWED",
        f"catalog entry {a.get('entryId')} is not shared as {_form_names(a.get('form'))}; it allows "
        f"{_form_names(a.get('allowedForms'))}",
        "form",
    ),
    "SharingOwnEntry": lambda a: RevertInfo(
        _INVALID, "OWN_ENTRY", f"catalog entry {a.get('entryId')} is your own organisation's", "entry_id"
    ),
    "SharingEmptyPurpose": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "purpose must not be empty", "purpose"),
    "SharingBadDuration": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "duration is 1 hour to 5 years", "duration_days"
    ),
    "SharingUnknownRequest": lambda a: RevertInfo(_MISSING, "REQUEST_NOT_FOUND", f"no request {a.get('requestId')}"),
    "SharingNotPending": lambda a: RevertInfo(
        _CONFLICT,
        "REQUEST_NOT_PENDING",
        f"request {a.get('requestId')} is {_request_status(a.get('status'))}, no longer pending",
    ),
    "SharingNotGranted": lambda a: RevertInfo(
        _CONFLICT, "NOT_GRANTED", f"request {a.get('requestId')} is {_request_status(a.get('status'))}, not granted"
    ),
    "SharingSignatureExpired": lambda a: RevertInfo(
        _FORBIDDEN, "SIGNATURE_EXPIRED", f"the signature's deadline {a.get('deadline')} has passed", "deadline"
    ),
    "SharingNonceUsed": lambda a: (
        RevertInfo(
            _CONFLICT,
            "SIGNATURE_REPLAYED",
            f"nonce {a.get('nonce')} of approver {a.get('approver')} is used (next is {a.get('expected')})",
            "nonce",
        )
        if int(a.get("nonce", 0)) < int(a.get("expected", 0))
        else RevertInfo(
            _CONFLICT,
            "NONCE_MISMATCH",
            f"approver {a.get('approver')}'s next nonce is {a.get('expected')}, not {a.get('nonce')}",
            "nonce",
        )
    ),
    "SharingInvalidSignature": lambda a: RevertInfo(
        _FORBIDDEN, "BAD_SIGNATURE", f"the signature is not {a.get('approver')}'s over this decision", "signature"
    ),
    "SharingNotOwnerApprover": lambda a: RevertInfo(
        _FORBIDDEN,
        "NOT_AN_APPROVER",
        f"{a.get('approver')} is not an APPROVER of the entry's owner organisation",
        "approver",
    ),
    "SharingAlreadyApproved": lambda a: RevertInfo(
        _CONFLICT,
        "ALREADY_APPROVED",
        f"{a.get('approver')} has already approved request {a.get('requestId')}",
        "approver",
    ),
    # ------------------------------------------------------------ AlgorithmRegistry
    "AlgorithmUnknown": lambda a: RevertInfo(
        _MISSING, "ALGORITHM_NOT_FOUND", f"no algorithm {a.get('algorithmId')}", "algorithm_id"
    ),
    "AlgorithmEmptyName": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "the name must not be empty", "name"),
    "AlgorithmEmptyVersion": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "the version must not be empty", "version"
    ),
    "AlgorithmZeroCodeHash": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "the code hash must not be zero", "code_hash"
    ),
    "AlgorithmDuplicate": lambda a: RevertInfo(
        _CONFLICT,
        "ALGORITHM_DUPLICATE",
        f"algorithm {a.get('name')} {a.get('version')} is already submitted (submit another version)",
        "version",
    ),
    "AlgorithmBadScore": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "score is 0..100", "score"),
    "AlgorithmSelfEvaluation": lambda a: RevertInfo(
        _FORBIDDEN,
        "SELF_EVALUATION",
        f"algorithm {a.get('algorithmId')} was submitted by your organisation: another org's REVIEWER evaluates "
        "and lists it",
        "algorithm_id",
    ),
    "AlgorithmIllegalStatus": _algorithm_illegal_status,
    "AlgorithmNotPassed": lambda a: RevertInfo(
        _CONFLICT,
        "NOT_PASSED",
        f"algorithm {a.get('algorithmId')} scored {a.get('score')} at its latest evaluation; listing needs "
        f"{a.get('passMark')}",
        "algorithm_id",
        extra={"score": a.get("score"), "pass_mark": a.get("passMark")},
    ),
    "AlgorithmNotListed": lambda a: RevertInfo(
        _CONFLICT,
        "ALGORITHM_NOT_LISTED",
        f"algorithm {a.get('algorithmId')} is {_algorithm_status(a.get('status'))}: only listed algorithms are "
        "admitted",
        "algorithm_id",
        extra={"status": _algorithm_status(a.get("status"))},
    ),
    "AlgorithmNotEntryOwner": lambda a: RevertInfo(
        _FORBIDDEN,
        "NOT_ENTRY_OWNER",
        f"catalog entry {a.get('entryId')} belongs to another organisation: its owner admits algorithms for it",
        "entry_id",
    ),
    "AlgorithmAlreadyAdmitted": lambda a: RevertInfo(
        _CONFLICT,
        "ALREADY_ADMITTED",
        f"algorithm {a.get('algorithmId')} is already admitted for catalog entry {a.get('entryId')}",
        "algorithm_id",
    ),
    "AlgorithmNotAdmitted": lambda a: RevertInfo(
        _MISSING,
        "NOT_ADMITTED",
        f"algorithm {a.get('algorithmId')} is not admitted for catalog entry {a.get('entryId')}",
        "algorithm_id",
    ),
    # ------------------------------------------------------------ ReviewBoard (joint review)
    "ReviewUnknownProject": lambda a: RevertInfo(
        _MISSING, "REVIEW_NOT_FOUND", f"no review project {a.get('projectId')}", "id"
    ),
    "ReviewNoLead": lambda a: RevertInfo(
        _CONFLICT,
        "NO_LEAD_ORG",
        "the consortium has named no lead org for this domain: nobody could review it",
        "domain",
    ),
    "ReviewNotLead": lambda a: RevertInfo(
        _FORBIDDEN,
        "NOT_LEAD_ORG",
        f"project {a.get('projectId')} is decided by a REVIEWER of its domain's lead org (org {a.get('leadOrg')}), "
        f"not of org {a.get('callerOrg')}",
        extra={"lead_org_id": a.get("leadOrg")},
    ),
    "ReviewNotFiled": lambda a: RevertInfo(
        _CONFLICT,
        "REVIEW_NOT_FILED",
        f"project {a.get('projectId')} is {_enum_name(PROJECT_STATUSES, a.get('status'))}, no longer filed",
        extra={"status": _enum_name(PROJECT_STATUSES, a.get("status"))},
    ),
    "ReviewNotApplicant": lambda a: RevertInfo(
        _FORBIDDEN, "NOT_APPLICANT", f"project {a.get('projectId')} was filed by another organisation"
    ),
    "ReviewEmptyTitle": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "the title must not be empty", "title"),
    "ReviewBadDeviceCount": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", f"a project plans 1..200 devices, not {a.get('count')}", "devices"
    ),
    "ReviewNotPlanned": lambda a: RevertInfo(
        _INVALID, "NOT_PLANNED", "a project plans new devices: status is planned", f"devices[{a.get('index')}].status"
    ),
    "ReviewDevicesMismatch": lambda a: RevertInfo(
        _CONFLICT,
        "DEVICES_MISMATCH",
        f"the devices sent are not those filed with project {a.get('projectId')} (the mirror may lag the chain)",
    ),
    "ReviewEmptyReason": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "a refusal needs a reason", "reason"),
    "DeviceRegistryOnlyReviewBoard": lambda a: RevertInfo(
        _FORBIDDEN, "NOT_REVIEW_BOARD", "only the review board registers reviewed devices (is it hooked in?)"
    ),
    # ------------------------------------------------------------ CarrierRegistry
    "CarrierDuplicateCode": lambda a: RevertInfo(
        _CONFLICT, "CARRIER_DUPLICATE", f"carrier code {a.get('code')} is already registered", "code"
    ),
    "CarrierBadCode": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "a carrier code has 1..64 bytes", "code"),
    "CarrierUnknown": lambda a: RevertInfo(
        _MISSING, "CARRIER_NOT_FOUND", f"carrier {a.get('code')} is not registered", "code"
    ),
    "CarrierNotOwner": lambda a: RevertInfo(
        _FORBIDDEN, "CARRIER_NOT_OWNED", f"carrier {a.get('code')} belongs to another organisation", "code"
    ),
    "CarrierBadLocation": lambda a: RevertInfo(
        _INVALID, "BAD_LOCATION", f"location ({a.get('lat')}, {a.get('lon')}) micro-degrees is out of range", "location"
    ),
    "CarrierBadUsage": lambda a: RevertInfo(
        _INVALID,
        "USAGE_EXCEEDS_CAPACITY",
        f"carrier {a.get('code')} has {a.get('slots')} slots and {a.get('ports')} ports: "
        f"{a.get('slotsUsed')} and {a.get('portsUsed')} cannot be in use",
        "slots_used" if int(a.get("slotsUsed", 0)) > int(a.get("slots", 0)) else "ports_used",
    ),
    "CarrierOwnCarrier": lambda a: RevertInfo(
        _INVALID, "OWN_CARRIER", f"carrier {a.get('code')} is your own organisation's: set its usage instead", "code"
    ),
    "CarrierEmptyReuse": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "ask for at least one slot or port", "slots"
    ),
    "CarrierEmptyPurpose": lambda a: RevertInfo(
        _INVALID, "VALIDATION_ERROR", "the purpose must not be empty", "purpose"
    ),
    "CarrierNoCapacity": lambda a: RevertInfo(
        _CONFLICT,
        "NO_CAPACITY",
        f"carrier {a.get('code')} has {a.get('slotsFree')} free slots and {a.get('portsFree')} free ports",
        extra={"slots_free": a.get("slotsFree"), "ports_free": a.get("portsFree")},
    ),
    "CarrierUnknownRequest": lambda a: RevertInfo(
        _MISSING, "REUSE_REQUEST_NOT_FOUND", f"no reuse request {a.get('requestId')}", "id"
    ),
    "CarrierRequestClosed": lambda a: RevertInfo(
        _CONFLICT,
        "REUSE_REQUEST_CLOSED",
        f"reuse request {a.get('requestId')} is {_enum_name(REUSE_STATUSES, a.get('status'))}, no longer open",
        extra={"status": _enum_name(REUSE_STATUSES, a.get("status"))},
    ),
    "CarrierNotRequester": lambda a: RevertInfo(
        _FORBIDDEN, "NOT_REQUESTER", f"reuse request {a.get('requestId')} was made by another organisation"
    ),
    "CarrierEmptyReason": lambda a: RevertInfo(_INVALID, "VALIDATION_ERROR", "a refusal needs a reason", "reason"),
}


def describe_revert(name: str, args: dict[str, Any]) -> RevertInfo:
    """The API's view of a contract error (name and decoded args); unknown ones are 422 CONTRACT_REJECTED."""
    describe = _REVERTS.get(name)
    if describe is not None:
        try:
            return describe(args)
        except (TypeError, ValueError, AttributeError):
            pass
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return RevertInfo(_INVALID, "CONTRACT_REJECTED", f"the contract refused the call: {name}({shown})")


def revert_error(exc: ContractRevert, paths: Mapping[str, str] | None = None, default_prefix: str = "") -> ApiError:
    """The ApiError for a revert; `paths` maps device codes to their place in the request ("devices[3]")."""
    info = describe_revert(exc.name, exc.args_dict)
    at = info.field
    if at is not None:
        prefix = (paths or {}).get(info.device_code or "", default_prefix)
        at = f"{prefix}.{at}" if prefix else at
    return ApiError(
        info.status,
        info.code,
        info.message,
        field=at,
        **info.extra,
        contract_error={"name": exc.name, "args": exc.args_dict},
    )


# ---------------------------------------------------------------- handlers

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


async def _on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc, ApiError):
        return _json(exc.status_code, exc.body(), exc.headers)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    return _json(exc.status_code, error_body(code, str(exc.detail)), exc.headers)


async def _on_revert(_: Request, exc: ContractRevert) -> JSONResponse:
    error = revert_error(exc)
    return _json(error.status_code, error.body())


async def _on_rpc_error(_: Request, exc: GatewayRPCError) -> JSONResponse:
    log.warning("chain unavailable: %s", exc)
    return _json(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        error_body("CHAIN_UNAVAILABLE", "the chain node cannot be reached; try again shortly"),
        {"Retry-After": "5"},
    )


async def _on_gateway_config(_: Request, exc: GatewayConfigError) -> JSONResponse:
    log.error("gateway not set up: %s", exc)
    return _json(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        error_body("GATEWAY_UNAVAILABLE", "the gateway cannot sign for this organisation; ask the operator"),
    )


async def _on_idempotency(_: Request, exc: IdempotencyConflict) -> JSONResponse:
    return _json(
        status.HTTP_409_CONFLICT,
        error_body(
            "IDEMPOTENCY_CONFLICT",
            "this Idempotency-Key was already used with a different request body",
            "Idempotency-Key",
        ),
    )


async def _on_invalid_call(_: Request, exc: InvalidCall) -> JSONResponse:
    return _json(status.HTTP_422_UNPROCESSABLE_CONTENT, error_body("INVALID_ARGUMENTS", str(exc)))


async def _on_database_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return _json(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        error_body("DATABASE_UNAVAILABLE", "the database cannot be reached; try again shortly"),
        {"Retry-After": "5"},
    )


async def _on_dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    # a server stopped or restarting is unavailable, not broken (SQLAlchemy wraps a failed connect without
    # flagging it invalidated, and a raw connection's psycopg error is not wrapped at all)
    if is_database_lost(exc):
        return await _on_database_error(request, exc)
    return await _on_unexpected(request, exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        error_body("INTERNAL_ERROR", "an unexpected error occurred; it has been logged"),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler so that no error leaves the API without the JSON error body."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ContractRevert, _on_revert)  # type: ignore[arg-type]
    app.add_exception_handler(GatewayRPCError, _on_rpc_error)  # type: ignore[arg-type]
    app.add_exception_handler(GatewayConfigError, _on_gateway_config)  # type: ignore[arg-type]
    app.add_exception_handler(IdempotencyConflict, _on_idempotency)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidCall, _on_invalid_call)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _on_database_error)
    app.add_exception_handler(InterfaceError, _on_database_error)
    app.add_exception_handler(DBAPIError, _on_dbapi_error)
    app.add_exception_handler(psycopg.Error, _on_dbapi_error)
    app.add_exception_handler(Exception, _on_unexpected)
