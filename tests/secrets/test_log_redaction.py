"""Every log line is redacted of API tokens, JWTs and secret query values, in console and JSON form alike."""

from __future__ import annotations

import logging
import logging.config

import pytest
import structlog
import uvicorn.config

from chain_gateway.logs import configure_logging

API_TOKEN = "dct_" + "Zx9-_" * 8 + "abc"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJCSi1DTUMifQ.c2lnbmF0dXJl-_x"


@pytest.mark.parametrize("json_logs", [False, True], ids=["console", "json"])
def test_tokens_in_urls_messages_and_tracebacks_are_redacted(
    json_logs: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # as an embedded uvicorn server leaves them: its loggers with handlers of their own and no propagation
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    configure_logging(json_logs)
    try:
        access = logging.getLogger("uvicorn.access")
        access.info(
            '%s - "%s %s HTTP/1.1" %d', "127.0.0.1:5000", "GET", f"/v1/devices?token={JWT}&password=hunter2&page=2", 401
        )
        try:
            raise ValueError(f"bad header Authorization: Bearer {API_TOKEN}")
        except ValueError:
            structlog.get_logger("registry_api").exception("request failed", token=API_TOKEN)
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    for secret in (API_TOKEN, JWT, "hunter2", JWT.rsplit(".", 1)[1]):
        assert secret not in err
    assert "token=[redacted]&password=[redacted]&page=2" in err  # the rest of the line stays readable
    assert err.count("dct_[redacted]") == 2 and "ValueError: bad header" in err
