"""Hostile credentials: missing, malformed, forged, revoked and expired tokens, forged and expired capability
tokens, and every write route called by an org without the role it needs (nothing reaches the outbox).

The table ROUTE_ROLES names what each route of the app needs; a route added without an entry fails
`test_every_route_of_the_app_has_an_expected_role`, so a new write route cannot escape the role checks below.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlmodel import Session
from typer.testing import CliRunner

from chain_gateway.outbox import Operation
from chain_gateway.settings import get_settings
from indexer.store import Store
from registry_api.auth import (
    TOKEN_PREFIX,
    PrincipalCache,
    create_token_table,
    hash_token,
    issue_token,
    list_tokens,
    parse_lifetime,
    resolve_principal,
    revoke_token,
)
from registry_api.capability import AUDIENCE, SigningKey, SigningKeys, new_jti
from registry_api.cli import app as cli
from registry_api.models import ApiToken
from tests.registry_api.support import Api, device

PUBLIC, TOKEN, MEMBER = "public", "token", "member"  # no token; any token; an account of a member org
# What each route needs: PUBLIC, TOKEN, MEMBER or the on-chain role (REGISTRAR, ADMIN, REVIEWER, AUDITOR).
ROUTE_ROLES: dict[tuple[str, str], str] = {
    ("POST", "/v1/devices"): "REGISTRAR",
    ("GET", "/v1/devices"): TOKEN,
    ("GET", "/v1/devices/{code}"): TOKEN,
    ("GET", "/v1/devices/{code}/history"): TOKEN,
    ("PATCH", "/v1/devices/{code}"): "REGISTRAR",
    ("POST", "/v1/devices/{code}/lifecycle"): "REGISTRAR",
    ("POST", "/v1/devices/{code}/inspections"): "REGISTRAR",
    ("POST", "/v1/imports"): "REGISTRAR",
    ("GET", "/v1/imports"): TOKEN,
    ("GET", "/v1/imports/{import_id}"): TOKEN,
    ("GET", "/v1/imports/{import_id}/report"): TOKEN,
    ("POST", "/v1/imports/{import_id}/cancel"): "REGISTRAR",
    ("POST", "/v1/catalog"): "REGISTRAR",
    ("GET", "/v1/catalog"): TOKEN,
    ("GET", "/v1/catalog/{entry_id}"): TOKEN,
    ("PATCH", "/v1/catalog/{entry_id}"): "REGISTRAR",
    ("POST", "/v1/catalog/{entry_id}/status"): "REGISTRAR",
    ("GET", "/v1/catalog/{entry_id}/versions"): TOKEN,
    ("GET", "/v1/catalog/{entry_id}/lineage"): TOKEN,
    ("POST", "/v1/sharing-requests"): MEMBER,
    ("GET", "/v1/sharing-requests"): TOKEN,
    ("GET", "/v1/sharing-requests/{request_id}"): TOKEN,
    ("GET", "/v1/sharing-requests/{request_id}/approval-typed-data"): TOKEN,
    ("POST", "/v1/sharing-requests/{request_id}/approvals"): MEMBER,
    ("POST", "/v1/sharing-requests/{request_id}/refusals"): MEMBER,
    ("GET", "/v1/grants"): TOKEN,
    ("GET", "/v1/grants/{grant_id}"): TOKEN,
    ("POST", "/v1/grants/{grant_id}/revoke"): MEMBER,
    ("POST", "/v1/algorithms"): MEMBER,
    ("GET", "/v1/algorithms"): TOKEN,
    ("GET", "/v1/algorithms/{algorithm_id}"): TOKEN,
    ("POST", "/v1/algorithms/{algorithm_id}/evaluations"): "REVIEWER",
    ("POST", "/v1/algorithms/{algorithm_id}/listing"): "REVIEWER",
    ("POST", "/v1/algorithms/{algorithm_id}/delisting"): "REVIEWER",
    ("GET", "/v1/catalog/{entry_id}/algorithms"): TOKEN,
    ("POST", "/v1/catalog/{entry_id}/algorithms"): "REGISTRAR",
    ("DELETE", "/v1/catalog/{entry_id}/algorithms/{algorithm_id}"): "REGISTRAR",
    ("POST", "/v1/reviews"): "REGISTRAR",
    ("GET", "/v1/reviews"): TOKEN,
    ("GET", "/v1/reviews/{project_id}"): TOKEN,
    ("POST", "/v1/reviews/{project_id}/approval"): "REVIEWER",
    ("POST", "/v1/reviews/{project_id}/refusal"): "REVIEWER",
    ("POST", "/v1/reviews/{project_id}/withdrawal"): "REGISTRAR",
    ("POST", "/v1/carriers"): "REGISTRAR",
    ("GET", "/v1/carriers"): TOKEN,
    ("GET", "/v1/carriers/{code}"): TOKEN,
    ("POST", "/v1/carriers/{code}/usage"): "REGISTRAR",
    ("POST", "/v1/carriers/{code}/reuse-requests"): "REGISTRAR",
    ("GET", "/v1/carrier-reuse-requests"): TOKEN,
    ("GET", "/v1/carrier-reuse-requests/{request_id}"): TOKEN,
    ("POST", "/v1/carrier-reuse-requests/{request_id}/decision"): "REGISTRAR",
    ("POST", "/v1/carrier-reuse-requests/{request_id}/withdrawal"): "REGISTRAR",
    ("GET", "/v1/operations/{operation_id}"): TOKEN,
    ("GET", "/v1/members"): TOKEN,
    ("GET", "/v1/members/{code}"): TOKEN,
    ("GET", "/v1/code-rules"): TOKEN,
    ("GET", "/v1/code-rules/{type}"): TOKEN,
    ("POST", "/v1/code-rules"): "ADMIN",
    ("GET", "/v1/proposals"): TOKEN,
    ("GET", "/v1/proposals/{proposal_id}"): TOKEN,
    ("POST", "/v1/proposals/{proposal_id}/votes"): "ADMIN",
    ("GET", "/v1/stats"): TOKEN,
    ("GET", "/v1/stats/report.csv"): TOKEN,
    ("GET", "/v1/stats/report.html"): TOKEN,
    ("POST", "/v1/resolve"): MEMBER,  # a decision and a usage receipt, not a chain write
    ("GET", "/v1/resolver/jwks"): PUBLIC,  # the public keys data holders verify capability tokens with
    ("POST", "/v1/zone/jobs"): MEMBER,
    ("GET", "/v1/zone/jobs/{job_id}"): TOKEN,
    ("GET", "/v1/zone/entries/{entry_id}/rows"): TOKEN,
    ("GET", "/v1/zone/receipts/{receipt_id}"): TOKEN,
    ("GET", "/v1/audit/verify"): "AUDITOR",
    ("GET", "/v1/audit/records/{kind}/{id}"): TOKEN,
    ("GET", "/v1/audit/approvals"): TOKEN,
    ("GET", "/v1/audit/approvals/{tx_hash}/{log_index}"): TOKEN,
    ("GET", "/v1/audit/code"): TOKEN,
    ("GET", "/v1/audit/report"): "AUDITOR",
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/v1/me"): TOKEN,
    ("GET", "/v1/districts"): TOKEN,
    ("GET", "/v1/map/clusters"): TOKEN,
    ("GET", "/"): PUBLIC,  # the console: static pages that hold nothing; their data calls carry the user's token
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/"): PUBLIC,
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
LACKING = {"REGISTRAR": "CO-ZHCS", "ADMIN": "BJ-EMB", "REVIEWER": "BJ-CY", "AUDITOR": "BJ-PSB"}  # holds no such role
PATH_VALUES = {
    "code": "BJ-CAMR-110105000001",
    "import_id": "0" * 32,
    "operation_id": "0" * 32,
    "job_id": "0" * 32,
    "type": "camera.road",
    "kind": "device",
    "id": "BJ-CAMR-110105000001",
    "tx_hash": "0x" + "00" * 32,
}


def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves through its routers (the docs and /metrics are not API routes)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            found.update((method, str(route.path)) for method in route.methods or ())
    return found


def _url(path: str) -> str:
    for name in ("entry_id", "request_id", "grant_id", "algorithm_id", "project_id", "proposal_id", "receipt_id"):
        path = path.replace("{" + name + "}", "1")
    path = path.replace("{log_index}", "0")
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def _call(api: Api, method: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if path == "/v1/imports":  # a raw CSV body: the role is checked before the file is read
        return api.client.post(path, content=b"code\n", headers={**headers, "Content-Type": "text/csv"})
    if method in WRITES:  # an empty body: the role is checked before the body is validated
        body = {"entry_id": 1, "action": "read_raw"} if path == "/v1/resolve" else {}  # the caller is checked after
        return api.client.request(method, _url(path), json=body, headers=headers)
    return api.client.request(method, _url(path), headers=headers)


def _outbox_rows(api: Api) -> int:
    """Operations in the gateway's durable outbox: what a write that got through would have added."""
    engine: Engine = api.app.state.services.outbox_engine
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Operation)).scalar_one())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- the route table


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database at stake
def test_every_route_of_the_app_has_an_expected_role(api: Api) -> None:
    served = _app_routes(api.app)
    assert served - ROUTE_ROLES.keys() == set(), "new routes: add them to ROUTE_ROLES with what they need"
    assert ROUTE_ROLES.keys() - served == set(), "routes gone: drop them from ROUTE_ROLES"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database at stake
