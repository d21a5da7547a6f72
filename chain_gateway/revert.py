"""Decode revert data to `ContractRevert(name, args, data)`: custom errors, `Error(string)` and `Panic(uint256)`.

Revert data comes from a JSON-RPC error answer (eth_call, eth_estimateGas) or from replaying a failed mined
transaction with eth_call. Every custom error of every compiled unit is known (the deployment's
`errors_abi`), so errors of the Consortium that bubble up through DeviceRegistry calls decode too.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, is_address, to_checksum_address

from chain_gateway.calldata import abi_type
from chain_gateway.errors import ContractRevert
from chain_gateway.rpc import RpcErrorAnswer

__all__ = ["UNKNOWN_ERROR", "REVERTED_WITHOUT_DATA", "RevertDecoder", "json_friendly"]

REVERTED_WITHOUT_DATA = "Reverted"  # `revert()` or `require(cond)` without a message, or out of gas
UNKNOWN_ERROR = "UnknownError"  # a selector no compiled unit declares

_BUILTIN_ERRORS: tuple[dict[str, Any], ...] = (
    {"type": "error", "name": "Error", "inputs": [{"name": "message", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
)


def json_friendly(value: Any, kind: str) -> Any:
    """A decoded ABI value as JSON-friendly data: bytes -> 0x hex, addresses checksummed, tuples -> lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        inner = kind[: kind.rindex("[")] if kind.endswith("]") else ""
        return [json_friendly(v, inner) for v in value]
    if kind == "address" and isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    return value


class RevertDecoder:
    """Maps 4-byte selectors to error ABIs and decodes their arguments with eth_abi."""

    def __init__(self, errors_abi: list[dict[str, Any]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for item in (*_BUILTIN_ERRORS, *errors_abi):
            types = [abi_type(i) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            names = [i.get("name") or f"arg{n}" for n, i in enumerate(item["inputs"])]
            self._errors[function_signature_to_4byte_selector(signature)] = (item["name"], names, types)

    def decode(self, data: str | bytes) -> ContractRevert:
        """The error that `data` (selector + ABI-encoded arguments) encodes."""
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
        hex_data = "0x" + raw.hex()
        if len(raw) < 4:
            return ContractRevert(REVERTED_WITHOUT_DATA, {}, hex_data)
        known = self._errors.get(raw[:4])
        if known is None:
            return ContractRevert(UNKNOWN_ERROR, {"selector": "0x" + raw[:4].hex()}, hex_data)
        name, names, types = known
        try:
            values = abi_decode(types, raw[4:])
        except DecodingError:
            return ContractRevert(UNKNOWN_ERROR, {"selector": "0x" + raw[:4].hex()}, hex_data)
        args = {n: json_friendly(v, t) for n, v, t in zip(names, values, types, strict=True)}
        return ContractRevert(name, args, hex_data)

    def from_rpc_error(self, error: RpcErrorAnswer) -> ContractRevert | None:
        """The revert in a JSON-RPC error answer, or None if the answer is not a revert (e.g. no funds)."""
        data: Any = error.data
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return self.decode(data)
            except ValueError:
                pass
        if "revert" in error.message.lower():
            return ContractRevert(REVERTED_WITHOUT_DATA, {"message": error.message}, "0x")
        return None
