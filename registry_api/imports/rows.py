"""Validating an import's rows: the device API's own schema and code rules, then the city's geography.

A row goes through exactly what `POST /v1/devices` applies (`DeviceCreate`: required fields, types, dates not
in the future, attributes without personal data and at most 8 KiB; `code_rule_violation`: the contract's
`_checkCode` in the same order) and is turned into the contract's DeviceInput by the same `device_input`.
Imports check two things more, because a file of a hundred thousand rows is where such slips hide:

- the point lies in the city (`CITY_BBOX`) and in the bounding box of the row's district, widened by
  DISTRICT_MARGIN_DEGREES because the boxes of `registry_api.city` are approximate; a point outside the
  district's box is DISTRICT_MISMATCH even when it is inside the city (a device filed under the wrong
  district gets the wrong district's funding), and a district code that is none of the 16 is UNKNOWN_DISTRICT;
- `built_at` is not after now (the API allows five minutes of clock skew; a batch with one such row would
  revert on-chain and have to be split).

Duplicates (within the file, against the ledger) are the runner's business: they need SQL.

Fast path: building a `DeviceCreate` costs ~100 us a row, most of the time spent reading. A row whose values
are all in their plain form (6-digit district, decimal degrees, an ISO date, a known status, string keys) is
checked by hand (`_plain_fields`) against the same limits; any row it is not sure of goes through the schema,
which then gives the row's exact error. A property test holds the two to the same fields for every row the
fast path accepts.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import ValidationError

from indexer.models import CodeRule
from registry_api.city import CITY_BBOX, DISTRICTS, district_by_code
from registry_api.crud import STATUS_CODES
from registry_api.encoding import (
    canonical_json,
    code_example,
    code_pattern,
    code_rule_violation,
    to_micro_degrees,
    to_unix,
)
from registry_api.errors import CodedValueError, field_path
from registry_api.imports.formats import ATTRIBUTE_PREFIX, RawRecord, RowProblem
from registry_api.json_depth import loads_bounded
from registry_api.schemas.devices import CLOCK_SKEW_SECONDS, MAX_ATTRIBUTES_BYTES, DeviceCreate, personal_data_key

__all__ = [
    "DISTRICT_MARGIN_DEGREES",
    "AcceptedRow",
    "RowValidator",
    "calldata_bytes",
    "location_problem",
]

DISTRICT_MARGIN_DEGREES = 0.02  # ~2 km at Beijing's latitude
MAX_MESSAGE = 500  # characters of a row's message in the report

_LOCATION_COLUMNS = ("lat", "lon")


@dataclass(frozen=True, slots=True)
class AcceptedRow:
    """A valid row: its code and the contract's DeviceInput (JSON form) for registerDevices."""

    code: str
    device: dict[str, Any]

    @property
    def size(self) -> int:
        return calldata_bytes(self.device)


def _padded(text: str) -> int:
    return (len(text.encode()) + 31) // 32 * 32


def calldata_bytes(device: Mapping[str, Any]) -> int:
    """Bytes a DeviceInput adds to registerDevices calldata: its offset word, 8 head words, two strings."""
    return 32 + 8 * 32 + 32 + _padded(device["code"]) + 32 + _padded(device["attributes"])


def location_problem(district: int, lat: float, lon: float) -> RowProblem | None:
    """Why a point does not fit the city or its district (see the module docstring), or None."""
    min_lon, min_lat, max_lon, max_lat = CITY_BBOX
    if not min_lat <= lat <= max_lat:
        return RowProblem("OUTSIDE_CITY", f"latitude {lat} is outside the city ({min_lat}..{max_lat})", "lat")
    if not min_lon <= lon <= max_lon:
        return RowProblem("OUTSIDE_CITY", f"longitude {lon} is outside the city ({min_lon}..{max_lon})", "lon")
    found = district_by_code(district)
    if found is None:
        return RowProblem(
            "UNKNOWN_DISTRICT", f"{district} is not one of the city's 16 district codes (110101..110119)", "district"
        )
    m = DISTRICT_MARGIN_DEGREES
    west, south, east, north = found.bbox
    if west - m <= lon <= east + m and south - m <= lat <= north + m:
        return None
    candidates = [d for d in DISTRICTS if d.bbox[0] <= lon <= d.bbox[2] and d.bbox[1] <= lat <= d.bbox[3]]
    hint = ", ".join(f"{d.code} {d.name}" for d in candidates) or "no district's box"
    return RowProblem(
        "DISTRICT_MISMATCH",
        f"({lat}, {lon}) lies outside district {district} {found.name}; it falls in {hint}",
        "district",
    )


