"""Files that hold secrets (keystores, signing keys, HMAC secrets): readable by their owner only, or refused.

A key file that the group or others can read may already have been copied; starting anyway would hide that,
so loading one fails with what to do.
"""

from __future__ import annotations

import stat
from pathlib import Path

from chain_gateway.errors import GatewayConfigError

__all__ = ["require_owner_only"]


def require_owner_only(path: Path) -> None:
    """Raise GatewayConfigError unless only the owner may read or write `path` (mode 0600 or tighter)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise GatewayConfigError(f"{path.name} is readable by others (mode {mode:o}); chmod 600 it")