def test_no_route_but_the_public_ones_answers_without_a_token(api: Api) -> None:
    for (method, path), needs in ROUTE_ROLES.items():
        answer = _call(api, method, path, None)
        if needs == PUBLIC:
            assert answer.status_code < 500, (method, path, answer.text)
        else:
            assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), (method, path)


def test_every_write_route_refuses_an_org_without_its_role_and_queues_nothing(api: Api) -> None:
    """Each write route, called by an org lacking its role, by a non-member org and with a token pairing an org with
    another org's account: 403 with a stable code, and the outbox is untouched."""
    engine = api.app.state.engine
    stranger = issue_token(engine, "XX-NOBODY", "0x" + secrets.token_hex(20), "not a member")
    mismatched = issue_token(engine, "BJ-CY", api.chain.orgs["BJ-PSB"].account, "org A with org B's account")
    before = _outbox_rows(api)
    tried = 0
    for (method, path), needs in ROUTE_ROLES.items():
        if method not in WRITES:
            continue
        callers = {"non-member org": (stranger, "ORG_UNKNOWN")}
        if needs == MEMBER:
            callers["org A with org B's account"] = (mismatched, "ACCOUNT_NOT_IN_ORG")
        else:
            callers["org A with org B's account"] = (mismatched, "ROLE_REQUIRED")
            callers[f"{LACKING[needs]} (no {needs})"] = (api.tokens[LACKING[needs]], "ROLE_REQUIRED")
        for who, (token, code) in callers.items():
            answer = _call(api, method, path, token)
            assert (answer.status_code, answer.json()["code"]) == (403, code), (method, path, who, answer.text)
            tried += 1
    assert _outbox_rows(api) == before
    assert tried >= 80


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database at stake
def test_admin_and_auditor_only_reads_refuse_other_roles(api: Api) -> None:
    for (method, path), needs in ROUTE_ROLES.items():
        if method in WRITES or needs not in LACKING:
            continue
        answer = _call(api, method, path, api.tokens[LACKING[needs]])
        assert (answer.status_code, answer.json()["code"]) == (403, "ROLE_REQUIRED"), (method, path)