class RowValidator:
    """Checks rows of one org's import against the code rules of the mirror (type name -> rule)."""

    def __init__(self, rules: Mapping[str, CodeRule], org_code: str, now: float | None = None) -> None:
        self.rules = rules
        self.org_code = org_code
        self.now = time.time() if now is None else now

    def check(self, record: RawRecord) -> AcceptedRow | RowProblem:
        """The row's DeviceInput, or why it is rejected (the first problem, in column order)."""
        if record.problem is not None or record.values is None:
            return record.problem or RowProblem("MALFORMED_ROW", "the row cannot be read")
        body, origins, problem = _device_body(record.values)
        if problem is not None:
            return problem
        owner = body.pop("owner_org", None)
        fields = _plain_fields(body)
        if fields is None:  # not sure: the schema decides, and names the problem
            try:
                fields = _Fields.of(DeviceCreate.model_validate(body))
            except ValidationError as exc:
                return _schema_problem(exc, origins)
        if owner is not None and owner != self.org_code:
            return RowProblem(
                "ORG_MISMATCH",
                f"the row is for {owner}; an import registers devices of the importing org {self.org_code} only",
                "owner_org",
            )
        if fields.built_at > self.now:
            return RowProblem("BUILT_AT_IN_FUTURE", "built_at is after the time of the import", "built_at")
        rule = self.rules.get(fields.type)
        if rule is None:
            return RowProblem(
                "UNKNOWN_TYPE", f"no code rule for device type {fields.type!r}; see GET /v1/code-rules", "type"
            )
        problem = _code_problem(fields.code, rule)
        if problem is not None:
            return problem
        problem = location_problem(fields.district, fields.lat, fields.lon)
        if problem is not None:
            return problem._replace(column=origins.get(f"location.{problem.column}", problem.column))
        return AcceptedRow(fields.code, fields.device_input(rule.type_id))


class _Fields(NamedTuple):
    """A device as `DeviceCreate` validates it: built_at in unix seconds, attributes as canonical JSON."""

    code: str
    type: str
    district: int
    lat: float
    lon: float
    built_at: int
    status: str
    attributes: str

    @classmethod
    def of(cls, device: DeviceCreate) -> _Fields:
        return cls(
            device.code,
            device.type,
            device.district,
            device.location.lat,
            device.location.lon,
            to_unix(device.built_at),
            device.status,
            canonical_json(device.attributes),
        )

    def device_input(self, type_id: int) -> dict[str, Any]:
        """The contract's DeviceInput (JSON form), as `registry_api.crud.device_input` builds it."""
        return {
            "code": self.code,
            "typeId": type_id,
            "status": STATUS_CODES[self.status],
            "district": self.district,
            "lat": to_micro_degrees(self.lat),
            "lon": to_micro_degrees(self.lon),
            "builtAt": self.built_at,
            "attributes": self.attributes,
        }


def _code_problem(code: str, rule: CodeRule) -> RowProblem | None:
    """CODE_RULE_VIOLATION with the contract's reason, or None (a code the rule's pattern matches needs no why)."""
    if len(code.encode()) == rule.length and _rule_pattern(rule.prefix, rule.length, rule.charset).fullmatch(code):
        return None
    why = code_rule_violation(code, rule.prefix, rule.length, rule.charset)
    if why is None:
        return None
    example = code_example(rule.prefix, rule.length, rule.charset)
    return RowProblem(
        "CODE_RULE_VIOLATION",
        _cut(f"code {code!r} breaks the rule of {rule.type_name}: {why} (e.g. {example})"),
        "code",
    )


@lru_cache(maxsize=256)
def _rule_pattern(prefix: str, length: int, charset: int) -> re.Pattern[str]:
    """The codes a rule admits (a match needs no explanation; a miss asks `code_rule_violation` why)."""
    return re.compile(code_pattern(prefix, length, charset))


