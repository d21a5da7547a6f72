"""Closing what a `from_settings` constructor created, shared by the gateway and the indexer."""

from __future__ import annotations

from typing import Self

from sqlalchemy import Engine

from chain_gateway.rpc import JsonRpcClient

__all__ = ["OwnsResources"]


class OwnsResources:
    """Mixin: `close()` (or leaving a `with` block) releases the RPC clients and engines in `_owned`.

    Injected engines and clients are not added to `_owned`: they stay their caller's to close.
    """

    _owned: list[JsonRpcClient | Engine]

    def close(self) -> None:
        for resource in self._owned:
            if isinstance(resource, Engine):
                resource.dispose()
            else:
                resource.close()
        self._owned = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
