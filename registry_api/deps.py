"""FastAPI dependencies: settings, SQL session, gateway, indexer, the authenticated principal, role checks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from chain_gateway.gateway import Gateway
from chain_gateway.settings import Settings
from indexer.errors import is_database_lost
from indexer.service import Indexer
from registry_api.auth import Principal, PrincipalCache, resolve_principal
from registry_api.device_sql import Reader
from registry_api.errors import ApiError
from registry_api.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

__all__ = [
    "AuditorDep",
    "BearerDep",
    "GatewayDep",
    "IndexerDep",
    "PageDep",
    "PrincipalDep",
    "ReaderDep",
    "RegistrarDep",
    "SessionDep",
    "SettingsDep",
    "get_session",
    "read_connection",
    "require_role",
]

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="a token issued by `dirchain tokens issue` (dct_...)")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request; closed after the answer is sent (FastAPI runs this exit after the response)."""
    session = Session(request.app.state.engine)
    try:
        yield session
    finally:
        try:
            session.close()
        except DBAPIError as exc:
            # the server ended the connection (PostgreSQL stopping) after the route was done with it: the rollback
            # of close fails once the answer has started, and raising then would reset the client's connection
            # and lose, e.g., a 202. SQLAlchemy has invalidated the connection already; nothing else is owed.
            if not is_database_lost(exc):
                raise
            log.warning("session closed on a lost database connection: %s", type(exc.orig).__name__)


@contextmanager
def read_connection(request: Request) -> Iterator[Reader]:
    """A pooled DB-API connection of the app's engine for the prepared device reads, returned to the pool after.

    No SQLAlchemy `Connection` around it: the reads run their own compiled SQL (`registry_api.device_sql`).
    """
    engine: Engine = request.app.state.engine
    try:
        connection = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # as `engine.connect()` raises it: 503 DATABASE_UNAVAILABLE
        raise DBAPIError.instance(None, None, exc, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect) from exc
    try:
        yield Reader(connection, engine.dialect)
    finally:
        connection.close()


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def get_indexer(request: Request) -> Indexer:
    indexer: Indexer = request.app.state.indexer
    return indexer


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
IndexerDep = Annotated[Indexer, Depends(get_indexer)]


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_bearer(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> HTTPAuthorizationCredentials:
    """The request's bearer credentials; 401 UNAUTHENTICATED if none were sent (async: no thread hop)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(401, "UNAUTHENTICATED", "send Authorization: Bearer <token>", headers=_CHALLENGE)
    return credentials


BearerDep = Annotated[HTTPAuthorizationCredentials, Depends(get_bearer)]


def _known(principal: Principal | None) -> Principal:
    if principal is None:
        raise ApiError(401, "UNAUTHENTICATED", "the token is unknown, revoked or expired", headers=_CHALLENGE)
    return principal


def get_principal(session: SessionDep, credentials: BearerDep) -> Principal:
    """The org and account of the bearer token; 401 UNAUTHENTICATED if it is missing, unknown, revoked or expired."""
    return _known(resolve_principal(session, credentials.credentials))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_reader(request: Request, credentials: BearerDep) -> Principal:
    """`get_principal` for hot read routes: on the event loop (no thread hop) through the app's `PrincipalCache`.

    A cache miss runs the token query on the loop: one indexed lookup, shorter than handing it to a thread.
    """
    state = request.app.state
    cache: PrincipalCache | None = getattr(state, "principal_cache", None)
    if cache is None:
        cache = state.principal_cache = PrincipalCache()
    return _known(cache.resolve(state.engine, credentials.credentials))


ReaderDep = Annotated[Principal, Depends(get_reader)]


def require_role(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through principals whose account holds `role` on-chain (403 ROLE_REQUIRED)."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.org_id is None:
            raise ApiError(403, "ORG_UNKNOWN", f"organisation {principal.org_code} is not (yet) a consortium member")
        if not principal.org_active:
            raise ApiError(403, "ORG_INACTIVE", f"organisation {principal.org_code} is suspended from the consortium")
        if not principal.has_role(role):
            raise ApiError(
                403,
                "ROLE_REQUIRED",
                f"this needs the {role} role; account {principal.account} of {principal.org_code} does not hold it",
                role=role,
            )
        return principal

    return check


RegistrarDep = Annotated[Principal, Depends(require_role("REGISTRAR"))]
AuditorDep = Annotated[Principal, Depends(require_role("AUDITOR"))]


class Page:
    """`limit` (1..1000, default 50) and `offset` (>= 0) of a list."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> Page:
    """The page of a list; async because FastAPI hands every sync dependency (classes too) to a thread."""
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(get_page)]
