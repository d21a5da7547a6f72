"""Helpers of the audit tests: the environment that points the `dirchain audit` commands at a test's chain."""

from __future__ import annotations

import json

from chain_gateway.settings import Settings

__all__ = ["cli_env"]


def cli_env(settings: Settings) -> dict[str, str]:
    """DIRCHAIN_* variables naming `settings`' node, chain, deployment file and mirror database."""
    return {
        "DIRCHAIN_RPC_URLS": json.dumps(settings.rpc_urls),
        "DIRCHAIN_CHAIN_ID": str(settings.chain_id),
        "DIRCHAIN_DEPLOYMENTS_PATH": str(settings.deployments_path),
        "DIRCHAIN_DATABASE_URL": settings.database_url,
    }