# ---------------------------------------------------------------- bearer tokens


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same token SQL on both
def test_malformed_and_forged_tokens_are_401_on_reads_and_writes(api: Api) -> None:
    real = api.tokens["BJ-PSB"]
    headers: dict[str, dict[str, str]] = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "scheme only": {"Authorization": "Bearer"},
        "basic scheme": {"Authorization": f"Basic {real}"},
        "token without scheme": {"Authorization": real},
        "forged dct_ token": _bearer(TOKEN_PREFIX + secrets.token_urlsafe(32)),
        "its stored hash": _bearer(hash_token(real)),
        "real token with a suffix": _bearer(real + "x"),
        "real token truncated": _bearer(real[:-1]),
        "other case": _bearer(real.upper()),
        "64 KiB token": _bearer(TOKEN_PREFIX + "a" * 65_536),
        "SQL in the token": _bearer("dct_' OR '1'='1"),
        "two tokens": {"Authorization": f"Bearer {real} Bearer {real}"},
    }
    for path in ("/v1/devices", "/v1/members", "/v1/resolve"):
        for what, header in headers.items():
            answer = (
                api.client.post(path, json={"entry_id": 1, "action": "read_raw"}, headers=header)
                if path == "/v1/resolve"
                else api.client.get(path, headers=header)
            )
            assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), (path, what)
    before = _outbox_rows(api)
    for what, header in headers.items():
        answer = api.client.post("/v1/devices", json=device(1), headers=header)
        assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), what
    assert _outbox_rows(api) == before
    raw = api.client.get("/v1/devices", headers=[("Authorization", b"Bearer dct_\xff\xfe")])  # not UTF-8
    assert raw.status_code == 401


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same token SQL on both
def test_revoked_token_is_refused_on_the_cached_read_path_at_once(api: Api) -> None:
    token = issue_token(api.app.state.engine, "BJ-PSB", api.chain.orgs["BJ-PSB"].account, "to revoke")
    assert api.client.get("/v1/devices", headers=_bearer(token)).status_code == 200  # now cached
    assert revoke_token(api.app.state.engine, hash_token(token))  # by its hash, as `dirchain tokens revoke` may
    for path in ("/v1/devices", "/v1/members"):
        answer = api.client.get(path, headers=_bearer(token))
        assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same token SQL on both
