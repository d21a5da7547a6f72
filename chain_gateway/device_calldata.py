"""Calldata of `DeviceRegistry.registerDevices(DeviceInput[])`, encoded by hand: the bulk path's hot spot.

eth_abi validates and encodes each of a batch's 250 structs field by field (~0.1 ms per device here, and the
import paid it twice); this writes the same bytes with integer-to-bytes conversions and one join (a property test
compares it with eth_abi on random batches). Layout (Solidity ABI): selector, offset of the array (0x20), its
length, one offset per struct (relative to the first offset), then each struct: 8 head words (offset of `code`,
type, status, district, lat, lon, builtAt, offset of `attributes`) followed by the two strings, each as its byte
length and its bytes padded to 32.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import function_signature_to_4byte_selector

from chain_gateway.errors import InvalidCall

__all__ = ["DEVICE_INPUT_TYPE", "encode_register_devices", "register_devices_gas"]

DEVICE_INPUT_TYPE = "(string,uint16,uint8,uint32,int32,int32,uint40,string)"
SELECTOR = function_signature_to_4byte_selector(f"registerDevices({DEVICE_INPUT_TYPE}[])")
WORD = 32
HEAD_WORDS = 8  # words of a struct's head
_INT32 = (-(2**31), 2**31 - 1)
_UNSIGNED = {1: 2**16 - 1, 2: 2**8 - 1, 3: 2**32 - 1, 6: 2**40 - 1}  # field position -> max
_MOD = 2**256

# Gas bound of a registerDevices call (measured by scripts/bench/gas_bench.py: ~66.5k per device in batches of
# 100-500 with ~90-byte attributes, of which 44.2k are the two new slots). Each term is an upper bound of its part.
TX_GAS = 21_000
BATCH_GAS = 30_000  # the caller's org and role, the array's decoding
DEVICE_GAS = 62_000  # two new slots, code rule and checks, log base and 3 topics, hashing, the loop
BYTE_GAS = 16 + 8 + 2  # a calldata byte costs at most 16, its string is logged again at 8 a byte; hashing, copies
MEMORY_COPIES = 3  # memory a batch grows to, in calldata sizes: strings copied to hash, events encoded

DeviceInput = Sequence[object]  # (code, typeId, status, district, lat, lon, builtAt, attributes)


def _word(value: int) -> bytes:
    return (value % _MOD).to_bytes(WORD, "big")


def _string(text: object, index: int, name: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidCall(f"devices[{index}].{name}: expected a string, got {type(text).__name__}")
    raw = text.encode()
    return _word(len(raw)) + raw + b"\0" * (-len(raw) % WORD)


_RANGES = [_INT32 if position in (4, 5) else (0, _UNSIGNED[position]) for position in range(1, 7)]


def _integers(device: DeviceInput, index: int) -> bytes:
    """The six integer head words (fields 1-6), each checked against its type's range."""
    words = []
    for position, (low, high) in enumerate(_RANGES, start=1):
        value = device[position]
        if type(value) is not int:  # bool is not an integer here, nor any int subclass
            raise InvalidCall(f"devices[{index}][{position}]: expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise InvalidCall(f"devices[{index}][{position}]: {value} is out of range {low}..{high}")
        words.append((value % _MOD).to_bytes(WORD, "big"))
    return b"".join(words)


_CODE_OFFSET = (HEAD_WORDS * WORD).to_bytes(WORD, "big")


def _struct(device: DeviceInput, index: int) -> bytes:
    if len(device) != HEAD_WORDS:
        raise InvalidCall(f"devices[{index}]: expected {HEAD_WORDS} fields, got {len(device)}")
    code = _string(device[0], index, "code")
    attributes = _string(device[7], index, "attributes")
    head = _CODE_OFFSET + _integers(device, index) + _word(HEAD_WORDS * WORD + len(code))
    return head + code + attributes


def encode_register_devices(devices: Sequence[DeviceInput]) -> bytes:
    """The calldata of `registerDevices(devices)`, byte for byte what eth_abi gives; InvalidCall on a bad field."""
    structs = [_struct(device, i) for i, device in enumerate(devices)]
    offsets = []
    at = len(structs) * WORD
    for struct in structs:
        offsets.append(_word(at))
        at += len(struct)
    return SELECTOR + _word(WORD) + _word(len(structs)) + b"".join(offsets) + b"".join(structs)


def register_devices_gas(data: bytes) -> int | None:
    """An upper bound of the gas `registerDevices` calldata needs (None for other calldata), from its size alone.

    It spares the node the second execution of every batch that an estimate costs (eth_estimateGas or
    eth_createAccessList run the whole batch); it stays below the estimate x GAS_MARGIN the gateway would sign
    with otherwise (a test holds it between the node's estimate and that, for batches of typical and of 8 KiB
    attributes). Memory is priced as Solidity grows it: 3 gas a word plus words^2 / 512.
    """
    if data[:4] != SELECTOR or len(data) < 4 + 2 * WORD:
        return None
    count = int.from_bytes(data[4 + WORD : 4 + 2 * WORD], "big")
    words = MEMORY_COPIES * -(-len(data) // WORD)
    return TX_GAS + BATCH_GAS + count * DEVICE_GAS + BYTE_GAS * len(data) + 3 * words + words * words // 512
