"""/v1/audit/code: the deployed contracts compared with a rebuild of the server's sources (registry_api.audit.code).

The rebuild is cached per digest of its standard-JSON input (sources and settings): the first call compiles for
seconds, later ones read the chain only. An auditor who trusts nothing runs `dirchain audit code` instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from chain_gateway.deployments import Deployment
from chain_gateway.rpc import JsonRpcClient
from registry_api.audit.code import CodeAuditError, audit_code
from registry_api.audit.code_build import RebuildCache
from registry_api.deps import PrincipalDep, SettingsDep
from registry_api.errors import ApiError
from registry_api.schemas.audit_code import CodeAuditPublic
from registry_api.schemas.common import ErrorPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token (UNAUTHENTICATED)"},
    409: {
        "model": ErrorPublic,
        "description": "the server cannot rebuild as the deployment was built: COMPILER_VERSION_MISMATCH, "
        "NO_SOURCES, REBUILD_FAILED, CHAIN_MISMATCH",
    },
    503: {"model": ErrorPublic, "description": "CHAIN_UNAVAILABLE"},
}


def _cache(request: Request) -> RebuildCache:
    """The app's rebuild cache, made on first use (one per app, so tests' apps do not share it by accident)."""
    cache: RebuildCache | None = getattr(request.app.state, "code_rebuilds", None)
    if cache is None:
        cache = request.app.state.code_rebuilds = RebuildCache()
    return cache


@router.get("/code", summary="Code provenance of the deployed contracts", responses=_ERRORS)  # type: ignore[arg-type]
def get_code_audit(request: Request, settings: SettingsDep, _: PrincipalDep) -> CodeAuditPublic:
    """Rebuild contracts/ with the pinned solc and the deployment's recorded settings, and compare each contract of
    the deployment file with the chain: runtime code (immutables masked; `full` includes the metadata hash, so the
    exact sources; `partial` the executable only; `mismatch` with the first differing byte), immutable values, the
    creation transaction and its constructor arguments, and the recorded source and bytecode hashes."""
    deployment: Deployment = request.app.state.services.deployment
    try:
        built = _cache(request).get(deployment["compiler"])
        with JsonRpcClient(settings.rpc_urls) as rpc:
            return audit_code(rpc, deployment, built)
    except CodeAuditError as exc:
        raise ApiError(409, exc.code, exc.message) from exc
