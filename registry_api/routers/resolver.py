"""/v1/resolve and /v1/resolver/jwks: decisions with their proof and capability tokens, and the keys to check them.

A decision is an answer (200) whether it permits or denies; only a request the resolver cannot decide on is
an error (ENTRY_NOT_FOUND, ALGORITHM_NOT_FOUND, a compute without an algorithm). The rules and deny reasons
are those of `registry_api.resolver`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from sqlmodel import Session

from registry_api.deps import BearerDep, get_principal
from registry_api.encoding import from_unix
from registry_api.errors import ApiError
from registry_api.resolver import MICROS, Resolution, Resolver, ResolveRequest, ResolverError
from registry_api.schemas.common import ErrorPublic
from registry_api.schemas.resolver import (
    BlockRef,
    CapabilityPublic,
    DecisionConstraints,
    DecisionProof,
    JwksPublic,
    ResolveCreate,
    ResolvePublic,
)
from registry_api.writes import require_member

__all__ = ["get_resolver", "resolution_public", "resolver_error", "router"]

router = APIRouter(tags=["resolver"])

JWKS_MAX_AGE_SECONDS = 300  # data holders may cache the key set this long; a rotation keeps the old key longer

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text}
    for code, text in {
        401: "no or bad token (UNAUTHENTICATED)",
        403: "ORG_UNKNOWN, ORG_INACTIVE",
        404: "ENTRY_NOT_FOUND, ALGORITHM_NOT_FOUND",
        422: "VALIDATION_ERROR (compute needs algorithm_id; reads take neither algorithm_id nor epsilon)",
        503: "MIRROR_NOT_READY, DATABASE_UNAVAILABLE",
    }.items()
}


def get_resolver(request: Request) -> Resolver:
    resolver: Resolver = request.app.state.resolver
    return resolver


ResolverDep = Annotated[Resolver, Depends(get_resolver)]


def resolver_error(exc: ResolverError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, field=exc.field)


def resolution_public(resolution: Resolution) -> ResolvePublic:
    """The answer of POST /v1/resolve for a resolution."""
    decision, facts, entry, request = resolution.decision, resolution.facts, resolution.entry, resolution.request
    grant, policy, issued = decision.grant, decision.policy, resolution.issued
    compute = request.action == "compute"
    remaining = decision.remaining_micros
    if compute and grant is not None and remaining is None and policy is not None:
        remaining = round(policy.epsilon_budget * MICROS) - grant.spent_micros
    return ResolvePublic(
        decision="permit" if decision.permit else "deny",
        reason=decision.reason,
        message=decision.message,
        entry_id=entry.entry_id,
        action=request.action,
        form=decision.form,
        org=resolution.principal.org_code,
        account=resolution.principal.account,
        algorithm_id=request.algorithm_id,
        algorithm_code_hash=facts.algorithm.code_hash if facts.algorithm else None,
        constraints=DecisionConstraints(
            purpose=grant.purpose if grant else None,
            expires_at=from_unix(grant.expires_at) if grant and grant.expires_at else None,
            admitted_algorithms=list(facts.admitted_algorithms) if compute else None,
            k=policy.k if policy else None,
            epsilon_budget=policy.epsilon_budget if policy and grant else None,
            remaining_epsilon=max(0, remaining) / MICROS if remaining is not None and grant else None,
            max_epsilon_per_job=policy.max_epsilon_per_job if policy else None,
        ),
        proof=DecisionProof(
            basis=decision.basis,  # type: ignore[arg-type]
            grant_id=grant.grant_id if grant else None,
            grant_form=grant.form if grant else None,
            request_tx_hash=grant.request_tx_hash if grant else None,
            approval_tx_hashes=list(grant.approval_tx_hashes) if grant else [],
            grant_tx_hash=grant.grant_tx_hash if grant else None,
            grant_block=grant.grant_block if grant else None,
            entry_version_hash=entry.version_hash,
            block=BlockRef(number=facts.block_number, hash=facts.block_hash),
            chain_time=from_unix(resolution.chain_time) if resolution.chain_time is not None else None,
        ),
        capability=None
        if issued is None
        else CapabilityPublic(
            token=issued.token,
            kid=issued.kid,
            jti=issued.jti,
            issued_at=from_unix(issued.issued_at),
            expires_at=from_unix(issued.expires_at),
            receipt_id=issued.receipt_id,
            receipt_hash=issued.receipt_hash,
        ),
    )


def _resolve(request: Request, credentials: HTTPAuthorizationCredentials, body: ResolveCreate) -> ResolvePublic:
    if body.action == "compute" and body.algorithm_id is None:
        raise ApiError(422, "VALIDATION_ERROR", "compute needs the algorithm_id to run", field="algorithm_id")
    if body.action != "compute":
        for name in ("algorithm_id", "epsilon"):
            if getattr(body, name) is not None:
                raise ApiError(422, "VALIDATION_ERROR", f"{name} is for compute only", field=name)
    with Session(request.app.state.engine) as session:
        principal = require_member(get_principal(session, credentials))
    resolver: Resolver = request.app.state.resolver
    try:
        resolution = resolver.resolve(
            principal, ResolveRequest(body.entry_id, body.action, body.algorithm_id, body.epsilon)
        )
    except ResolverError as exc:
        raise resolver_error(exc) from exc
    return resolution_public(resolution)


@router.post("/v1/resolve", summary="Decide an access and get a capability token", responses=_ERRORS)  # type: ignore[arg-type]
async def resolve(body: ResolveCreate, request: Request, credentials: BearerDep) -> ResolvePublic:
    """Permit or deny `action` on a catalog entry for the caller's org, on the mirror's last indexed block.

    A permit carries a capability token (ES256 JWT, `aud` dirchain-data-holder) that a data holder verifies
    offline with `GET /v1/resolver/jwks`, and writes a usage receipt; a deny carries its `reason`. The proof
    names the grant and its request, approval and grant transactions, and the block decided at.
    """
    # One worker-thread hop for authentication and decision (the shared sync dependencies take one each).
    return await run_in_threadpool(_resolve, request, credentials, body)


@router.get("/v1/resolver/jwks", summary="The keys that sign capability tokens (JWKS)")
def jwks(resolver: ResolverDep, response: Response) -> JwksPublic:
    """The public keys (RFC 7517) a data holder verifies capability tokens with: the current signing key, and
    during a rotation the previous one. No authentication: public keys are public."""
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return JwksPublic(keys=resolver.keys.jwks()["keys"])
