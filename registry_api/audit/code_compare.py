"""Byte-level comparison of deployed and rebuilt bytecode, as Sourcify matches it.

Runtime code ends with solc's CBOR metadata (`{"ipfs": <multihash of the metadata JSON>, "solc": <version>}`)
followed by its length in two big-endian bytes. The metadata JSON holds the keccak of every source, so equal
trailers mean the exact sources (a full match); equal code before the trailer with different trailers means the
same executable from sources that differ in what does not reach the bytecode: comments, names, whitespace (a
partial match). Immutables are written by the constructor into the runtime code at the byte ranges solc reports
(`immutableReferences`); they are zero in the compiled object, so the deployed code is zeroed there before
comparing. Creation code ends with the runtime code, its trailer included, so the same trailer is masked there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import base58
import cbor2

from registry_api.schemas.audit_code import MetadataTrailer

__all__ = [
    "Comparison",
    "compare_creation",
    "compare_runtime",
    "describe_trailer",
    "first_difference",
    "mask",
    "split_metadata",
]

LENGTH_BYTES = 2  # the trailer's length, big-endian, at the very end of the code


@dataclass(frozen=True)
class Comparison:
    status: Literal["full", "partial", "mismatch"]
    first_difference: int | None = None  # byte offset


def split_metadata(code: bytes) -> tuple[bytes, bytes]:
    """(executable, trailer); the trailer (CBOR map and its two length bytes) is empty if the end is not one."""
    if len(code) < LENGTH_BYTES:
        return code, b""
    length = int.from_bytes(code[-LENGTH_BYTES:], "big")
    if length == 0 or length + LENGTH_BYTES > len(code):
        return code, b""
    try:
        decoded = cbor2.loads(code[-LENGTH_BYTES - length : -LENGTH_BYTES])
    except (cbor2.CBORDecodeError, ValueError, TypeError):  # arbitrary bytes where a trailer should be
        return code, b""
    if not isinstance(decoded, dict):
        return code, b""
    return code[: -LENGTH_BYTES - length], code[-LENGTH_BYTES - length :]


def describe_trailer(trailer: bytes) -> MetadataTrailer | None:
    """The trailer's IPFS CID and solc version, for the report; None if there is no trailer."""
    if not trailer:
        return None
    decoded = cbor2.loads(trailer[:-LENGTH_BYTES])
    ipfs = decoded.get("ipfs")
    solc = decoded.get("solc")
    return MetadataTrailer(
        length=len(trailer),
        ipfs=base58.b58encode(ipfs).decode() if isinstance(ipfs, bytes) else None,
        solc=".".join(str(b) for b in solc) if isinstance(solc, bytes) else (solc if isinstance(solc, str) else None),
        raw="0x" + trailer.hex(),
    )


def mask(code: bytes, ranges: Iterable[tuple[int, int]]) -> bytes:
    """`code` with every (start, length) range zeroed (clipped to the code)."""
    masked = bytearray(code)
    for start, length in ranges:
        end = min(start + length, len(masked))
        if start < end:
            masked[start:end] = bytes(end - start)
    return bytes(masked)


def first_difference(a: bytes, b: bytes) -> int | None:
    """The first offset where `a` and `b` differ (the shorter length if one is a prefix); None if equal."""
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return offset
    return None if len(a) == len(b) else min(len(a), len(b))


def compare_runtime(deployed: bytes, compiled: bytes, immutable_ranges: Iterable[tuple[int, int]]) -> Comparison:
    """Deployed runtime code vs the compiled object, immutables masked: full, partial or mismatch (with offset)."""
    masked = mask(deployed, immutable_ranges)
    if masked == compiled:
        return Comparison("full")
    deployed_code, _ = split_metadata(masked)
    compiled_code, _ = split_metadata(compiled)
    if deployed_code == compiled_code:
        return Comparison("partial")
    return Comparison("mismatch", first_difference(masked, compiled))


def compare_creation(tx_input: bytes, creation: bytes, runtime_trailer: bytes) -> Comparison:
    """The creation transaction's input vs the compiled creation bytecode (the arguments after it are not compared).

    The runtime's trailer sits inside the creation code; masking it there in both gives the partial match.
    """
    head = tx_input[: len(creation)]
    if head == creation:
        return Comparison("full")
    at = creation.rfind(runtime_trailer) if runtime_trailer else -1
    if at >= 0 and len(head) == len(creation):
        window = [(at, len(runtime_trailer))]
        if mask(head, window) == mask(creation, window):
            return Comparison("partial")
    return Comparison("mismatch", first_difference(head, creation))
