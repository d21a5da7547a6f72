"""Wire encodings shared by the API and the CLI: canonical JSON, micro-degrees, unix times, code-rule regexes.

The chain stores coordinates as micro-degrees (int32) and times as unix seconds; attributes travel as
canonical JSON (sorted keys, no spaces, UTF-8 kept) whose keccak256 is the on-chain `attributesHash`, so the
same bytes must come out of `canonical_json` here, in the indexer and in an auditor's script.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from typing import Any

__all__ = [
    "CHARSET_DIGITS",
    "CHARSET_HYPHEN",
    "CHARSET_LOWER",
    "CHARSET_UPPER",
    "MICRO_DEGREES",
    "canonical_json",
    "charset_names",
    "code_example",
    "code_pattern",
    "code_rule_violation",
    "from_micro_degrees",
    "from_unix",
    "to_micro_degrees",
    "to_unix",
]

MICRO_DEGREES = 1_000_000  # micro-degrees per degree

# Bits of a code rule's charset (DeviceRegistry.CHARSET_*): characters allowed after the prefix.
CHARSET_DIGITS = 1
CHARSET_UPPER = 2
CHARSET_LOWER = 4
CHARSET_HYPHEN = 8
_CHARSETS: tuple[tuple[int, str, str, str], ...] = (  # bit, name, regex class part, example characters
    (CHARSET_DIGITS, "digits", "0-9", "0123456789"),
    (CHARSET_UPPER, "upper", "A-Z", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    (CHARSET_LOWER, "lower", "a-z", "abcdefghijklmnopqrstuvwxyz"),
    (CHARSET_HYPHEN, "hyphen", r"\-", "-"),
)
_EXAMPLE_DISTRICT = "110105"  # examples are "<prefix><district code (Chaoyang)><serial>", the demo convention


# Built once: json.dumps with options builds an encoder per call, about half the time of a small object.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value`: sorted keys, separators (",", ":"), non-ASCII kept as is."""
    return _CANONICAL.encode(value)


def to_micro_degrees(degrees: float) -> int:
    """Degrees to integer micro-degrees (rounded to the nearest, about 0.1 m)."""
    return round(degrees * MICRO_DEGREES)


def from_micro_degrees(value: int) -> float:
    """Integer micro-degrees back to degrees (exact to 6 decimals)."""
    return round(value / MICRO_DEGREES, 6)


def to_unix(value: date | datetime) -> int:
    """A date (midnight UTC) or datetime (naive means UTC) as unix seconds."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def from_unix(seconds: int) -> str:
    """Unix seconds as an ISO 8601 UTC datetime, e.g. 2024-05-01T00:00:00Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def charset_names(charset: int) -> list[str]:
    """The names of the character classes in a charset bit set, e.g. ["digits", "upper"]."""
    return [name for bit, name, _, _ in _CHARSETS if charset & bit]


def code_pattern(prefix: str, length: int, charset: int) -> str:
    """A regular expression (valid in Python and JavaScript) that matches exactly the codes a rule admits."""
    classes = "".join(part for bit, _, part, _ in _CHARSETS if charset & bit)
    rest = max(0, length - len(prefix.encode()))
    body = f"[{classes}]{{{rest}}}" if classes and rest else ""
    return f"^{re.escape(prefix)}{body}$"


def code_example(prefix: str, length: int, charset: int) -> str:
    """A code that the rule admits, e.g. BJ-CAMR-110105000001."""
    rest = max(0, length - len(prefix.encode()))
    if charset & CHARSET_DIGITS:
        filler = _EXAMPLE_DISTRICT + "1".rjust(rest - len(_EXAMPLE_DISTRICT), "0") if rest > 6 else "1".rjust(rest, "0")
        filler = filler[:rest]
    else:
        chars = "".join(example for bit, _, _, example in _CHARSETS if charset & bit and bit != CHARSET_HYPHEN)
        chars = chars or "-"
        filler = "".join(chars[i % len(chars)] for i in range(rest))
    return prefix + filler


def code_rule_violation(code: str, prefix: str, length: int, charset: int) -> str | None:
    """Why `code` breaks the rule (the contract's checks, in its order), or None if it is valid."""
    raw = code.encode()
    if len(raw) != length:
        return f"a code of this type has {length} characters, this one has {len(raw)}"
    if not raw.startswith(prefix.encode()):
        return f"a code of this type starts with {prefix!r}"
    allowed = "".join(example for bit, _, _, example in _CHARSETS if charset & bit)
    for position in range(len(prefix.encode()), len(raw)):
        char = chr(raw[position]) if raw[position] < 128 else None
        if char is None or char not in allowed:
            shown = code[position] if position < len(code) and char else "non-ASCII"
            return (
                f"character {position} ({shown!r}) is not allowed after the prefix; "
                f"allowed: {', '.join(charset_names(charset))}"
            )
    return None
