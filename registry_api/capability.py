"""Capability tokens: ES256 JWTs (PyJWT over `cryptography`) that the resolver signs and data holders check offline.

The signing key is a P-256 key in a PEM file (PKCS#8, mode 0600) made on first start at the settings path;
its `kid` is its RFC 7638 JWK thumbprint. During a rotation the old key is kept beside it as
`<stem>.previous.pem`: it signs nothing any more but stays in the JWKS until the tokens it signed have expired
(`rotate_signing_key`). `GET /v1/resolver/jwks` publishes `jwks()`.

A token's claims (all checked by `verify_capability`, the function a data holder runs with the JWKS only):

    iss, sub (org code), aud ("dirchain-data-holder"), iat, nbf, exp (min(grant expiry, now + TTL)), jti,
    entry_id, entry_version (the entry's version hash decided on), action (read_raw | read_desensitized |
    compute), form (raw | desensitized | result_only: what may be served), grant_id (0 for the owner org),
    block_number (the mirror's block the decision was made at); for compute also algorithm_id,
    algorithm_hash (its pinned code hash) and epsilon (when one was asked).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from chain_gateway.secret_files import require_owner_only

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "CapabilityError",
    "SigningKey",
    "SigningKeys",
    "jwk_thumbprint",
    "load_secret",
    "new_jti",
    "previous_key_path",
    "rotate_signing_key",
    "token_times",
    "verify_capability",
]

ALGORITHM = "ES256"
AUDIENCE = "dirchain-data-holder"
REQUIRED_CLAIMS = (
    "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "entry_id", "entry_version", "action", "form", "grant_id",
    "block_number",
)  # fmt: skip
# A form a token grants, and the forms a data holder may serve under it (raw covers the desensitized form).
SERVABLE_FORMS: dict[str, frozenset[str]] = {
    "raw": frozenset({"raw", "desensitized"}),
    "desensitized": frozenset({"desensitized"}),
    "result_only": frozenset(),
}


class CapabilityError(Exception):
    """A capability token that must not be honoured; `code` says why (stable, for the API's error body)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64url_uint(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC public JWK: base64url(sha256 of {"crv","kty","x","y"} in canonical JSON)."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """A P-256 key pair, its kid (RFC 7638 thumbprint) and its public JWK."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str
    jwk: dict[str, str]

    @classmethod
    def from_private(cls, key: ec.EllipticCurvePrivateKey) -> SigningKey:
        numbers = key.public_key().public_numbers()
        public = {"kty": "EC", "crv": "P-256", "x": _b64url_uint(numbers.x, 32), "y": _b64url_uint(numbers.y, 32)}
        kid = jwk_thumbprint(public)
        return cls(key, kid, {**public, "kid": kid, "use": "sig", "alg": ALGORITHM})


def previous_key_path(path: Path) -> Path:
    """Where the key a rotation replaced is kept (published, never used to sign)."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def _write_new_file(path: Path, data: bytes) -> bool:
    """Write `data` to `path` with mode 0600 unless it exists (atomic: temp file, then link); True if written."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)  # fails if another process made the file first: theirs wins, both read it
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temp)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    require_owner_only(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path} does not hold a P-256 private key")
    return key


def load_secret(path: Path, size: int = 32) -> bytes:
    """A random secret kept in a 0600 file, made on first use (e.g. the masking HMAC key)."""
    if not path.exists():
        _write_new_file(path, secrets.token_bytes(size))
    require_owner_only(path)
    return path.read_bytes()


def rotate_signing_key(path: Path) -> SigningKey:
    """Make a new signing key at `path`; the current one becomes `<stem>.previous.pem` (still in the JWKS)."""
    if path.exists():
        os.replace(path, previous_key_path(path))
    _write_new_file(path, _pem(ec.generate_private_key(ec.SECP256R1())))
    return SigningKey.from_private(_read_key(path))