_BODY_KEYS = frozenset({"code", "type", "district", "location", "built_at", "status", "attributes"})
_REQUIRED_KEYS = frozenset({"code", "type", "district", "location", "built_at"})
_DISTRICT = re.compile(r"[1-9][0-9]{5}")
_DEGREES = re.compile(r"-?[0-9]{1,3}(?:\.[0-9]{1,17})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_TEXT = 64  # characters of code and type (DeviceCreate)


def _plain_text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= _MAX_TEXT


def _plain_degrees(value: Any, limit: float) -> float | None:
    if type(value) is str and _DEGREES.fullmatch(value):
        number = float(value)
    elif type(value) is float and math.isfinite(value):
        number = value
    else:
        return None
    return number if -limit <= number <= limit else None


@lru_cache(maxsize=65_536)
def _plain_date(text: str) -> int | None:
    """Unix seconds of an ISO date (YYYY-MM-DD, midnight UTC, as DeviceCreate reads it), None if not one."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return to_unix(datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC))
    except ValueError:
        return None


def _plain_fields(body: Mapping[str, Any]) -> _Fields | None:
    """The fields `DeviceCreate` would give for `body` when every value is in its plain form, else None.

    None means "not sure", never "invalid": such a row goes through the schema.
    """
    keys = body.keys()
    if not (_REQUIRED_KEYS <= keys <= _BODY_KEYS):
        return None
    code, kind, district, location, built = (
        body["code"],
        body["type"],
        body["district"],
        body["location"],
        body["built_at"],
    )
    if not (_plain_text(code) and _plain_text(kind)):
        return None
    if type(district) is str and _DISTRICT.fullmatch(district):
        district = int(district)
    elif type(district) is not int or not 100_000 <= district <= 999_999:
        return None
    if type(location) is not dict or location.keys() != {"lat", "lon"}:
        return None
    lat, lon = _plain_degrees(location["lat"], 90), _plain_degrees(location["lon"], 180)
    if lat is None or lon is None:
        return None
    built_at = _plain_date(built) if type(built) is str else None
    if built_at is None or not 0 <= built_at <= time.time() + CLOCK_SKEW_SECONDS:
        return None
    status = body.get("status", "active")
    if type(status) is not str or status not in STATUS_CODES:
        return None
    attributes = body.get("attributes", {})
    if type(attributes) is not dict or personal_data_key(attributes) is not None:
        return None
    try:
        text = canonical_json(attributes)
    except (TypeError, ValueError):
        return None
    if len(text.encode()) > MAX_ATTRIBUTES_BYTES:
        return None
    return _Fields(code, kind, district, lat, lon, built_at, status, text)


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _device_body(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], RowProblem | None]:
    """A row's values as the `DeviceCreate` body, with where each body path came from in the row.

    Empty CSV cells are left out (so a default applies, or the field is missing); `lat`/`lon` go into
    `location`; `attr.<key>` columns and an `attributes` JSON text become the attributes object.
    """
    body: dict[str, Any] = {}
    origins = {f"location.{c}": c for c in _LOCATION_COLUMNS if c in values}
    if origins:  # a missing location is reported at the first flat coordinate column
        origins["location"] = next(iter(origins.values()))
    else:  # nested: a problem with the point is at location.lat / location.lon
        origins.update({f"location.{c}": f"location.{c}" for c in _LOCATION_COLUMNS})
    attributes: dict[str, Any] | None = None
    for column, raw in values.items():
        value = raw.strip() if isinstance(raw, str) else raw
        if value == "" or value is None:
            continue
        if column in _LOCATION_COLUMNS:
            body.setdefault("location", {})[column] = value
        elif column.startswith(ATTRIBUTE_PREFIX):
            key = column[len(ATTRIBUTE_PREFIX) :]
            attributes = attributes or {}
            attributes[key] = value
            origins[f"attributes.{key}"] = column
        elif column == "attributes" and isinstance(value, str):
            try:
                parsed = loads_bounded(value)
            except ValueError as exc:
                return body, origins, RowProblem("INVALID_VALUE", f"attributes is not valid JSON: {exc}", column)
            if not isinstance(parsed, dict):
                return body, origins, RowProblem("INVALID_VALUE", "attributes must be a JSON object", column)
            attributes = {**(attributes or {}), **parsed}
        else:
            body[column] = value
    if attributes is not None:
        body["attributes"] = attributes
    return body, origins, None


def _schema_problem(exc: ValidationError, origins: Mapping[str, str]) -> RowProblem:
    errors = exc.errors()
    first = errors[0]
    path = field_path(first.get("loc", ())) or ""
    coded = (first.get("ctx") or {}).get("error")
    reason = {"missing": "MISSING_FIELD", "extra_forbidden": "UNKNOWN_FIELD"}.get(
        first.get("type", ""), "INVALID_VALUE"
    )
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if isinstance(coded, CodedValueError):
        reason, message = coded.code, str(coded)
        if coded.subpath:
            path = f"{path}.{coded.subpath}" if path else coded.subpath
    column = origins.get(path) or _origin_prefix(path, origins) or path or None
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return RowProblem(reason, _cut(f"{column}: {message}" if column else message), column)


def _origin_prefix(path: str, origins: Mapping[str, str]) -> str | None:
    """The column of the longest known prefix of `path` (attributes.a.b came from attr.a)."""
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in origins:
            return origins[path]
    return None
