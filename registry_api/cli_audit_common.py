"""What the `dirchain audit` commands share: exit codes, the local chain and mirror, check marks.

Audit commands run where the auditor is: the node over JSON-RPC and the mirror's database directly, from the
settings (DIRCHAIN_RPC_URLS, DIRCHAIN_DATABASE_URL, DIRCHAIN_DEPLOYMENTS_PATH or deployments/<chainId>.json) or the
command's options; the API is not asked. Exit codes: 0 verified, 1 a check failed, 2 the audit could not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from chain_gateway.deployments import Deployment
from chain_gateway.errors import GatewayConfigError, GatewayRPCError
from chain_gateway.rpc import JsonRpcClient

__all__ = ["AUDIT_RPC_TIMEOUT_SECONDS", "EXIT_CANNOT_AUDIT", "EXIT_FAILED", "cannot", "local_chain", "mark"]

AUDIT_RPC_TIMEOUT_SECONDS = 120.0  # a long range's eth_getLogs and traces take a while on a busy node
EXIT_FAILED = 1
EXIT_CANNOT_AUDIT = 2

err = Console(stderr=True)


def cannot(message: str) -> NoReturn:
    """Say why the audit cannot run and exit 2."""
    err.print(f"[red]cannot audit[/]: {escape(message)}")
    raise typer.Exit(EXIT_CANNOT_AUDIT)


def mark(ok: bool | None) -> str:
    """A check's verdict as rich markup (None: skipped)."""
    return {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "[yellow]skipped[/]"}[ok]


@contextmanager
def local_chain(
    rpc_url: str | None = None, database_url: str | None = None
) -> Iterator[tuple[JsonRpcClient, Deployment, Engine]]:
    """The node, the deployment file and the mirror's database named by the settings (or these overrides).

    Node, configuration and database failures inside the block exit 2 with the reason.
    """
    from chain_gateway.deployments import load_deployment
    from chain_gateway.settings import get_settings
    from indexer.service import create_mirror_engine

    settings = get_settings()
    urls = [rpc_url] if rpc_url else settings.rpc_urls
    with JsonRpcClient(urls, timeout=AUDIT_RPC_TIMEOUT_SECONDS) as rpc:
        try:
            deployment = load_deployment(settings.deployments_file(settings.chain_id or rpc.chain_id()))
        except (GatewayRPCError, GatewayConfigError) as exc:
            cannot(str(exc))
        engine = create_mirror_engine(database_url or settings.database_url)
        try:
            yield rpc, deployment, engine
        except GatewayRPCError as exc:
            cannot(f"the node at {rpc.url} failed: {exc}")
        except GatewayConfigError as exc:
            cannot(str(exc))
        except SQLAlchemyError as exc:
            cannot(f"the mirror database failed: {exc.__class__.__name__}: {exc}")
        finally:
            engine.dispose()
