"""Every log line is redacted of API tokens, JWTs, URL passwords and secret query values, in console and JSON form."""

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
        structlog.get_logger("chain_gateway").warning("moved", rpc="https://member:rpc-pass@node2.example:8545/")
        logging.getLogger("indexer").warning("moved to %s", "postgresql://dirchain:db-pass@db/dirchain")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    for secret in (API_TOKEN, JWT, "hunter2", JWT.rsplit(".", 1)[1], "rpc-pass", "db-pass"):
        assert secret not in err
    assert "token=[redacted]&password=[redacted]&page=2" in err  # the rest of the line stays readable
    assert err.count("dct_[redacted]") == 2 and "ValueError: bad header" in err
    assert "https://[redacted]@node2.example:8545/" in err and "postgresql://[redacted]@db/dirchain" in err