class SigningKeys:
    """The resolver's current signing key and the keys still published (current first)."""

    def __init__(self, current: SigningKey, previous: tuple[SigningKey, ...] = ()) -> None:
        self.current = current
        self.previous = previous

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKeys:
        """The key at `path` (made with mode 0600 if missing) and the previous one beside it, if any."""
        if not path.exists():
            _write_new_file(path, _pem(ec.generate_private_key(ec.SECP256R1())))
        current = SigningKey.from_private(_read_key(path))
        old = previous_key_path(path)
        previous = (SigningKey.from_private(_read_key(old)),) if old.exists() else ()
        return cls(current, tuple(k for k in previous if k.kid != current.kid))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set of every published public key (RFC 7517)."""
        return {"keys": [self.current.jwk, *(k.jwk for k in self.previous)]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS of `claims` with the current key (header: alg ES256, typ JWT, kid)."""
        return jwt.encode(
            dict(claims), self.current.private_key, algorithm=ALGORITHM, headers={"kid": self.current.kid}
        )


def new_jti() -> str:
    """A token id: 128 random bits, hex."""
    return secrets.token_hex(16)


def verify_capability(
    token: str,
    jwks: Mapping[str, Any],
    *,
    audience: str = AUDIENCE,
    issuer: str | None = None,
    entry_id: int | None = None,
    form: str | None = None,
    leeway_seconds: float = 0,
) -> dict[str, Any]:
    """The claims of a capability token after the checks a data holder runs offline, with the JWKS only.

    Checks: the header's kid names a key of `jwks` and the algorithm is ES256; the signature; exp, nbf and iat
    against this machine's clock (`leeway_seconds`); the audience (and the issuer if given); every claim of
    REQUIRED_CLAIMS present; the token is for `entry_id` and lets the holder serve `form` (a raw token also
    covers the desensitized form). Raises CapabilityError with a stable code: TOKEN_MALFORMED, UNKNOWN_KEY,
    BAD_SIGNATURE, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, WRONG_AUDIENCE, WRONG_ISSUER, MISSING_CLAIM,
    WRONG_ENTRY, FORM_NOT_COVERED.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise CapabilityError("TOKEN_MALFORMED", f"not a compact JWS: {exc}") from exc
    if header.get("alg") != ALGORITHM:
        raise CapabilityError("TOKEN_MALFORMED", f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    key = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise CapabilityError("UNKNOWN_KEY", f"no published key has kid {header.get('kid')!r}")
    public = ECAlgorithm.from_jwk(json.dumps(key))
    options: dict[str, Any] = {"require": list(REQUIRED_CLAIMS)}
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,  # type: ignore[arg-type]
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway_seconds,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError as exc:
        raise CapabilityError("TOKEN_EXPIRED", "the token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise CapabilityError("TOKEN_NOT_YET_VALID", "the token is not valid yet") from exc
    except jwt.InvalidAudienceError as exc:
        raise CapabilityError("WRONG_AUDIENCE", f"the token is not for {audience!r}") from exc
    except jwt.InvalidIssuerError as exc:
        raise CapabilityError("WRONG_ISSUER", f"the token is not issued by {issuer!r}") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise CapabilityError("MISSING_CLAIM", str(exc)) from exc
    except jwt.InvalidSignatureError as exc:
        raise CapabilityError("BAD_SIGNATURE", "the signature does not verify with the published key") from exc
    except jwt.PyJWTError as exc:
        raise CapabilityError("TOKEN_MALFORMED", str(exc)) from exc
    if entry_id is not None and claims.get("entry_id") != entry_id:
        raise CapabilityError("WRONG_ENTRY", f"the token is for entry {claims.get('entry_id')}, not {entry_id}")
    if form is not None and form not in SERVABLE_FORMS.get(str(claims.get("form")), frozenset()):
        raise CapabilityError("FORM_NOT_COVERED", f"a {claims.get('form')} token does not cover the {form} form")
    return claims


def token_times(now: float, ttl_seconds: int, grant_expires_at: int | None) -> tuple[int, int]:
    """(iat, exp) of a token issued at `now`: exp = min(grant expiry, now + TTL), in whole seconds."""
    issued = int(now)
    expires = issued + ttl_seconds
    if grant_expires_at is not None:
        expires = min(expires, int(grant_expires_at))
    return issued, expires
