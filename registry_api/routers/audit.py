"""/v1/audit/verify: the mirror rebuilt from the chain and compared with the live database (indexer.verify).

An auditor who trusts nothing runs `dirchain audit verify` against the chain and the database instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from chain_gateway.rpc import JsonRpcClient
from indexer.verify import DEFAULT_SAMPLES, VerifyError
from registry_api.audit.mirror import MirrorVerifier, verify_public
from registry_api.deps import AuditorDep, SettingsDep
from registry_api.errors import ApiError
from registry_api.schemas.audit import VerifyPublic
from registry_api.schemas.common import VALIDATION_ERROR_RESPONSE, ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

VERIFY_RPC_TIMEOUT = 120.0  # seconds: eth_getLogs over dense ranges of a large chain

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token (UNAUTHENTICATED)"},
    422: VALIDATION_ERROR_RESPONSE,
    403: {"model": ErrorPublic, "description": "the caller's account lacks the AUDITOR role (ROLE_REQUIRED)"},
    409: {
        "model": ErrorPublic,
        "description": "MIRROR_NOT_VERIFIABLE: nothing indexed yet, or the mirror is on blocks the chain no longer "
        "has (a reorg the indexer has not caught up with)",
    },
    503: {"model": ErrorPublic, "description": "CHAIN_UNAVAILABLE or DATABASE_UNAVAILABLE"},
}


def _verifier(request: Request, settings: SettingsDep) -> MirrorVerifier:
    """The app's verifier with its own RPC client (long timeout), made on first use and closed with the app."""
    verifier: MirrorVerifier | None = getattr(request.app.state, "mirror_verifier", None)
    if verifier is None:
        services = request.app.state.services
        rpc = JsonRpcClient(settings.rpc_urls, timeout=VERIFY_RPC_TIMEOUT)
        services.rpcs.append(rpc)
        verifier = MirrorVerifier(services.engine, rpc, services.deployment, settings.audit_scratch_dir)
        request.app.state.mirror_verifier = verifier
    return verifier


@router.get("/verify", summary="Verify the mirror against the chain", responses=_ERRORS)  # type: ignore[arg-type]
async def verify(
    request: Request,
    settings: SettingsDep,
    _: AuditorDep,
    samples: Annotated[
        int, Query(ge=1, le=100, description="differing rows reported per table and kind, and divergent blocks")
    ] = DEFAULT_SAMPLES,
) -> VerifyPublic:
    """Replay every log of the deployment into a scratch database up to the live mirror's checkpoint and compare
    every mirror table row by row, in one read snapshot of the live database. Each row is attributed to the block
    that last shaped it; a digest per block (BLAKE2b of its rows) and the chained digest of all blocks (a proof of
    indexing) locate the first block where the two diverge. Rows are reported as `missing` (on the chain, not in the
    mirror), `extra` (in the mirror only) or `differing` (with the columns). Takes about a minute per million
    devices; one verification runs at a time and callers during a run get its report."""
    verifier = _verifier(request, settings)
    try:
        report = await run_in_threadpool(verifier.verify, samples)
    except VerifyError as exc:
        raise ApiError(409, "MIRROR_NOT_VERIFIABLE", str(exc)) from exc
    return verify_public(report)
