"""Event decoding: (contract address, topic0) -> a decoder built from the deployment's ABIs.

web3's contract-event decoding runs at ~2k logs/s and `eth_abi.decode` at ~17k/s for DeviceRegistered, both
below the indexer's 30k events/s target, so every event gets a decoder generated once from its ABI: straight
slicing of the 32-byte ABI words, with the same results as `eth_abi.decode` (tests/indexer/test_abi.py checks
them against each other). Elementary types are decoded inline; tuples and arrays (static or dynamic, nested)
get one generated helper function per type. A type the generator does not know falls back to `eth_abi`.

Decoded values are JSON-ready: integers, booleans, `str` for `string`, checksum addresses, and `0x`-hex
strings for `bytes`/`bytesN`. An indexed dynamic argument (string, bytes, array) is its topic: the keccak
hash as hex, as the EVM logs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_abi.abi import default_codec
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from chain_gateway.calldata import abi_type
from chain_gateway.deployments import Deployment
from indexer.errors import LogDecodeError

__all__ = ["DecodedLog", "EventDecoder", "EventSpec", "RawLog", "event_signature"]

WORD = 32  # bytes in an ABI word
_ELEMENTARY = re.compile(r"^(uint|int)(\d*)$|^bool$|^address$|^bytes(\d+)$|^string$|^bytes$")

RawLog = Mapping[str, Any]  # one eth_getLogs entry: address, topics, data, blockNumber, blockHash, ...


class DecodedLog(NamedTuple):
    """One decoded log, in chain coordinates; `key` is "Contract:Event", `args` the arguments by name."""

    key: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


def event_signature(abi_event: Mapping[str, Any]) -> str:
    """`Name(type1,type2,...)`, whose keccak256 is the event's topic0."""
    return f"{abi_event['name']}({','.join(abi_type(p) for p in abi_event['inputs'])})"


# ---------------------------------------------------------------- value normalisation


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _normalise(kind: str, value: Any) -> Any:
    """Turn an eth_abi value into the JSON-ready form the fast decoders produce."""
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        return [_normalise(inner, v) for v in value]
    if kind.startswith("("):
        parts = _split_tuple(kind[1:-1])
        return [_normalise(p, v) for p, v in zip(parts, value, strict=True)]
    if kind == "address":
        return to_checksum_address(value)
    if kind == "bytes" or kind.startswith("bytes"):
        return _hex(value)
    return value


