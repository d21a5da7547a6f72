"""The desensitized form: per-field masking rules declared in a catalog entry's schema, default deny.

A schema field is `{"name", "type", "personal"?: bool, "mask"?: RULE | {"rule": RULE, ...options}}`:

| rule | does |
|---|---|
| drop | the field is left out |
| hash | HMAC-SHA256 (hex) with the zone's secret: linkable, not reversible by hashing guessed phone numbers |
| keep_last_4 | all but the last 4 characters become `*` (4 or fewer: all of them) |
| mask_middle | the middle at least half becomes `*` ("13*******78", "张**") |
| generalize | a time to its hour, day or month; a number to a bucket "[lo, hi)" or rounded; a location rounded |

Options of `generalize`: on a datetime or date `to` (hour, day, month; default day); on a number `width`
(the bucket) or `decimals` (rounding); on a {lat, lon} location `decimals` (default 3, about 100 m).

Default deny: a `personal` field without a rule is dropped, and so is any column the schema does not declare.
Unknown rules or options are problems for `check_schema` (and an InvalidSchema error in `desensitize`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registry_api.zone.errors import InvalidSchema, ZoneValueError

__all__ = ["MASK_RULES", "MIN_SECRET_BYTES", "SchemaProblem", "check_schema", "desensitize"]

MASK_RULES = ("drop", "hash", "keep_last_4", "mask_middle", "generalize")
MIN_SECRET_BYTES = 16  # the zone's HMAC key: at least 128 bits
_TIME_TYPES = {"datetime": ("hour", "day", "month"), "date": ("day", "month")}
_NUMBER_TYPES = ("number", "integer")
_MAX_DECIMALS = 6
_OPTIONS = {"generalize": {"to", "width", "decimals"}}  # rules not listed take no option

Transform = Callable[[Any], Any]


@dataclass(frozen=True)
class SchemaProblem:
    """One problem of a schema: the path at fault ("fields[4].mask"), a stable code and a message."""

    field: str
    code: str
    message: str


# ---------------------------------------------------------------- rules


def _hmac(secret: bytes) -> Transform:
    def transform(value: Any) -> Any:
        return hmac.new(secret, str(value).encode(), hashlib.sha256).hexdigest()

    return transform


def _keep_last_4(value: Any) -> str:
    text = str(value)
    return "*" * len(text) if len(text) <= 4 else "*" * (len(text) - 4) + text[-4:]  # short: nothing kept


def _mask_middle(value: Any) -> str:
    """Keep a quarter at each end (at least the first character), mask the rest: at least half is hidden."""
    text = str(value)
    if len(text) <= 1:
        return "*"
    head, tail = max(1, len(text) // 4), len(text) // 4
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail :]


def _generalize_time(to: str) -> Transform:
    def transform(value: Any) -> Any:
        try:
            moment = value if isinstance(value, date) else datetime.fromisoformat(str(value))
        except ValueError:
            return None  # unparseable: withheld rather than passed on in clear
        if to == "month":
            return f"{moment.year:04d}-{moment.month:02d}"
        if to == "day" or not isinstance(moment, datetime):
            return (moment.date() if isinstance(moment, datetime) else moment).isoformat()
        return moment.replace(minute=0, second=0, microsecond=0).isoformat()

    return transform


def _bucket(width: float) -> Transform:
    def transform(value: Any) -> Any:
        lower = math.floor(float(value) / width) * width
        return f"[{lower:g}, {lower + width:g})"

    return transform


def _rounded(decimals: int) -> Transform:
    def transform(value: Any) -> Any:
        if isinstance(value, Mapping):  # a {lat, lon} location
            return {name: round(float(part), decimals) for name, part in value.items() if name in ("lat", "lon")}
        return round(float(value), decimals)

    return transform


def _none_safe(transform: Transform) -> Transform:
    def wrapped(value: Any) -> Any:
        return None if value is None else transform(value)

    return wrapped


# ---------------------------------------------------------------- schema check


def _rule_and_options(mask: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(mask, Mapping):
        return mask.get("rule"), {name: option for name, option in mask.items() if name != "rule"}
    return mask, {}


def _generalize_problems(at: str, kind: Any, options: Mapping[str, Any]) -> list[SchemaProblem]:
    def problem(message: str) -> list[SchemaProblem]:
        return [SchemaProblem(at, "INVALID_MASK_OPTION", message)]

    if kind in _TIME_TYPES:
        if set(options) - {"to"}:
            return problem(f"generalize of a {kind} takes only `to`")
        if options.get("to", "day") not in _TIME_TYPES[kind]:
            return problem(f"generalize of a {kind} takes `to` in {', '.join(_TIME_TYPES[kind])}")
        return []
    if kind in (*_NUMBER_TYPES, "location"):
        if set(options) - {"width", "decimals"} or ("width" in options and "decimals" in options):
            return problem("generalize of a number takes `width` or `decimals`, of a location `decimals`")
        width = options.get("width")
        if width is not None and (
            kind == "location" or isinstance(width, bool) or not isinstance(width, int | float) or not width > 0
        ):
            return problem("`width` must be a number above 0 (and only for numbers)")
        decimals = options.get("decimals")
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= _MAX_DECIMALS
        ):
            return problem(f"`decimals` must be a whole number from 0 to {_MAX_DECIMALS}")
        if kind in _NUMBER_TYPES and width is None and decimals is None:
            return problem("generalize of a number needs `width` (a bucket) or `decimals` (rounding)")
        return []
    return [SchemaProblem(at, "MASK_NOT_APPLICABLE", f"generalize does not apply to a field of type {kind!r}")]


def _field_problems(index: int, spec: Any, seen: set[str]) -> list[SchemaProblem]:
    at = f"fields[{index}]"
    if not isinstance(spec, Mapping):
        return [SchemaProblem(at, "INVALID_FIELD", "a field must be an object with name and type")]
    problems = []
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        problems.append(SchemaProblem(f"{at}.name", "INVALID_FIELD", "a field needs a non-empty name"))
    elif name in seen:
        problems.append(SchemaProblem(f"{at}.name", "DUPLICATE_FIELD", f"field {name!r} is declared twice"))
    else:
        seen.add(name)
    if not isinstance(spec.get("type"), str):
        problems.append(SchemaProblem(f"{at}.type", "INVALID_FIELD", "a field needs a type"))
    if not isinstance(spec.get("personal", False), bool):
        problems.append(SchemaProblem(f"{at}.personal", "INVALID_FIELD", "personal must be true or false"))
    if "mask" not in spec:
        return problems
    rule, options = _rule_and_options(spec["mask"])
    if rule not in MASK_RULES:
        message = f"unknown mask rule {rule!r}; the rules are {', '.join(MASK_RULES)}"
        return [*problems, SchemaProblem(f"{at}.mask", "UNKNOWN_MASK_RULE", message)]
    unknown = set(options) - _OPTIONS.get(rule, set())
    if unknown:
        message = f"mask rule {rule} takes no option {', '.join(sorted(unknown))}"
        return [*problems, SchemaProblem(f"{at}.mask", "UNKNOWN_MASK_OPTION", message)]
    if rule == "generalize":
        problems += _generalize_problems(f"{at}.mask", spec.get("type"), options)
    return problems


def check_schema(schema: Mapping[str, Any]) -> list[SchemaProblem]:
    """Every problem of a schema's fields and masking rules (empty when desensitize can use it)."""
    if not isinstance(schema, Mapping):
        return [SchemaProblem("schema", "INVALID_SCHEMA", "the schema must be an object")]
    fields = schema.get("fields")
    if not isinstance(fields, list):
        return [SchemaProblem("fields", "INVALID_SCHEMA", "the schema needs a list of fields")]
    seen: set[str] = set()
    return [problem for index, spec in enumerate(fields) for problem in _field_problems(index, spec, seen)]


