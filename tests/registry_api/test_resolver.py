"""The resolver against anvil and each database: a permit/deny matrix over every form and every deny reason,
with grants made by the approvers' own EIP-712 signatures, and capability tokens checked as a data holder does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry_api.capability import (
    AUDIENCE,
    CapabilityError,
    SigningKey,
    SigningKeys,
    previous_key_path,
    rotate_signing_key,
    verify_capability,
)
from tests.registry_api.catalog_support import approver, create_entry, signed
from tests.registry_api.resolver_support import (
    OWNER,
    advance,
    api_settings,  # noqa: F401  (the fixture: keys under tmp_path, no anchoring job)
    grant,
    hotline_entry,
    listed_builtin,
    resolve,
)
from tests.registry_api.support import Api
from tests.registry_api.test_algorithms import confirmed

ACTIONS = ("read_raw", "read_desensitized", "compute")


def _jwks(api: Api) -> dict[str, Any]:
    answer = api.client.get("/v1/resolver/jwks")  # no bearer token: the keys are public
    assert answer.status_code == 200 and "max-age" in answer.headers["Cache-Control"]
    body: dict[str, Any] = answer.json()
    return body


def _checkpoint(api: Api) -> tuple[int, str]:
    indexer = api.app.state.indexer
    checkpoint = indexer.store.checkpoint()
    return checkpoint.block_number, checkpoint.block_hash


def test_every_form_is_permitted_by_a_covering_grant_and_denied_without_one(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    algorithm_id = listed_builtin(api, "grouped_count", entry_id)
    grants = {
        "BJ-CMC": grant(api, entry_id, "BJ-CMC", "raw"),
        "BJ-EMB": grant(api, entry_id, "BJ-EMB", "desensitized"),
        "CO-ZHCS": grant(api, entry_id, "CO-ZHCS", "result_only"),
    }
    compute = {"algorithm_id": algorithm_id, "epsilon": 0.5}
    expected = {  # org -> (read_raw, read_desensitized, compute): None permits, else the deny reason
        OWNER: (None, None, None),
        "BJ-CMC": (None, None, None),
        "BJ-EMB": ("FORM_NOT_ALLOWED", None, None),
        "CO-ZHCS": ("FORM_NOT_ALLOWED", "FORM_NOT_ALLOWED", None),
        "AU-BJ": ("NO_GRANT", "NO_GRANT", "NO_GRANT"),
    }
    jwks = _jwks(api)
    block = _checkpoint(api)
    for org, outcomes in expected.items():
        for action, reason in zip(ACTIONS, outcomes, strict=True):
            answer = resolve(api, org, entry_id, action, **(compute if action == "compute" else {}))
            where = f"{org} {action}: {answer}"
            assert answer["reason"] == reason, where
            assert answer["decision"] == ("permit" if reason is None else "deny"), where
            assert answer["form"] == {"read_raw": "raw", "read_desensitized": "desensitized"}.get(action, "result_only")
            assert (answer["proof"]["block"]["number"], answer["proof"]["block"]["hash"]) == block
            if reason is not None:
                assert answer["capability"] is None, where
                continue
            served = None if action == "compute" else answer["form"]
            claims = verify_capability(answer["capability"]["token"], jwks, entry_id=entry_id, form=served)
            assert (claims["sub"], claims["aud"], claims["action"], claims["form"]) == (
                org,
                AUDIENCE,
                action,
                answer["form"],
            )
            assert (claims["entry_id"], claims["block_number"]) == (entry_id, block[0])
            assert claims["entry_version"] == answer["proof"]["entry_version_hash"]
            if org == OWNER:
                assert answer["proof"]["basis"] == "owner" and answer["proof"]["grant_id"] is None
                assert claims["grant_id"] == 0
                continue
            assert answer["proof"]["basis"] == "grant" and claims["grant_id"] == grants[org], where
            if action == "compute":
                assert claims["algorithm_id"] == algorithm_id and claims["epsilon"] == 0.5
                assert claims["algorithm_hash"] == answer["algorithm_code_hash"]
                constraints = answer["constraints"]
                assert constraints["admitted_algorithms"] == [algorithm_id]
                assert constraints["epsilon_budget"] == constraints["remaining_epsilon"] == 5.0  # grade 2, unspent
                assert constraints["k"] == 5 and constraints["max_epsilon_per_job"] == 1.0

    # the proof is the grant's on-chain trail, as the sharing API shows it
    shown = api.get(f"/v1/grants/{grants['BJ-EMB']}", "BJ-EMB").json()
    proof = resolve(api, "BJ-EMB", entry_id, "read_desensitized")["proof"]
    assert proof["grant_id"] == grants["BJ-EMB"] and proof["grant_form"] == "desensitized"
    assert proof["request_tx_hash"] == shown["tx_hash"] and proof["grant_tx_hash"] == shown["grant_tx_hash"]
    assert proof["approval_tx_hashes"] == shown["approval_tx_hashes"] and len(proof["approval_tx_hashes"]) == 1
    assert proof["grant_block"] == shown["grant_block"]
    constraints = resolve(api, "BJ-EMB", entry_id, "read_desensitized")["constraints"]
    assert constraints["purpose"] == shown["purpose"] and constraints["expires_at"] == shown["expires_at"]

    # the narrowest covering grant wins: a raw grant is used for desensitized reads only when it is the only one
    second = grant(api, entry_id, "BJ-CMC", "desensitized")
    assert resolve(api, "BJ-CMC", entry_id, "read_desensitized")["proof"]["grant_id"] == second
    assert resolve(api, "BJ-CMC", entry_id, "read_raw")["proof"]["grant_id"] == grants["BJ-CMC"]


def test_expired_and_revoked_grants_are_denied_with_their_own_reason(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    revoked = grant(api, entry_id, "BJ-CMC", "raw", days=30)
    expiring = grant(api, entry_id, "BJ-EMB", "desensitized", days=1)
    assert resolve(api, "BJ-CMC", entry_id, "read_raw")["decision"] == "permit"
    assert resolve(api, "BJ-EMB", entry_id, "read_desensitized")["decision"] == "permit"

    body = signed(api, revoked, approver(api, OWNER), decision="revoke", reason="用途变更，停止共享")
    confirmed(api, f"/v1/grants/{revoked}/revoke", body, OWNER)
    answer = resolve(api, "BJ-CMC", entry_id, "read_raw")
    assert (answer["decision"], answer["reason"], answer["proof"]["grant_id"]) == ("deny", "REVOKED", revoked)
    assert resolve(api, "BJ-CMC", entry_id, "read_desensitized")["reason"] == "REVOKED"

    advance(api, 2 * 86_400)  # the chain's clock decides, not the wall clock
    answer = resolve(api, "BJ-EMB", entry_id, "read_desensitized")
    assert (answer["decision"], answer["reason"], answer["proof"]["grant_id"]) == ("deny", "EXPIRED", expiring)
    assert answer["proof"]["chain_time"] > answer["constraints"]["expires_at"]
    # an expired grant of a form that does not cover the action is not the reason: the form is
    assert resolve(api, "BJ-EMB", entry_id, "read_raw")["reason"] == "NO_GRANT"

    # a fresh grant after the revoked one is used again at once
    again = grant(api, entry_id, "BJ-CMC", "raw")
    answer = resolve(api, "BJ-CMC", entry_id, "read_raw")
    assert (answer["decision"], answer["proof"]["grant_id"]) == ("permit", again)


def _revise(api: Api, entry_id: int, body: dict[str, Any]) -> None:
    answer = api.patch(f"/v1/catalog/{entry_id}", body, OWNER)
    assert answer.status_code == 202, answer.text
    assert api.settle(answer.json()["operation_id"], OWNER)["status"] == "confirmed"


def test_revisions_and_status_changes_of_the_entry_take_effect_at_once(api: Api) -> None:
    body = hotline_entry()
    entry_id = create_entry(api, body)
    raw = grant(api, entry_id, "BJ-CMC", "raw")
    grant(api, entry_id, "BJ-EMB", "desensitized")
    revision = {k: v for k, v in body.items() if k != "publish"}

    # the owner takes raw out: the raw grant no longer counts, for any action
    _revise(api, entry_id, {**revision, "forms": ["desensitized", "result_only"]})
    for action in ("read_raw", "read_desensitized"):
        answer = resolve(api, "BJ-CMC", entry_id, action)
        assert (answer["reason"], answer["proof"]["grant_id"]) == ("FORM_NOT_ALLOWED", raw), answer
    assert resolve(api, "BJ-EMB", entry_id, "read_desensitized")["decision"] == "permit"
    assert resolve(api, OWNER, entry_id, "read_raw")["decision"] == "permit"  # the owner may do everything

    _revise(api, entry_id, {**revision, "share_condition": "not_shareable"})
    assert resolve(api, "BJ-EMB", entry_id, "read_desensitized")["reason"] == "NOT_SHAREABLE"
    _revise(api, entry_id, revision)
    assert resolve(api, "BJ-EMB", entry_id, "read_desensitized")["decision"] == "permit"

    confirmed(api, f"/v1/catalog/{entry_id}/status", {"status": "deprecated"}, OWNER)
    assert resolve(api, "BJ-EMB", entry_id, "read_desensitized")["reason"] == "ENTRY_NOT_PUBLISHED"
    assert resolve(api, OWNER, entry_id, "read_desensitized")["decision"] == "permit"


def test_compute_needs_an_admitted_listed_algorithm_and_a_delisting_denies_at_once(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    grant(api, entry_id, "CO-ZHCS", "result_only")
    counted = listed_builtin(api, "grouped_count")  # listed, not admitted for the entry
    answer = resolve(api, "CO-ZHCS", entry_id, "compute", algorithm_id=counted)
    assert (answer["decision"], answer["reason"]) == ("deny", "ALGORITHM_NOT_ADMITTED")
    assert answer["constraints"]["admitted_algorithms"] == []

    confirmed(api, f"/v1/catalog/{entry_id}/algorithms", {"algorithm_id": counted}, OWNER)
    answer = resolve(api, "CO-ZHCS", entry_id, "compute", algorithm_id=counted)
    assert answer["decision"] == "permit" and answer["constraints"]["admitted_algorithms"] == [counted]
    assert answer["constraints"]["remaining_epsilon"] == 5.0  # no epsilon asked: checked against > 0

    confirmed(api, f"/v1/algorithms/{counted}/delisting", {"reason": "输出可识别个人信息"}, "BJ-CMC")
    answer = resolve(api, "CO-ZHCS", entry_id, "compute", algorithm_id=counted)
    assert (answer["decision"], answer["reason"]) == ("deny", "ALGORITHM_NOT_ADMITTED")
    assert "not listed" in answer["message"] and answer["constraints"]["admitted_algorithms"] == []

    unknown = api.post("/v1/resolve", {"entry_id": entry_id, "action": "compute", "algorithm_id": 999}, "CO-ZHCS")
    assert unknown.status_code == 404 and unknown.json()["code"] == "ALGORITHM_NOT_FOUND"
    assert unknown.json()["field"] == "algorithm_id"


def test_bad_questions_are_errors_not_decisions(api: Api) -> None:
    entry_id = create_entry(api, hotline_entry())
    draft = create_entry(api, hotline_entry(publish=False))
    for body, status, code, field in (
        ({"entry_id": 9_999, "action": "read_raw"}, 404, "ENTRY_NOT_FOUND", "entry_id"),
        ({"entry_id": draft, "action": "read_raw"}, 404, "ENTRY_NOT_FOUND", "entry_id"),  # another org's draft
        ({"entry_id": entry_id, "action": "compute"}, 422, "VALIDATION_ERROR", "algorithm_id"),
        ({"entry_id": entry_id, "action": "read_raw", "epsilon": 1.0}, 422, "VALIDATION_ERROR", "epsilon"),
        ({"entry_id": entry_id, "action": "delete"}, 422, "VALIDATION_ERROR", "action"),
    ):
        answer = api.post("/v1/resolve", body, "BJ-CMC")
        assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (status, code, field), body
    assert api.client.post("/v1/resolve", json={"entry_id": entry_id, "action": "read_raw"}).status_code == 401
    assert resolve(api, OWNER, draft, "read_raw")["decision"] == "permit"  # the owner sees its own draft


def test_tokens_verify_offline_and_tampered_expired_foreign_or_unknown_ones_do_not(api: Api, tmp_path: Path) -> None:
    entry_id = create_entry(api, hotline_entry())
    grant(api, entry_id, "BJ-CMC", "desensitized")
    answer = resolve(api, "BJ-CMC", entry_id, "read_desensitized")
    token, jwks = answer["capability"]["token"], _jwks(api)
    claims = verify_capability(token, jwks, entry_id=entry_id, form="desensitized", issuer="dirchain-resolver")
    assert claims["jti"] == answer["capability"]["jti"] and jwt.get_unverified_header(token)["alg"] == "ES256"
    assert claims["exp"] - claims["iat"] <= api.app.state.settings.capability_ttl_seconds
    assert claims["nbf"] == claims["iat"] and claims["grant_id"] == answer["proof"]["grant_id"]

    def refused(candidate: str, code: str, keys: dict[str, Any] = jwks, **checks: Any) -> None:
        with pytest.raises(CapabilityError) as caught:
            verify_capability(candidate, keys, **checks)
        assert caught.value.code == code

    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**body, "form": "raw"}).encode()).rstrip(b"=").decode()
    refused(f"{header}.{forged}.{signature}", "BAD_SIGNATURE")
    refused(token, "FORM_NOT_COVERED", form="raw")
    refused(token, "WRONG_ENTRY", entry_id=entry_id + 1)
    refused(token, "WRONG_AUDIENCE", audience="someone-else")
    refused("not-a-token", "TOKEN_MALFORMED")

    keys: SigningKeys = api.app.state.resolver.keys
    now = int(time.time())
    refused(keys.sign({**claims, "iat": now - 600, "nbf": now - 600, "exp": now - 300}), "TOKEN_EXPIRED")
    refused(keys.sign({**claims, "nbf": now + 300}), "TOKEN_NOT_YET_VALID")
    refused(keys.sign({**claims, "aud": "another-service"}), "WRONG_AUDIENCE")
    refused(keys.sign({k: v for k, v in claims.items() if k != "grant_id"}), "MISSING_CLAIM")
    stranger = SigningKeys(SigningKey.from_private(ec.generate_private_key(ec.SECP256R1())))
    refused(stranger.sign(claims), "UNKNOWN_KEY")
    # a stranger's key announced under our kid does not help either
    impostor = jwt.encode(claims, stranger.current.private_key, algorithm="ES256", headers={"kid": keys.current.kid})
    refused(impostor, "BAD_SIGNATURE")


def test_signing_key_is_private_persistent_and_rotates_with_the_old_key_still_published(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "capability.pem"
    first = SigningKeys.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SigningKeys.load_or_create(path).current.kid == first.current.kid  # the same key after a restart
    jwk = first.current.jwk
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'  # RFC 7638 section 3.2
    expected_kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert first.current.kid == expected_kid and first.jwks() == {"keys": [jwk]}
    token = first.sign({"sub": "BJ-CMC", "aud": AUDIENCE, "exp": int(time.time()) + 60})

    rotate_signing_key(path)
    rotated = SigningKeys.load_or_create(path)
    assert rotated.current.kid != first.current.kid and previous_key_path(path).exists()
    assert [k["kid"] for k in rotated.jwks()["keys"]] == [rotated.current.kid, first.current.kid]
    assert jwt.get_unverified_header(rotated.sign({"sub": "x"}))["kid"] == rotated.current.kid
    decoded = jwt.decode(
        token,
        jwt.PyJWKSet.from_dict(rotated.jwks())[first.current.kid].key,
        algorithms=["ES256"],
        audience=AUDIENCE,
    )
    assert decoded["sub"] == "BJ-CMC"  # a token of the previous key still verifies during the rotation
