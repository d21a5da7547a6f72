"""Logging: one renderer for every process, and no secret in a logged traceback."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from chain_gateway.logs import configure_logging

SECRET = "dct_0123456789abcdef-not-for-logs"


def _fail_with_a_secret_in_scope() -> None:
    authorization = f"Bearer {SECRET}"  # a local variable, as in a request handler's frame
    raise RuntimeError(f"failed with {len(authorization)} header bytes")


@pytest.mark.parametrize("json_logs", [False, True])
def test_logged_traceback_names_the_error_but_not_the_locals(
    json_logs: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_logs)
    try:
        try:
            _fail_with_a_secret_in_scope()
        except RuntimeError:
            logging.getLogger("registry_api").exception("request failed")
            structlog.get_logger("chain_gateway").exception("operation failed")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    assert err.count("RuntimeError: failed with") == 2
    assert "_fail_with_a_secret_in_scope" in err
    assert SECRET not in err
    if json_logs:
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [line["event"] for line in lines] == ["request failed", "operation failed"]
        assert all("Traceback" in line["exception"] for line in lines)
