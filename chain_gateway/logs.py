"""One logging set-up for every long-running process (API, gateway worker, indexer, dev profile).

structlog renders both its own events and the standard library's `logging` records (uvicorn, the indexer),
as JSON lines with `DIRCHAIN_LOG_JSON=true` or as plain console lines otherwise. Callers log identifiers
(operation ids, org codes, tx hashes), never keys, passwords or tokens; settings hold those as SecretStr.
What a client sends can still carry one (a token in a query string lands in uvicorn's access log, an error
message may quote a header), so every rendered line is redacted of API tokens, JWTs and secret query values.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

__all__ = ["RedactingFormatter", "configure_logging", "redact"]

# Libraries that log every HTTP request or scheduler tick at INFO: only their warnings are worth a line.
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
REDACTED = "[redacted]"
_SECRETS = (
    (re.compile(r"dct_[A-Za-z0-9_-]+"), "dct_" + REDACTED),  # API tokens (registry_api.auth.TOKEN_PREFIX)
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "jwt" + REDACTED),  # capability tokens
    (
        re.compile(r"(?i)([?&](?:access_token|token|api_key|key|private_key|password|secret|signature)=)[^&\s\"']+"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),  # user:password@ of an RPC or database URL
)


def redact(text: str) -> str:
    """`text` with API tokens, JWTs, URL passwords and the values of secret-named query parameters replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, redacting the rendered line (message, access-log URL and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
        RedactingFormatter(
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
    # uvicorn's own logging config (run without log_config=None, e.g. an embedded server) gives its loggers
    # handlers of their own and stops propagation: their lines, access-log URLs included, would skip redaction
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False
