"""One logging set-up for every long-running process (API, gateway worker, indexer, dev profile).

structlog renders both its own events and the standard library's `logging` records (uvicorn, the indexer),
as JSON lines with `DIRCHAIN_LOG_JSON=true` or as plain console lines otherwise. Callers log identifiers
(operation ids, org codes, tx hashes), never keys, passwords or tokens; settings hold those as SecretStr.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]

# Libraries that log every HTTP request or scheduler tick at INFO: only their warnings are worth a line.
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler")


def configure_logging(json_logs: bool, level: int = logging.INFO) -> None:
    """Route structlog and stdlib logging to stderr through one renderer (call once, at process start)."""
    shared: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    # Tracebacks without local variables: a frame's locals can hold bearer tokens, keys or request headers.
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if json_logs else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
