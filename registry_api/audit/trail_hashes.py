"""Hashes recomputed from mirrored records the way the contracts compute them.

- devices and carriers: `attributesHash = keccak256(bytes(attributes))` of the canonical JSON text;
- catalog entries: `versionHash = keccak256(abi.encode(EntryInput))` (DataCatalog._setVersion), and the schema
  hash the mirror keeps, keccak256 of the schema text;
- algorithms: `inputHash = keccak256(abi.encode(AlgorithmInput))` (AlgorithmRegistry.submit);
- review projects: `devicesHash = keccak256(abi.encode(DeviceInput[]))` (ReviewBoard.file).

The ABI types come from the deployment's ABI (the struct argument of the event that carries the record), so a
field added to a struct changes the encoding here too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import encode
from eth_utils import keccak

from chain_gateway.calldata import abi_type
from chain_gateway.deployments import Deployment
from indexer.handlers import SHARE_CONDITIONS

__all__ = [
    "PLANNED",
    "abi_hash",
    "algorithm_input",
    "entry_input",
    "event_arg_type",
    "project_devices_input",
    "text_hash",
]

PLANNED = 1  # IDeviceRegistry.Status.Planned: every device of a review project is filed as planned


def text_hash(text: str) -> str:
    """keccak256 of a string's UTF-8 bytes, 0x-hex (Solidity's keccak256(bytes(s)))."""
    return "0x" + keccak(text=text).hex()


def event_arg_type(deployment: Deployment, contract: str, event: str, arg: str) -> str:
    """The canonical ABI type of argument `arg` of `contract`'s event `event` (tuples spelled out)."""
    for item in deployment["contracts"][contract]["abi"]:
        if item.get("type") == "event" and item.get("name") == event:
            for param in item["inputs"]:
                if param["name"] == arg:
                    return abi_type(param)
    raise KeyError(f"{contract}.{event} has no argument {arg}")


def _bytes32(value: str | None) -> bytes:
    return bytes.fromhex((value or "0x" + "00" * 32)[2:])


def abi_hash(type_: str, value: Any) -> str:
    """keccak256(abi.encode(value)) for one value of ABI type `type_`, 0x-hex."""
    return "0x" + keccak(encode([type_], [value])).hex()


def entry_input(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A mirrored catalog entry (or version) as the IDataCatalog.EntryInput the contract hashed."""
    return (
        row["title"],
        row["classification"],
        int(row["grade"]),
        SHARE_CONDITIONS.index(row["share_condition"]),
        int(row["forms_mask"]),
        row["schema"],
        list(json.loads(row["device_codes"])),
        [int(u) for u in json.loads(row["upstream"])],
    )


def algorithm_input(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A mirrored algorithm as the IAlgorithmRegistry.AlgorithmInput the contract hashed."""
    return (row["name"], row["version"], _bytes32(row["code_hash"]), row["outputs"])


def project_devices_input(rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """A project's mirrored devices, in filing order, as the IDeviceRegistry.DeviceInput[] the contract hashed."""
    ordered = sorted(rows, key=lambda r: int(r["position"]))
    return [
        (r["code"], int(r["type_id"]), PLANNED, int(r["district"]), int(r["lat_e6"]), int(r["lon_e6"]),
         int(r["built_at"]), r["attributes"])
        for r in ordered
    ]  # fmt: skip
