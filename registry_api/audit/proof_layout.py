"""Storage slots of contract state from solc's storage layout: where a record lives, and its words decoded.

Solidity's rules (docs: "Layout of State Variables in Storage"), driven by the compiler's `storageLayout` output
rather than hand-written offsets:
- a mapping value sits at keccak256(key . slot), the key padded to 32 bytes for value types and raw for
  strings and bytes; nested mappings apply the rule again with the first result as the slot;
- a dynamic array's item i sits at keccak256(slot) + i * (slots per item), small items packed into one slot;
- struct members sit at their layout slot relative to the struct's first slot, packed at their byte offset from
  the low-order end of the 32-byte word;
- a string or bytes of 31 bytes or less sits in its slot (length * 2 in the lowest byte); a longer one stores
  length * 2 + 1 there and its data from keccak256(slot) on.

The layouts come from build/contracts.json (`storage_layout` of each contract) or, for artifacts built before
the compiler asked for it, from compiling the sources in memory once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils import keccak, to_checksum_address

from chain_gateway import compiler

__all__ = ["LayoutError", "Location", "StorageLayout", "storage_layouts"]

WORD = 32  # bytes in a storage slot


class LayoutError(LookupError):
    """The layout has no such variable or member, or the value has a type the decoder does not know."""


@dataclass(frozen=True)
class Location:
    """A value in storage: its first slot, its byte offset within that slot (packed values) and its layout type."""

    slot: int
    offset: int
    type_id: str


def _word(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def _hash_slot(data: bytes) -> int:
    return int.from_bytes(keccak(data), "big")


class StorageLayout:
    """One contract's `storageLayout` (variables and types), walked by labels, mapping keys and array indexes."""

    def __init__(self, contract: str, layout: Mapping[str, Any]) -> None:
        self.contract = contract
        self.types: dict[str, dict[str, Any]] = dict(layout.get("types") or {})
        self._variables = {v["label"]: v for v in layout.get("storage", [])}

    def _type(self, type_id: str) -> dict[str, Any]:
        try:
            return self.types[type_id]
        except KeyError:
            raise LayoutError(f"{self.contract}: type {type_id} is not in the layout") from None

    def size(self, type_id: str) -> int:
        """Bytes a value of `type_id` takes (a whole number of slots for structs, arrays and mappings)."""
        return int(self._type(type_id)["numberOfBytes"])

    def encoding(self, type_id: str) -> str:
        """inplace | mapping | dynamic_array | bytes."""
        return str(self._type(type_id)["encoding"])

    def variable(self, label: str) -> Location:
        """The state variable named `label` (e.g. "_devices")."""
        try:
            var = self._variables[label]
        except KeyError:
            raise LayoutError(f"{self.contract} has no state variable {label}") from None
        return Location(int(var["slot"]), int(var["offset"]), var["type"])

    def member(self, struct: Location, label: str) -> Location:
        """Member `label` of the struct at `struct`."""
        for m in self._type(struct.type_id).get("members") or []:
            if m["label"] == label:
                return Location(struct.slot + int(m["slot"]), int(m["offset"]), m["type"])
        raise LayoutError(f"{self.contract}: {struct.type_id} has no member {label}")

    def members(self, struct: Location) -> list[tuple[str, Location]]:
        """Every member of the struct at `struct`, in declaration order."""
        info = self._type(struct.type_id)
        if "members" not in info:
            raise LayoutError(f"{self.contract}: {struct.type_id} is not a struct")
        return [
            (m["label"], Location(struct.slot + int(m["slot"]), int(m["offset"]), m["type"])) for m in info["members"]
        ]

    def key(self, container: Location, key: Any) -> Location:
        """The mapping value for `key`, or the dynamic array item at index `key`."""
        info = self._type(container.type_id)
        if info["encoding"] == "mapping":
            data = self._mapping_key(info["key"], key) + _word(container.slot)
            return Location(_hash_slot(data), 0, info["value"])
        if info["encoding"] == "dynamic_array":
            base, item = _hash_slot(_word(container.slot)), info["base"]
            size = self.size(item)
            if size >= WORD:  # structs and 32-byte values: whole slots per item
                return Location(base + int(key) * (size // WORD), 0, item)
            per_slot = WORD // size
            return Location(base + int(key) // per_slot, (int(key) % per_slot) * size, item)
        raise LayoutError(f"{self.contract}: {container.type_id} is neither a mapping nor a dynamic array")

    def _mapping_key(self, key_type: str, key: Any) -> bytes:
        label = str(self._type(key_type)["label"])
        if self.encoding(key_type) == "bytes":  # string and bytes keys are hashed unpadded
            return key.encode() if isinstance(key, str) and label == "string" else bytes.fromhex(str(key)[2:])
        if label == "address":
            return bytes(12) + bytes.fromhex(str(key)[2:].rjust(40, "0"))
        if label.startswith("bytes"):  # bytesN: left-aligned
            raw = key if isinstance(key, bytes) else bytes.fromhex(str(key)[2:])
            return raw.ljust(WORD, b"\0")
        if label.startswith("int"):
            return int(key).to_bytes(WORD, "big", signed=True)
        return _word(int(key))  # uintN, enums, bool

    def slots(self, location: Location) -> list[int]:
        """The slots that hold an in-place value or a struct (a string's head slot only; see `string_slots`)."""
        encoding = self.encoding(location.type_id)
        if encoding == "inplace" and "members" in self._type(location.type_id):
            found: list[int] = []
            for _, member in self.members(location):
                found.extend(s for s in self.slots(member) if s not in found)
            return found
        if encoding in ("inplace", "bytes"):
            count = max(1, (location.offset + self.size(location.type_id) + WORD - 1) // WORD)
            return [location.slot + i for i in range(count)]
        raise LayoutError(f"{self.contract}: a {encoding} value has no slots of its own")

    @staticmethod
    def string_slots(location: Location, head: int) -> list[int]:
        """The data slots of a long string or bytes whose head slot holds `head` (none for a short one)."""
        if head & 1 == 0:
            return []
        length = (head - 1) // 2
        start = _hash_slot(_word(location.slot))
        return [start + i for i in range((length + WORD - 1) // WORD)]

    def decode(self, location: Location, words: Mapping[int, int]) -> Any:
        """The value at `location` from proven slot values (`words`: slot -> 32-byte word as int).

        Integers and enums are ints, bools bools, addresses checksummed, bytesN `0x`-hex, strings `str` (a long
        string needs its data slots in `words`, see `string_slots`).
        """
        info = self._type(location.type_id)
        label = str(info["label"])
        if info["encoding"] == "bytes":
            return self._decode_bytes(location, words, label)
        if info["encoding"] != "inplace" or "members" in info:
            raise LayoutError(f"{self.contract}: cannot decode {location.type_id} as one value")
        size = int(info["numberOfBytes"])
        raw = (words.get(location.slot, 0) >> (8 * location.offset)) & ((1 << (8 * size)) - 1)
        if label == "bool":
            return raw != 0
        if label == "address" or label.startswith("contract "):
            return to_checksum_address(raw.to_bytes(20, "big"))
        if label.startswith("bytes"):
            return "0x" + raw.to_bytes(size, "big").hex()
        if label.startswith("int"):
            return raw - (1 << (8 * size)) if raw >> (8 * size - 1) else raw
        return raw  # uintN, enums

    def _decode_bytes(self, location: Location, words: Mapping[int, int], label: str) -> Any:
        head = words.get(location.slot, 0)
        if head & 1 == 0:  # short: data in the high-order bytes, length * 2 in the lowest byte
            length = (head & 0xFF) // 2
            data = _word(head)[:length]
        else:
            length = (head - 1) // 2
            missing = [s for s in self.string_slots(location, head) if s not in words]
            if missing:
                raise LayoutError(f"{self.contract}: the data slots of a {length}-byte {label} were not read")
            data = b"".join(_word(words[s]) for s in self.string_slots(location, head))[:length]
        return data.decode("utf-8", errors="replace") if label == "string" else "0x" + data.hex()


def _layout_of(artifact: Mapping[str, Any]) -> Mapping[str, Any] | None:
    layout = artifact.get("storage_layout")
    return layout if isinstance(layout, Mapping) else None


@cache
def _compiled_layouts() -> dict[str, dict[str, Any]]:
    """Storage layouts compiled from the sources in memory (artifacts written before layouts were asked for)."""
    input_json = compiler.standard_input()
    selection = input_json["settings"]["outputSelection"]["*"]["*"]
    if "storageLayout" not in selection:
        selection.append("storageLayout")
    output = compiler.run_solc(input_json)
    return {
        name: out["storageLayout"]
        for source, by_name in output["contracts"].items()
        if source.startswith("contracts/")
        for name, out in by_name.items()
        if out.get("storageLayout")
    }


@cache
def storage_layouts(contracts: tuple[str, ...]) -> dict[str, StorageLayout]:
    """The storage layout of each of `contracts`, from the build artifacts or compiled from the sources (once per
    process: layouts change only with the sources, and a running service keeps the contracts it started with)."""
    artifacts = compiler.load_artifacts()["contracts"]
    layouts: dict[str, StorageLayout] = {}
    for name in contracts:
        layout = _layout_of(artifacts.get(name, {}))
        if layout is None:
            compiled = _compiled_layouts()
            if name not in compiled:
                raise LayoutError(f"no storage layout for contract {name}")
            layout = compiled[name]
        layouts[name] = StorageLayout(name, layout)
    return layouts