def _split_tuple(inner: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    if inner:
        parts.append(inner[start:])
    return parts


# ---------------------------------------------------------------- generated fast decoders


def _read_dynamic(data: bytes, head: int, offset: int | None = None) -> bytes:
    """The bytes of a dynamic `string`/`bytes` value whose offset word sits at `head` (or at `offset`, if given)."""
    if offset is None:
        offset = int.from_bytes(data[head : head + WORD], "big")
    length = int.from_bytes(data[offset : offset + WORD], "big")
    end = offset + WORD + length
    if end > len(data) or offset + WORD > len(data):
        raise DecodingError(f"dynamic value at byte {offset} runs past the data ({end} > {len(data)})")
    return data[offset + WORD : end]


def _read_string(data: bytes, head: int) -> str:
    return _read_dynamic(data, head).decode("utf-8")


def _read_bytes(data: bytes, head: int) -> str:
    return _hex(_read_dynamic(data, head))


def _read_address(word: bytes) -> str:
    return to_checksum_address(word[12:])


def _word_expr(kind: str, start: int) -> str:
    """Python source that decodes the head word at byte `start` of `d` as `kind`."""
    word = f"d[{start}:{start + WORD}]"
    match = _ELEMENTARY.match(kind)
    assert match is not None
    if kind.startswith("uint"):
        return f"_ib({word}, 'big')"
    if kind.startswith("int"):
        return f"_ib({word}, 'big', signed=True)"
    if kind == "bool":
        return f"(_ib({word}, 'big') != 0)"
    if kind == "address":
        return f"_addr({word})"
    if kind == "string":
        return f"_str(d, {start})"
    if kind == "bytes":
        return f"_bytes(d, {start})"
    size = int(match.group(3))
    return f"'0x' + d[{start}:{start + size}].hex()"


_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")


def _is_known(kind: str) -> bool:
    """Whether the generator handles `kind`: elementary types, tuples and arrays of known types."""
    if _ELEMENTARY.match(kind):
        return True
    array = _ARRAY.match(kind)
    if array:
        return _is_known(array.group(1))
    if kind.startswith("(") and kind.endswith(")"):
        return all(_is_known(p) for p in _split_tuple(kind[1:-1]))
    return False


def _is_dynamic(kind: str) -> bool:
    if kind in ("string", "bytes"):
        return True
    array = _ARRAY.match(kind)
    if array:
        return array.group(2) == "" or _is_dynamic(array.group(1))
    if kind.startswith("("):
        return any(_is_dynamic(p) for p in _split_tuple(kind[1:-1]))
    return False


def _head_size(kind: str) -> int:
    """Bytes `kind` takes in the head of its enclosing tuple: one offset word if dynamic, else its encoding."""
    if _is_dynamic(kind):
        return WORD
    array = _ARRAY.match(kind)
    if array:
        return int(array.group(2)) * _head_size(array.group(1))
    if kind.startswith("("):
        return sum(_head_size(p) for p in _split_tuple(kind[1:-1]))
    return WORD


def _plus(base: str, offset: int | str) -> str:
    if base == "0":
        return str(offset)
    return base if offset in (0, "0") else f"{base} + {offset}"


class _Generator:
    """Python source of a decoder for ABI types: inline expressions, plus one helper per tuple/array type.

    Positions are expressions over `d` (the data bytes): a value's head sits at an absolute position, and a
    dynamic value's offset is relative to the start of its enclosing tuple or array encoding (`base`).
    """

    def __init__(self) -> None:
        self.helpers: dict[str, str] = {}  # kind -> helper name
        self.sources: list[str] = []

    def head(self, kind: str, base: str, at: str) -> str:
        """Expression of the value of `kind` whose head word(s) start at `at`, inside an encoding at `base`."""
        if kind in ("string", "bytes") and base == "0" and at.isdigit():
            return _word_expr(kind, int(at))  # top-level: the offset word is relative to the data's start
        if _is_dynamic(kind):
            if kind == "string":
                return f"_str_at(d, {base}, {at})"
            if kind == "bytes":
                return f"_bytes_at(d, {base}, {at})"
            return f"{self.helper(kind)}(d, _tail(d, {base}, {at}))"
        if _ELEMENTARY.match(kind):
            return self.word(kind, at)
        return f"{self.helper(kind)}(d, {at})"

    @staticmethod
    def word(kind: str, at: str) -> str:
        if at.isdigit():
            return _word_expr(kind, int(at))
        word = f"d[{at}:{at} + {WORD}]"
        if kind.startswith("uint"):
            return f"_ib({word}, 'big')"
        if kind.startswith("int"):
            return f"_ib({word}, 'big', signed=True)"
        if kind == "bool":
            return f"(_ib({word}, 'big') != 0)"
        if kind == "address":
            return f"_addr({word})"
        match = _ELEMENTARY.match(kind)
        assert match is not None and match.group(3)
        return f"'0x' + d[{at}:{at} + {int(match.group(3))}].hex()"

    def helper(self, kind: str) -> str:
        """The name of a generated function `(d, p) -> value` decoding `kind` encoded at `p`."""
        if kind in self.helpers:
            return self.helpers[kind]
        name = f"_h{len(self.helpers)}"
        self.helpers[kind] = name
        array = _ARRAY.match(kind)
        if array is not None:
            inner, size = array.group(1), _head_size(array.group(1))
            if array.group(2) == "":
                body = (
                    f"    n = _length(d, p, {size})\n"
                    f"    q = p + {WORD}\n"
                    f"    return [{self.head(inner, 'q', f'q + {size} * i')} for i in range(n)]\n"
                )
            else:
                count = int(array.group(2))
                body = f"    return [{self.head(inner, 'p', f'p + {size} * i')} for i in range({count})]\n"
        else:
            parts, at, items = _split_tuple(kind[1:-1]), 0, []
            for part in parts:
                items.append(self.head(part, "p", _plus("p", at)))
                at += _head_size(part)
            body = f"    _need(d, p + {at})\n    return [{', '.join(items)}]\n"
        self.sources.append(f"def {name}(d, p):  # {kind}\n{body}")
        return name

    def fields(self, types: Sequence[str]) -> tuple[list[str], int]:
        """Expressions of the top-level values of `types` (the event data) and the head size in bytes."""
        exprs, at = [], 0
        for kind in types:
            exprs.append(self.head(kind, "0", str(at)))
            at += _head_size(kind)
        return exprs, at

    def source(self, main: str) -> str:
        return "\n".join([*self.sources, main])


def _fast_decoder(types: Sequence[str]) -> Callable[[bytes], tuple[Any, ...]] | None:
    """A decoder generated for `types`, or None for a type the generator does not know (use eth_abi).

    Generated source (not closures) because one tuple expression per event is ~4x faster than calling a
    function per field; the source is built only from ABI type names matched by `_ELEMENTARY`, with tuple
    and array spellings around them.
    """
    if not all(_is_known(t) for t in types):
        return None
    gen = _Generator()
    fields, head = gen.fields(types)
    main = (
        "def decode(d):\n"
        f"    if len(d) < {head}:\n"
        f"        raise DecodingError('data holds ' + str(len(d)) + ' bytes, the head alone needs {head}')\n"
        f"    return ({', '.join(fields)}{',' if len(types) == 1 else ''})\n"
    )
    decoder: Callable[[bytes], tuple[Any, ...]] = _compile(gen.source(main), f"<decoder {','.join(types)}>")
    return decoder


def _tail(data: bytes, base: int, head: int) -> int:
    """The absolute position of a dynamic value whose offset (relative to `base`) sits at `head`."""
    if head + WORD > len(data):
        raise DecodingError(f"offset word at byte {head} runs past the data ({len(data)} bytes)")
    position = base + int.from_bytes(data[head : head + WORD], "big")
    if position + WORD > len(data):
        raise DecodingError(f"dynamic value at byte {position} runs past the data ({len(data)} bytes)")
    return position


def _length(data: bytes, position: int, element_size: int) -> int:
    """The length word of a dynamic array at `position`, checked against the data that must hold its heads."""
    count = int.from_bytes(data[position : position + WORD], "big")
    if position + WORD + count * element_size > len(data):
        raise DecodingError(f"array of {count} items at byte {position} runs past the data ({len(data)} bytes)")
    return count


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise DecodingError(f"tuple ends at byte {end}, past the data ({len(data)} bytes)")


def _str_at(data: bytes, base: int, head: int) -> str:
    position = _tail(data, base, head)
    return _read_dynamic(data, 0, position).decode("utf-8")


def _bytes_at(data: bytes, base: int, head: int) -> str:
    return _hex(_read_dynamic(data, 0, _tail(data, base, head)))


def _compile(source: str, filename: str) -> Any:
    scope: dict[str, Any] = {
        "_ib": int.from_bytes,
        "_fromhex": bytes.fromhex,
        "_addr": _read_address,
        "_str": _read_string,
        "_bytes": _read_bytes,
        "_str_at": _str_at,
        "_bytes_at": _bytes_at,
        "_tail": _tail,
        "_length": _length,
        "_need": _need,
        "_topic_addr": _topic_address,
        "DecodingError": DecodingError,
    }
    exec(compile(source, filename, "exec"), scope)  # noqa: S102 - source built from ABI type and argument names
    return scope["decode"]


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


def _args_decoder(
    names: Sequence[str], indexed: Sequence[tuple[str, str]], fields: Sequence[tuple[str, str]]
) -> Callable[[Sequence[str], str], dict[str, Any]] | None:
    """A decoder generated from topics and 0x-hex data straight to the arguments dict (all in ABI order).

    Only for events whose indexed arguments are integers, addresses or 32-byte values and whose data types the
    generator knows.
    """
    if not all(_is_known(t) for _, t in fields):
        return None
    if not all(re.match(r"^uint\d*$|^bytes32$|^address$", t) for _, t in indexed):
        return None
    if not all(n.isidentifier() for n in names) or len(set(names)) != len(names):
        return None
    gen = _Generator()
    exprs, head = gen.fields([t for _, t in fields])
    topic_of = {name: i + 1 for i, (name, _) in enumerate(indexed)}
    field_of = {name: i for i, (name, _) in enumerate(fields)}
    items = []
    for name in names:
        if name in topic_of:
            t = dict(indexed)[name]
            i = topic_of[name]
            if t.startswith("uint"):
                expr = f"int(t[{i}], 16)"
            elif t == "address":
                expr = f"_topic_addr(t[{i}])"
            else:
                expr = f"t[{i}].lower()"
        else:
            expr = exprs[field_of[name]]
        items.append(f"{name!r}: {expr}")
    main = (
        "def decode(t, h):\n"
        "    d = _fromhex(h[2:])\n"
        f"    if len(d) < {head}:\n"
        f"        raise DecodingError('data holds ' + str(len(d)) + ' bytes, the head alone needs {head}')\n"
        f"    return {{{', '.join(items)}}}\n"
    )
    decoder: Callable[[Sequence[str], str], dict[str, Any]] = _compile(gen.source(main), f"<args {','.join(names)}>")
    return decoder


def _eth_abi_decoder(types: Sequence[str]) -> Callable[[bytes], tuple[Any, ...]]:
    def decode(data: bytes) -> tuple[Any, ...]:
        values = default_codec.decode(list(types), data)
        return tuple(_normalise(t, v) for t, v in zip(types, values, strict=True))

    return decode


def _topic_decoder(kind: str) -> Callable[[str], Any]:
    """Decode one indexed argument from its topic (dynamic types stay as their keccak hash)."""
    if kind.startswith("uint"):
        return lambda topic: int(topic, 16)
    if kind.startswith("int") and _ELEMENTARY.match(kind):
        return lambda topic: int.from_bytes(bytes.fromhex(topic[2:]), "big", signed=True)
    if kind == "bool":
        return lambda topic: int(topic, 16) != 0
    if kind == "address":
        return lambda topic: to_checksum_address("0x" + topic[-40:])
    match = _ELEMENTARY.match(kind)
    if match and match.group(3):
        size = int(match.group(3))
        return lambda topic: topic[: 2 + 2 * size].lower()
    return lambda topic: topic.lower()


# ---------------------------------------------------------------- the decoder


@dataclass(frozen=True)
class EventSpec:
    """One event of one deployed contract: its topic0, argument names and types, and its data decoder."""

    key: str  # "Contract:Event"
    contract: str
    name: str
    signature: str
    topic0: str  # 0x-hex, lower case
    indexed: tuple[tuple[str, str], ...]  # (name, type), in topic order
    fields: tuple[tuple[str, str], ...]  # (name, type) of the data part, in order
    decode_data: Callable[[bytes], tuple[Any, ...]]
    topic_decoders: tuple[Callable[[str], Any], ...]
    fast: bool  # whether `decode_data` is a generated decoder
    order: tuple[str, ...] = ()  # argument names in ABI order
    decode_all: Callable[[Sequence[str], str], dict[str, Any]] | None = None  # generated topics+data decoder

    def decode_args(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """The arguments by name from a log's topics and 0x-hex data."""
        if len(topics) != 1 + len(self.indexed):
            raise LogDecodeError(f"{self.key}: {len(topics)} topics, expected {1 + len(self.indexed)}")
        try:
            if self.decode_all is not None:
                return self.decode_all(topics, data)
            return self.decode_args_by_parts(topics, data)
        except (DecodingError, ValueError, UnicodeDecodeError) as exc:
            raise LogDecodeError(f"{self.key}: {exc}") from exc

    def decode_args_by_parts(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """The same as `decode_args` through the per-topic decoders and `decode_data` (the reference path)."""
        values = self.decode_data(bytes.fromhex(data[2:]))
        args = {
            name: dec(topic)
            for (name, _), dec, topic in zip(self.indexed, self.topic_decoders, topics[1:], strict=True)
        }
        for (name, _), value in zip(self.fields, values, strict=True):
            args[name] = value
        return {p: args[p] for p in self.order}


class EventDecoder:
    """Decodes eth_getLogs entries of every contract in a deployment.

    Invariant: a log is decoded only if it comes from a deployment address and its topic0 is an event of
    that contract's ABI; other logs give None (anonymous events are not supported and never emitted).
    """

    def __init__(self, deployment: Deployment, contracts: Sequence[str] | None = None) -> None:
        names = list(contracts) if contracts is not None else sorted(deployment["contracts"])
        self.addresses: list[str] = []
        self.specs: dict[tuple[str, str], EventSpec] = {}
        self.by_key: dict[str, EventSpec] = {}
        for contract_name in names:
            info = deployment["contracts"][contract_name]
            address = info["address"].lower()
            self.addresses.append(to_checksum_address(address))
            for item in info["abi"]:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                spec = self._spec(contract_name, item)
                self.specs[(address, spec.topic0)] = spec
                self.by_key[spec.key] = spec

    @staticmethod
    def _spec(contract_name: str, item: Mapping[str, Any]) -> EventSpec:
        signature = event_signature(item)
        indexed = tuple((p["name"], abi_type(p)) for p in item["inputs"] if p.get("indexed"))
        fields = tuple((p["name"], abi_type(p)) for p in item["inputs"] if not p.get("indexed"))
        types = [t for _, t in fields]
        fast = _fast_decoder(types)
        return EventSpec(
            key=f"{contract_name}:{item['name']}",
            contract=contract_name,
            name=item["name"],
            signature=signature,
            topic0=_hex(keccak(text=signature)),
            indexed=indexed,
            fields=fields,
            decode_data=fast or _eth_abi_decoder(types),
            topic_decoders=tuple(_topic_decoder(t) for _, t in indexed),
            fast=fast is not None,
            order=tuple(p["name"] for p in item["inputs"]),
            decode_all=_args_decoder([p["name"] for p in item["inputs"]], indexed, fields),
        )

    def decode(self, log: RawLog) -> DecodedLog | None:
        """Decode one eth_getLogs entry, or None if it is not an event of the deployment."""
        topics: list[str] = log["topics"]
        if not topics:
            return None
        spec = self.specs.get((log["address"].lower(), topics[0].lower()))
        if spec is None:
            return None
        return DecodedLog(
            spec.key,
            spec.decode_args(topics, log["data"]),
            int(log["blockNumber"], 16),
            log["blockHash"],
            log["transactionHash"],
            int(log["logIndex"], 16),
        )
