"""Authentication and authorisation: tokens, roles from the chain's mirror, one org never acting for another."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session

from indexer.store import Store
from registry_api.auth import TOKEN_PREFIX, hash_token, issue_token, list_tokens, resolve_principal, revoke_token
from tests.registry_api.support import Api, device


def test_requests_without_or_with_a_bad_token_are_401(api: Api) -> None:
    for path in ("/v1/devices", "/v1/members", "/v1/code-rules", "/v1/devices/BJ-CAMR-110105000001"):
        missing = api.client.get(path)
        assert missing.status_code == 401
        assert missing.json()["code"] == "UNAUTHENTICATED"
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        bad = api.client.get(path, headers={"Authorization": "Bearer dct_not-a-token"})
        assert bad.status_code == 401 and bad.json()["code"] == "UNAUTHENTICATED"
    wrong_scheme = api.client.get("/v1/devices", headers={"Authorization": f"Basic {api.tokens['BJ-PSB']}"})
    assert wrong_scheme.status_code == 401
    write = api.client.post("/v1/devices", json=device(1))
    assert write.status_code == 401


def test_revoked_token_is_refused(api: Api) -> None:
    engine = api.app.state.engine
    token = issue_token(engine, "BJ-PSB", api.chain.orgs["BJ-PSB"].account, "to revoke")
    assert api.client.get("/v1/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert revoke_token(engine, token)
    answer = api.client.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("org", ["CO-ZHCS", "AU-BJ"])
def test_org_without_registrar_cannot_write_but_can_read(api: Api, org: str) -> None:
    answer = api.post("/v1/devices", device(1), org=org)
    assert answer.status_code == 403
    body = answer.json()
    assert body["code"] == "ROLE_REQUIRED" and body["role"] == "REGISTRAR"
    lifecycle = api.post("/v1/devices/BJ-CAMR-110105000001/lifecycle", {"action": "retire"}, org=org)
    assert lifecycle.status_code == 403 and lifecycle.json()["code"] == "ROLE_REQUIRED"
    assert api.get("/v1/devices", org=org).status_code == 200


def test_writes_are_signed_by_the_tokens_account_only(api: Api) -> None:
    """The body cannot name another signer or owner: unknown members are refused, the owner is the token's org."""
    smuggled = api.post("/v1/devices", device(1, owner_org="BJ-CMC"), org="BJ-CY")
    assert smuggled.status_code == 422 and smuggled.json()["field"] == "owner_org"
    op = api.register([device(1)], org="BJ-CY")
    assert op["account"] == api.chain.orgs["BJ-CY"].account and op["org_code"] == "BJ-CY"
    assert api.get("/v1/devices/BJ-CAMR-110105000001").json()["owner_org"] == "BJ-CY"


def test_token_of_an_account_outside_its_org_has_no_roles(api: Api) -> None:
    """A token that pairs org A with org B's account gets no role: it cannot write as either."""
    engine = api.app.state.engine
    token = issue_token(engine, "BJ-CY", api.chain.orgs["BJ-PSB"].account, "mismatched")
    answer = api.client.post("/v1/devices", json=device(1), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403 and answer.json()["code"] == "ROLE_REQUIRED"


def test_tokens_are_stored_hashed(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        Store(engine).create_tables()  # an empty mirror: the org is not a member yet
        token = issue_token(engine, "BJ-PSB", "0x" + "11" * 20, "ci")
        assert token.startswith(TOKEN_PREFIX) and len(token) > 40
        rows = list_tokens(engine, "BJ-PSB")
        assert [r.token_hash for r in rows] == [hash_token(token)]
        assert token not in repr(rows)
        with Session(engine) as session:
            principal = resolve_principal(session, token)
        assert principal is not None and principal.org_id is None and principal.roles == frozenset()
        with pytest.raises(ValueError):
            issue_token(engine, "BJ-PSB", "not-an-address")
    finally:
        engine.dispose()
