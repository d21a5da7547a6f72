"""The desensitized form: per-field masking rules declared in a catalog entry's schema, default deny.

A schema field is `{"name", "type", "personal"?: bool, "mask"?: RULE | {"rule": RULE, ...options}}`:

| rule | does | options |
|---|---|---|
| drop | the field is left out | |
| hash | HMAC-SHA256 (hex) with the zone's secret: linkable, not reversible by hashing guessed phone numbers | |
| keep_last_4 | all but the last 4 characters become `*` | |
| mask_middle | the middle at least half becomes `*` ("13*******78", "张**") | |
| generalize | time -> hour, day or month; number -> bucket "[lo, hi)" or rounded; location rounded | to, width |

`generalize` on a number takes `width` (a bucket) or `decimals` (rounding); on a {lat, lon} location it rounds
both to `decimals` (default 3, about 100 m).

Default deny: a `personal` field without a rule is dropped, and so is any column the schema does not declare.
Unknown rules or options are problems for `check_schema` (and an InvalidSchema error in `desensitize`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MASK_RULES", "SchemaProblem", "check_schema", "desensitize"]

MASK_RULES = ("drop", "hash", "keep_last_4", "mask_middle", "generalize")


@dataclass(frozen=True)
class SchemaProblem:
    """One problem of a schema: the path at fault ("fields[4].mask"), a stable code and a message."""

    field: str
    code: str
    message: str


def check_schema(schema: Mapping[str, Any]) -> list[SchemaProblem]:
    """Every problem of a schema's fields and masking rules (empty when desensitize can use it)."""
    raise NotImplementedError


def desensitize(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, Any], secret: bytes) -> list[dict[str, Any]]:
    """The rows in desensitized form: each field masked by its rule, undeclared and unruled personal ones dropped.

    InvalidSchema (the first problem of check_schema) when the schema's rules are wrong.
    """
    raise NotImplementedError