def test_expired_token_is_refused_everywhere_even_while_cached(api: Api) -> None:
    """A token whose lifetime ends while the read path's cache holds it is refused at once; one expired before
    its first use never gets in; writes refuse it too and queue nothing."""
    engine = api.app.state.engine
    account = api.chain.orgs["BJ-PSB"].account
    api.app.state.principal_cache = PrincipalCache(seconds=3_600)  # so only the expiry can end the cached entry
    short = issue_token(engine, "BJ-PSB", account, "short", expires_in_seconds=3)
    assert api.client.get("/v1/devices", headers=_bearer(short)).status_code == 200
    [row] = [t for t in list_tokens(engine, "BJ-PSB") if t.token_hash == hash_token(short)]
    assert row.expires_at is not None
    deadline = time.monotonic() + 30
    while time.time() <= row.expires_at:  # wait for the expiry itself (a condition, with a deadline)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    long_lived = issue_token(engine, "BJ-PSB", account, "expired in the table", expires_in_seconds=3_600)
    with Session(engine) as session:  # as if issued long ago
        session.execute(
            update(ApiToken).where(ApiToken.token_hash == hash_token(long_lived)).values(expires_at=time.time() - 1)
        )
        session.commit()
    before = _outbox_rows(api)
    for token in (short, long_lived):
        for path in ("/v1/devices", "/v1/members"):
            answer = api.client.get(path, headers=_bearer(token))
            assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), path
            assert "expired" in answer.json()["message"]
        write = api.client.post("/v1/devices", json=device(1), headers=_bearer(token))
        assert (write.status_code, write.json()["code"]) == (401, "UNAUTHENTICATED")
    assert _outbox_rows(api) == before
    assert api.get("/v1/devices").status_code == 200  # the non-expiring tokens of the fixture still work