# ---------------------------------------------------------------- desensitize


def _transform(spec: Mapping[str, Any], secret: bytes) -> Transform | None:
    """The field's transform, None to drop it; check_schema has passed."""
    if "mask" not in spec:
        return None if spec.get("personal", False) else (lambda value: value)  # default deny for personal fields
    rule, options = _rule_and_options(spec["mask"])
    if rule == "drop":
        return None
    if rule == "hash":
        return _none_safe(_hmac(secret))
    if rule == "keep_last_4":
        return _none_safe(_keep_last_4)
    if rule == "mask_middle":
        return _none_safe(_mask_middle)
    kind = spec["type"]
    if kind in _TIME_TYPES:
        return _none_safe(_generalize_time(options.get("to", "day")))
    if "width" in options:
        return _none_safe(_bucket(float(options["width"])))
    return _none_safe(_rounded(int(options.get("decimals", 3))))


def desensitize(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, Any], secret: bytes) -> list[dict[str, Any]]:
    """The rows in desensitized form: each field masked by its rule, undeclared and unruled personal ones dropped.

    InvalidSchema (the first problem of check_schema) when the schema's rules are wrong.
    """
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ZoneValueError(f"the zone secret must be at least {MIN_SECRET_BYTES} bytes", code="ZONE_SECRET_WEAK")
    problems = check_schema(schema)
    if problems:
        raise InvalidSchema(problems[0].message, field=problems[0].field, code=problems[0].code)
    plan = [(spec["name"], _transform(spec, secret)) for spec in schema["fields"]]
    kept = [(name, transform) for name, transform in plan if transform is not None]
    return [{name: transform(row.get(name)) for name, transform in kept} for row in rows]
