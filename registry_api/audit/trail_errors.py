"""Errors of a record audit that are the caller's (or the mirror's state), each with a stable code and field.

    RecordAuditError                      root; `code`, `field`
    ├── UnknownKind (ValueError)          422 UNKNOWN_KIND, field `kind`
    ├── InvalidRecordId (ValueError)      422 INVALID_ID, field `id`
    ├── RecordNotFound (LookupError)      404 RECORD_NOT_FOUND, field `id`: neither the chain nor the mirror has it
    └── MirrorNotSynced (RuntimeError)    409 MIRROR_NOT_SYNCED: the mirror has no checkpoint to audit at

A record the chain has and the mirror lacks (or the other way round) is not an error: it is a failed check.
"""

from __future__ import annotations

__all__ = ["InvalidRecordId", "MirrorNotSynced", "RecordAuditError", "RecordNotFound", "UnknownKind"]


class RecordAuditError(Exception):
    """A record audit that cannot run for a reason the caller can act on."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownKind(RecordAuditError, ValueError):
    status = 422
    code = "UNKNOWN_KIND"

    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(f"unknown record kind {kind!r}; one of {', '.join(known)}", field="kind")
        self.known = known


class InvalidRecordId(RecordAuditError, ValueError):
    status = 422
    code = "INVALID_ID"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="id")


class RecordNotFound(RecordAuditError, LookupError):
    status = 404
    code = "RECORD_NOT_FOUND"

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"no {kind} {record_id} on the chain or in the mirror", field="id")


class MirrorNotSynced(RecordAuditError, RuntimeError):
    status = 409
    code = "MIRROR_NOT_SYNCED"

    def __init__(self) -> None:
        super().__init__("the mirror has no checkpoint yet: nothing to audit until the indexer has run")
