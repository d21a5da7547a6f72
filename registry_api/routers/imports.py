"""/v1/imports: upload a CSV or NDJSON file of devices, follow the import, download its per-row report."""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from registry_api.deps import PageDep, PrincipalDep, RegistrarDep
from registry_api.encoding import canonical_json
from registry_api.errors import ApiError
from registry_api.imports import store
from registry_api.imports.formats import FileProblem, format_from, inspect_file
from registry_api.imports.public import import_accepted, import_public, report_csv
from registry_api.imports.upload import receive_upload
from registry_api.models import ImportJob
from registry_api.schemas.common import ErrorPublic
from registry_api.schemas.imports import ImportAccepted, ImportPublic, ImportsPublic
from registry_api.writes import IdempotencyKey

__all__ = ["router"]

router = APIRouter(prefix="/v1/imports", tags=["imports"])

ImportIdPath = Annotated[str, Path(min_length=1, max_length=32, description="the import's id")]
ImportStatus = Literal["queued", "validating", "submitting", "done", "failed"]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        400: "MALFORMED_MULTIPART",
        401: "no or bad token (UNAUTHENTICATED)",
        403: "ROLE_REQUIRED (uploads need REGISTRAR)",
        404: "IMPORT_NOT_FOUND (also for another org's import)",
        409: "IDEMPOTENCY_CONFLICT: the key was used for another file; IMPORT_FINISHED: nothing left to cancel",
        413: "IMPORT_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
        422: "EMPTY_FILE, UNSUPPORTED_FORMAT, NOT_UTF8, NO_HEADER, MISSING_COLUMN, UNKNOWN_COLUMN, DUPLICATE_COLUMN, "
        "CONFLICTING_COLUMNS, NO_FILE",
    }.items()
}


def _job(request: Request, import_id: str, org_code: str) -> ImportJob:
    job = store.get_job(request.app.state.engine, import_id)
    if job is None or job.org_code != org_code:  # another org's import does not exist for the caller
        raise ApiError(404, "IMPORT_NOT_FOUND", f"no import {import_id} of {org_code}", field="import_id")
    return job


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload devices to import (CSV or NDJSON)",
    responses=_ERRORS,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
            },
        }
    },
)
async def create_import(
    request: Request,
    principal: RegistrarDep,
    response: Response,
    filename: Annotated[str | None, Query(max_length=255, description="a raw body's file name")] = None,
    idempotency_key: IdempotencyKey = None,
) -> ImportAccepted:
    """Register many devices of the caller's org from a file: the body itself (Content-Type text/csv or
    application/x-ndjson, or a `filename` ending .csv/.ndjson/.jsonl) or the `file` part of a form.

    CSV columns: code, type, district, lat, lon, built_at; optional status, owner_org (must be the caller's),
    attributes (JSON object) or attr.<key> columns. NDJSON: one device object per line as POST /v1/devices
    takes it. The file is stored as it streams in and checked for format and header; the rows are then
    validated, checked for duplicates (in the file and on the ledger) and registered in batches in the
    background. Follow `links.status`; `links.report` is the per-row report (CSV).
    """
    settings = request.app.state.settings
    engine = request.app.state.engine
    import_id = uuid.uuid4().hex
    settings.import_dir.mkdir(parents=True, exist_ok=True)
    part = settings.import_dir / f"{import_id}.part"
    try:
        if not request.headers.get("content-type", "").lower().startswith("multipart/"):
            format_from(request.headers.get("content-type"), filename)  # refuse a wrong type before the body
        upload = await receive_upload(request, part, settings.import_max_bytes, filename)
        layout = await run_in_threadpool(inspect_file, part, format_from(upload.content_type, upload.file_name))
    except FileProblem as exc:
        part.unlink(missing_ok=True)
        raise ApiError(exc.status, exc.code, exc.message, field=exc.field) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    path = settings.import_dir / f"{import_id}.{layout.format}"
    os.replace(part, path)
    job = ImportJob(
        import_id=import_id,
        org_code=principal.org_code,
        account=principal.account,
        idempotency_key=idempotency_key,
        file_name=upload.file_name[:255],
        format=layout.format,
        file_path=str(path),
        file_bytes=upload.size,
        file_sha256=upload.sha256,
        columns_json=None if layout.columns is None else canonical_json(list(layout.columns)),
        offset=layout.start.offset,
        lines_read=layout.start.lines,
    )
    stored = await run_in_threadpool(store.insert_job, engine, job)
    if stored is None:  # the key is taken: the same file again is a replay, another file a conflict
        path.unlink(missing_ok=True)
        existing = await run_in_threadpool(store.job_by_key, engine, principal.org_code, idempotency_key or "")
        if existing is None or existing.file_sha256 != upload.sha256:
            raise ApiError(
                409,
                "IDEMPOTENCY_CONFLICT",
                "this Idempotency-Key was already used with a different file",
                field="Idempotency-Key",
            )
        response.headers["Idempotent-Replayed"] = "true"
        stored = existing
    runner = getattr(request.app.state, "imports", None)
    if runner is not None:
        runner.wake()
    response.headers["Location"] = f"/v1/imports/{stored.import_id}"
    return import_accepted(stored)