def test_a_token_table_made_before_expiry_gains_the_column_and_its_tokens_keep_working(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        Store(engine).create_tables()
        with engine.begin() as connection:  # the table as it was before tokens could expire
            connection.execute(
                text(
                    "CREATE TABLE api_tokens (token_hash VARCHAR(64) PRIMARY KEY, org_code VARCHAR(64) NOT NULL, "
                    "account VARCHAR(42) NOT NULL, label VARCHAR NOT NULL, created_at FLOAT NOT NULL, "
                    "revoked BOOLEAN NOT NULL)"
                )
            )
            old = TOKEN_PREFIX + "issued-before-expiry"
            connection.execute(
                text("INSERT INTO api_tokens VALUES (:h, 'BJ-PSB', :a, 'old', 0, false)"),
                {"h": hash_token(old), "a": "0x" + "11" * 20},
            )
        create_token_table(engine)
        create_token_table(engine)  # idempotent: a second start finds the column
        with Session(engine) as session:
            principal = resolve_principal(session, old)
        assert principal is not None and principal.expires_at is None
        fresh = issue_token(engine, "BJ-PSB", "0x" + "11" * 20, "new", expires_in_seconds=60)
        with Session(engine) as session:
            fresh_principal = resolve_principal(session, fresh)
        assert fresh_principal is not None and fresh_principal.expires_at is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same token SQL on both
def test_cli_issues_a_token_that_expires_in_the_given_lifetime(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_lifetime("90d") == 90 * 86_400 and parse_lifetime("12h") == 43_200 and parse_lifetime("30m") == 1_800
    for bad in ("", "0d", "-1d", "90", "90y", "1e9d", "d"):
        with pytest.raises(ValueError):
            parse_lifetime(bad)
    monkeypatch.setenv("DIRCHAIN_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        account = "0x" + "ab" * 20
        args = ["tokens", "issue", "--org", "BJ-EMB", "--account", account, "--expires-in", "90d"]
        started = time.time()
        issued = runner.invoke(cli, args)
        assert issued.exit_code == 0, issued.output
        assert runner.invoke(cli, [*args[:-1], "soon"]).exit_code == 2
        engine = create_engine(database_url)
        try:
            [row] = list_tokens(engine, "BJ-EMB")
        finally:
            engine.dispose()
        assert row.expires_at is not None
        assert started + 90 * 86_400 <= row.expires_at <= time.time() + 90 * 86_400
        assert "expires" in runner.invoke(cli, ["tokens", "list", "--org", "BJ-EMB"]).output
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------- capability tokens of the data zone


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database at stake
def test_forged_and_expired_capability_tokens_are_refused_by_the_data_zone(api: Api) -> None:
    keys: SigningKeys = api.app.state.resolver.keys
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": api.app.state.settings.capability_issuer,
        "sub": "BJ-CMC",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": new_jti(),
        "entry_id": 1,
        "entry_version": "0x" + "00" * 32,
        "action": "read_raw",
        "form": "raw",
        "grant_id": 1,
        "block_number": 1,
    }

    def rows(capability: str) -> Any:
        headers = {**api.auth("BJ-CMC"), "X-Capability": capability}
        return api.client.get("/v1/zone/entries/1/rows", headers=headers, params={"form": "raw"})

    # control: a well-formed token of our key gets past every check to the (absent) data
    assert rows(keys.sign(claims)).json()["code"] == "DATASET_NOT_AVAILABLE"
    stranger = SigningKeys(SigningKey.from_private(ec.generate_private_key(ec.SECP256R1())))
    header, payload, _ = keys.sign(claims).split(".")
    refused = {
        "expired": (keys.sign({**claims, "iat": now - 600, "nbf": now - 600, "exp": now - 1}), "TOKEN_EXPIRED"),
        "not yet valid": (keys.sign({**claims, "nbf": now + 600}), "TOKEN_NOT_YET_VALID"),
        "random three parts": (".".join(secrets.token_urlsafe(16) for _ in range(3)), "TOKEN_MALFORMED"),
        "garbage": ("not a token at all", "TOKEN_MALFORMED"),
        "alg none": (f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "TOKEN_MALFORMED"),
        "stranger's key": (stranger.sign(claims), "UNKNOWN_KEY"),
        "another token's signature": (
            f"{header}.{payload}.{keys.sign({**claims, 'jti': 'x'}).split('.')[2]}",
            "BAD_SIGNATURE",
        ),
        "another org's": (keys.sign({**claims, "sub": "BJ-EMB"}), "TOKEN_NOT_YOURS"),
    }
    for what, (capability, code) in refused.items():
        answer = rows(capability)
        assert (answer.status_code, answer.json()["code"]) == (403, code), (what, answer.text)
        assert answer.json()["field"] == "X-Capability"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
