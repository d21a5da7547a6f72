"""Errors of the data zone's core, each with a stable `code` and the `field` at fault, for the routes to map.

    ZoneError                                   root: code, message, field (a path like "params.column" or None)
    ├── ZoneValueError (ZoneError, ValueError)
    │   ├── InvalidParams                       INVALID_PARAMS: an algorithm's params fail validation
    │   ├── InvalidSchema                       INVALID_SCHEMA: masking rules or disclosure settings are wrong
    │   └── InvalidRelease                      INVALID_RELEASE: a release asked with a bad epsilon, k or mode
    ├── UnknownAlgorithm (ZoneError, LookupError)   ALGORITHM_UNKNOWN: no built-in implementation has that hash
    └── BudgetRefused (ZoneError)               EPSILON_TOO_LARGE / PRIVACY_BUDGET_EXHAUSTED

The routes translate them at one boundary into `registry_api.errors.ApiError` (422, 404 and 403/409).
"""

from __future__ import annotations

__all__ = [
    "BudgetRefused",
    "InvalidParams",
    "InvalidRelease",
    "InvalidSchema",
    "UnknownAlgorithm",
    "ZoneError",
    "ZoneValueError",
]


class ZoneError(Exception):
    """Root of the zone's errors: a stable `code`, a human `message` and the `field` at fault (or None)."""

    code = "ZONE_ERROR"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ZoneValueError(ZoneError, ValueError):
    """A value given to the zone is wrong (client input or a catalog entry's schema)."""


class InvalidParams(ZoneValueError):
    """An algorithm's params fail validation; `field` names the param (e.g. "group_by[1]")."""

    code = "INVALID_PARAMS"


class InvalidSchema(ZoneValueError):
    """A catalog entry's schema has unknown or ill-formed masking rules or disclosure settings."""

    code = "INVALID_SCHEMA"


class InvalidRelease(ZoneValueError):
    """A release was asked with a bad epsilon or k, or without noise but without asking for the k-only mode."""

    code = "INVALID_RELEASE"


class UnknownAlgorithm(ZoneError, LookupError):
    """No built-in implementation has that code hash: the zone runs no other code."""

    code = "ALGORITHM_UNKNOWN"


class BudgetRefused(ZoneError):
    """A job's epsilon is over the per-job cap (EPSILON_TOO_LARGE) or over what is left (PRIVACY_BUDGET_EXHAUSTED)."""

    code = "PRIVACY_BUDGET_EXHAUSTED"
