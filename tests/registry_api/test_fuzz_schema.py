"""Schemathesis over the API's own OpenAPI schema: no operation answers 5xx, every 4xx carries the error body.

Every operation of the schema is fuzzed in-process on one app (SQLite and PostgreSQL; PostgreSQL refuses NUL in
text, SQLite does not) with cases that fit the schema and cases that break it, sent with a real token of an org
holding every role (so writes get past the role checks to validation, the chain and the outbox) and with none.
The checks: schemathesis' `not_a_server_error` and `response_schema_conformance` (the declared error responses are
the `ErrorPublic` body), and every 4xx is `{code, message, field}` with a non-empty code.

Cost is bounded by FUZZ_EXAMPLES examples per operation and mode (default 3; `derandomize=True`, so a run is the
same every time and a failure replays). Run more locally, e.g.
`FUZZ_EXAMPLES=200 .venv/bin/pytest -q -n 0 tests/registry_api/test_fuzz_schema.py -s` (prints the figures).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.registry_api.support import Api

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))  # per operation and generation mode (CI: ~25 s a backend)
ANONYMOUS_EXAMPLES = 1  # per operation and mode: the token is checked before anything else
FUZZING_ORG = "BJ-EIB"  # ADMIN, REGISTRAR, REVIEWER, RELAYER: writes reach validation and the chain
# /v1/zone/entries/{id}/rows and /v1/resolver/jwks are not generated from here: no schema-level issue, only headers


def _send(api: Api, case: schemathesis.Case, headers: dict[str, str]) -> httpx.Response:
    """The case sent through the fixture's TestClient (the app's lifespan already runs there, once).

    Schemathesis' own ASGI client would start the app's lifespan a second time; its requests-style keyword
    arguments are turned into httpx's here.
    """
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url="http://testserver")
    sent_headers = {k: v for k, v in kwargs.pop("headers", {}).items() if k.lower() != "authorization"}
    sent_headers.update(headers)
    cookies = kwargs.pop("cookies", None) or {}
    if cookies:  # per-request cookies are deprecated in httpx: as a header
        sent_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    kwargs.pop("auth", None)
    data, files = kwargs.pop("data", None), kwargs.pop("files", None)
    if files or isinstance(data, dict | list):  # multipart or a form: encoded by requests, as schemathesis would
        prepared = requests.PreparedRequest()
        prepared.prepare_headers(None)
        prepared.prepare_body(data, files)
        data = prepared.body
        sent_headers["Content-Type"] = prepared.headers["Content-Type"]
    if data is not None:
        kwargs["content"] = data
    response = api.client.request(headers=sent_headers, **kwargs)
    return response


def _check(case: schemathesis.Case, response: httpx.Response, seen: Counter[str]) -> None:
    seen[str(response.status_code)] += 1
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict), (case.method, case.formatted_path, response.text)
        assert isinstance(body.get("code"), str) and body["code"], (case.method, case.formatted_path, body)
        assert isinstance(body.get("message"), str), body
        assert body.get("field") is None or isinstance(body["field"], str), body


def _fuzz(api: Api, operation: schemathesis.APIOperation, token: str | None, examples: int, seen: Counter[str]) -> int:
    """Run `examples` cases of each generation mode against one operation; the number of cases sent."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sent = 0
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=examples * 2,
        derandomize=True,  # the same cases every run: a failure replays as is
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is printed as found
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = _send(api, case, headers)
        try:
            _check(case, response, seen)
        except BaseException:
            print(f"failing case: {case.as_curl_command()}\n-> {response.status_code} {response.text[:500]}")  # noqa: T201
            raise

    started = time.monotonic()
    run()
    if os.environ.get("FUZZ_TIMES"):
        print(f"{operation.method.upper()} {operation.path}: {sent} cases in {time.monotonic() - started:.1f} s")  # noqa: T201
    return sent


@pytest.fixture
def schema(api: Api) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(api.app.openapi())


def _operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def test_no_operation_answers_5xx_or_an_error_without_its_body(api: Api, schema: schemathesis.BaseSchema) -> None:
    # FastAPI's default 422 body ({detail}) is not what the API answers: every operation documents ErrorPublic
    documented = json.dumps(api.app.openapi()["paths"])
    assert "HTTPValidationError" not in documented
    operations = _operations(schema)
    seen: Counter[str] = Counter()
    failed: list[str] = []
    sent = 0
    for operation in operations:  # every operation is tried even after one fails: one run shows them all
        try:
            sent += _fuzz(api, operation, api.tokens[FUZZING_ORG], FUZZ_EXAMPLES, seen)
        except Exception as exc:
            failed.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:300]}")
    print(f"fuzzed {len(operations)} operations with a token: {sent} cases, statuses {dict(seen)}")  # noqa: T201
    assert not failed, "\n".join(failed)
    assert len(operations) > 60 and sent >= len(operations) * 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the token is checked before the database
def test_no_operation_lets_a_request_without_a_token_through(api: Api, schema: schemathesis.BaseSchema) -> None:
    public = {"/healthz", "/v1/resolver/jwks"}
    seen: Counter[str] = Counter()
    for operation in _operations(schema):
        statuses: Counter[str] = Counter()
        _fuzz(api, operation, None, ANONYMOUS_EXAMPLES, statuses)
        seen.update(statuses)
        if operation.path not in public:  # 400: a body that is not JSON at all is refused before the token
            assert set(statuses) <= {"401", "400"}, (operation.method, operation.path, statuses)
    print(f"anonymous cases: statuses {dict(seen)}")  # noqa: T201
