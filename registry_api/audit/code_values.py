"""Decode what a deployment wrote besides its code: immutable words and ABI-encoded constructor arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError
from eth_utils import is_address, to_checksum_address
from eth_utils.abi import collapse_if_tuple

from registry_api.schemas.audit_code import ConstructorArg

__all__ = ["abi_type_of", "decode_constructor_args", "decode_word", "jsonable"]


def abi_type_of(type_string: str) -> str | None:
    """The ABI type a 32-byte immutable word of this Solidity type decodes as; None if there is no plain one."""
    if type_string.startswith("contract ") or type_string in ("address", "address payable"):
        return "address"
    if type_string.startswith("enum "):
        return "uint8"
    if type_string == "bool" or (type_string.startswith(("uint", "int", "bytes")) and type_string != "bytes"):
        return type_string
    return None  # user-defined value types and the like: shown as the raw word


def jsonable(value: Any) -> Any:
    """A decoded ABI value for JSON: addresses checksummed, bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and is_address(value) and value.startswith("0x"):
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def decode_word(type_string: str, word: bytes) -> Any:
    """The word decoded as `type_string`, or None when it does not decode (dirty padding: not a valid value)."""
    abi_type = abi_type_of(type_string)
    if abi_type is None:
        return None
    try:
        return jsonable(eth_abi.decode([abi_type], word)[0])
    except DecodingError:
        return None


def decode_constructor_args(
    abi: Sequence[Mapping[str, Any]], data: bytes, names: Mapping[str, str]
) -> list[ConstructorArg]:
    """The constructor's arguments from the bytes after the creation code; `names` maps lowercase addresses to the
    deployment's contract names. Raises `DecodingError` if the bytes are not the constructor's encoding."""
    constructor = next((item for item in abi if item.get("type") == "constructor"), None)
    inputs = list(constructor.get("inputs", [])) if constructor else []
    if not inputs:
        if data:
            raise DecodingError(f"{len(data)} bytes after creation code, and the constructor takes no arguments")
        return []
    values = eth_abi.decode([collapse_if_tuple(dict(i)) for i in inputs], data)
    args = []
    for item, value in zip(inputs, values, strict=True):
        shown = jsonable(value)
        args.append(
            ConstructorArg(
                name=str(item.get("name", "")),
                type=str(item.get("internalType") or item["type"]),
                value=shown,
                points_to=names.get(shown.lower()) if isinstance(shown, str) else None,
            )
        )
    return args
