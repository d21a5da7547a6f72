"""`dirchain audit`: report commands (see registry_api.audit)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(audit_app: typer.Typer) -> None:
    """Add this module's commands to `dirchain audit`."""
