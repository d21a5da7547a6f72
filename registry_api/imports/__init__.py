"""Bulk import of devices from CSV or NDJSON files (`POST /v1/imports`, `dirchain import`).

formats   the file: format detection, CSV header, a generator of raw records from a byte offset
upload    the request body streamed to disk (raw or multipart), fsynced, size-capped
rows      one row's validation: the device API's schema and code rules, the city's geography
store     SQL of jobs, rows and batches; every step one transaction
runner    the background worker: read, record, send, follow, split; resumes from SQL after a crash
public    progress, ETA and the per-row report as CSV
"""

from __future__ import annotations

from registry_api.imports.runner import ImportRunner, batch_key
from registry_api.imports.store import create_import_tables

__all__ = ["ImportRunner", "batch_key", "create_import_tables"]
