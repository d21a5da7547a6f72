"""Exceptions of the chain gateway.

    GatewayError
    ├── GatewayConfigError (+ RuntimeError)   missing build, keystore, deployment or bad settings
    ├── GatewayRPCError (+ ConnectionError)   the node could not be reached or answered with an RPC error
    │   └── retryable: timeouts, connection refused, 5xx
    ├── ContractRevert (+ ValueError)          the contract refused: `name` and `args` of its custom error
    ├── InvalidCall (+ ValueError)             unknown contract or function, or arguments that do not fit its ABI
    └── IdempotencyConflict (+ ValueError)     an idempotency key reused with a different request body

Third-party errors (requests, web3, eth_abi) are translated at one boundary, `chain_gateway.rpc`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ContractRevert",
    "GatewayConfigError",
    "GatewayError",
    "GatewayRPCError",
    "IdempotencyConflict",
    "InvalidCall",
]


class GatewayError(Exception):
    """Root of every error raised by chain_gateway."""


class GatewayConfigError(GatewayError, RuntimeError):
    """The gateway is not set up: build, deployments, keystore or settings are missing or wrong."""


class GatewayRPCError(GatewayError, ConnectionError):
    """The JSON-RPC node failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class ContractRevert(GatewayError, ValueError):
    """A call or transaction reverted; `name`/`args` are the decoded custom error (or Error(string)/Panic)."""

    def __init__(self, name: str, args: dict[str, Any], data: str = "0x") -> None:
        super().__init__(f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
        self.name = name
        self.args_dict = args
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return {"error": self.name, "args": self.args_dict}


class InvalidCall(GatewayError, ValueError):
    """The call cannot be encoded: unknown contract or function, or arguments that do not fit the ABI."""


class IdempotencyConflict(GatewayError, ValueError):
    """An idempotency key was reused for the same account with a different request body."""

    def __init__(self, idempotency_key: str, operation_id: str) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} was used for a different request (operation {operation_id})"
        )
        self.idempotency_key = idempotency_key
        self.operation_id = operation_id