@router.get("", summary="The caller's imports", responses=_ERRORS)  # type: ignore[arg-type]
def list_imports(
    request: Request,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[ImportStatus | None, Query(description="only imports in this status")] = None,
) -> ImportsPublic:
    """The imports of the caller's org, newest first, with their progress."""
    jobs, count = store.list_jobs(request.app.state.engine, principal.org_code, page.limit, page.offset, status)
    return ImportsPublic(data=[import_public(job) for job in jobs], count=count)


@router.get("/{import_id}", summary="An import's progress", responses=_ERRORS)  # type: ignore[arg-type]
def get_import(import_id: ImportIdPath, request: Request, principal: PrincipalDep) -> ImportPublic:
    """Status, rows read/accepted/rejected/confirmed, batches, rates and ETA."""
    return import_public(_job(request, import_id, principal.org_code))


@router.get(
    "/{import_id}/report",
    summary="An import's per-row report (CSV)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one line per data row"}, **_ERRORS},  # type: ignore[dict-item]
)
def import_report(
    import_id: ImportIdPath,
    request: Request,
    principal: PrincipalDep,
    outcome: Annotated[Literal["accepted", "rejected"] | None, Query(description="only these rows")] = None,
) -> StreamingResponse:
    """CSV, streamed: row, line, code, outcome (accepted|rejected), confirmed, operation_id, tx_hash,
    block_number, reason_code, message, column. Available while the import runs (rows read so far)."""
    job = _job(request, import_id, principal.org_code)
    suffix = f"-{outcome}" if outcome else ""
    return StreamingResponse(
        report_csv(request.app.state.engine, job.import_id, outcome),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.import_id}{suffix}.csv"'},
    )


@router.post(
    "/{import_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel an import",
    responses=_ERRORS,  # type: ignore[arg-type]
)
def cancel_import(import_id: ImportIdPath, request: Request, principal: RegistrarDep) -> ImportPublic:
    """Stop reading the file and sending batches: batches already in the outbox still land (their rows are
    confirmed), recorded ones are not sent (their rows are rejected as CANCELLED); the import ends failed with
    error CANCELLED. Rows not yet read are not in the report."""
    job = _job(request, import_id, principal.org_code)
    if job.status not in store.ACTIVE:
        raise ApiError(
            409, "IMPORT_FINISHED", f"import {import_id} is {job.status}: nothing to cancel", field="import_id"
        )
    engine = request.app.state.engine
    store.stop(engine, job.import_id, "CANCELLED", f"cancelled by {principal.account} of {principal.org_code}")
    runner = getattr(request.app.state, "imports", None)
    if runner is not None:
        runner.wake()
    return import_public(_job(request, import_id, principal.org_code))
