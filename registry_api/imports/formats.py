"""Import files row by row: which format a file is, its CSV header, and a generator of raw records.

Nothing here holds more than one record in memory: `iter_records` reads the file line by line from a byte
offset and yields each record with the position just after it (byte offset, lines and rows read), which is
where a resumed import seeks to.

Formats: CSV (RFC 4180: comma, double quotes, a header row naming the columns) and NDJSON (one JSON object
per line), UTF-8 with or without a byte-order mark. Blank lines are skipped and not counted as rows.
CSV columns: code, type, district, lat, lon, built_at (required), status, owner_org, and either `attributes`
(a JSON object as text) or any number of `attr.<key>` columns (string values). NDJSON objects are devices as
`POST /v1/devices` takes them (`location: {lat, lon}` or flat `lat`/`lon`), optionally with `owner_org`.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from registry_api.json_depth import loads_bounded

__all__ = [
    "ATTRIBUTE_PREFIX",
    "CSV",
    "FORMATS",
    "MAX_RECORD_BYTES",
    "NDJSON",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "FileLayout",
    "FileProblem",
    "Position",
    "RawRecord",
    "RowProblem",
    "format_from",
    "inspect_file",
    "iter_records",
]

CSV = "csv"
NDJSON = "ndjson"
FORMATS = (CSV, NDJSON)
REQUIRED_COLUMNS = ("code", "type", "district", "lat", "lon", "built_at")
OPTIONAL_COLUMNS = ("status", "attributes", "owner_org")
ATTRIBUTE_PREFIX = "attr."
MAX_RECORD_BYTES = 65_536  # per line (and per CSV field): attributes take at most 8 KiB, a row far less
SNIFF_BYTES = 65_536  # read to tell text from binary and CSV from NDJSON
BOM = codecs.BOM_UTF8

MALFORMED_ROW = "MALFORMED_ROW"
NOT_UTF8 = "NOT_UTF8"

_CSV_TYPES = frozenset(
    {"text/csv", "application/csv", "text/x-csv", "application/x-csv", "text/comma-separated-values",
     "application/vnd.ms-excel"}  # what browsers on Windows send for a .csv file
)  # fmt: skip
_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
     "application/jsonlines", "application/json-lines"}
)  # fmt: skip
_NEUTRAL_TYPES = frozenset({"", "text/plain", "application/octet-stream", "application/json"})  # sniffed
_SUFFIXES = {".csv": CSV, ".ndjson": NDJSON, ".jsonl": NDJSON}

csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))


class FileProblem(Exception):
    """The file as a whole is refused: the upload answers `status` with `code`, `message` and `field`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class RowProblem(NamedTuple):
    """Why a row is rejected: a stable reason code, a message and the column at fault (None: the whole row)."""

    reason: str
    message: str
    column: str | None = None


class Position(NamedTuple):
    """How far a file is read: bytes, physical lines and data rows (blank lines are not rows)."""

    offset: int
    lines: int
    rows: int


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One data row as read: its number, the line it starts on, and its values or why they cannot be read."""

    row: int
    line: int
    after: Position
    values: dict[str, Any] | None  # CSV: column -> text; NDJSON: the object
    problem: RowProblem | None = None


@dataclass(frozen=True)
class FileLayout:
    """What the runner needs to read a file: its format, CSV columns, and where the first data row starts."""

    format: str
    columns: tuple[str, ...] | None
    start: Position


def format_from(content_type: str | None, file_name: str | None) -> str | None:
    """The format a media type or else a file name's extension names; None if neither does (then sniff).

    Raises `FileProblem` (415) for a media type that is neither CSV nor NDJSON nor plain text or bytes.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _CSV_TYPES:
        return CSV
    if media in _NDJSON_TYPES:
        return NDJSON
    if media not in _NEUTRAL_TYPES:
        raise FileProblem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"{media} is not an import format: send CSV (text/csv) or NDJSON (application/x-ndjson)",
            "Content-Type",
        )
    suffix = Path(file_name or "").suffix.lower()
    return _SUFFIXES.get(suffix)


def inspect_file(path: Path, declared: str | None) -> FileLayout:
    """Check that an uploaded file is UTF-8 CSV with a usable header or NDJSON, and where its data starts.

    `declared` is the format from `format_from` (None: told by the first character, `{` for NDJSON).
    Raises `FileProblem` (422) with EMPTY_FILE, UNSUPPORTED_FORMAT, NOT_UTF8, NO_HEADER, MISSING_COLUMN,
    UNKNOWN_COLUMN, DUPLICATE_COLUMN or CONFLICTING_COLUMNS.
    """
    with path.open("rb") as file:
        sample = file.read(SNIFF_BYTES)
    begin = len(BOM) if sample.startswith(BOM) else 0
    if not sample[begin:].strip():
        raise FileProblem(422, "EMPTY_FILE", "the file holds no rows")
    if b"\x00" in sample:
        raise FileProblem(422, "UNSUPPORTED_FORMAT", "this is a binary file, not CSV or NDJSON text")
    text = _sample_text(sample[begin:])
    first = text.lstrip()[:1]
    fmt = declared or (NDJSON if first == "{" else CSV)
    if first == "[":
        raise FileProblem(422, "UNSUPPORTED_FORMAT", "a JSON array is not NDJSON: put one device object per line")
    if fmt == NDJSON:
        line = text.lstrip().split("\n", 1)[0]
        try:
            value = loads_bounded(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise FileProblem(422, "UNSUPPORTED_FORMAT", "NDJSON needs a JSON object on its first line")
        return FileLayout(NDJSON, None, Position(begin, 0, 0))
    return _csv_layout(path, begin)


def _sample_text(sample: bytes) -> str:
    """The sample decoded; a file whose first line or more than a tenth of its sampled lines are not UTF-8 is
    refused whole (a GBK export, say), a few bad lines are left to be rejected as rows."""
    lines = sample.split(b"\n")
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut mid-character
    bad = 0
    for number, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad += 1
            if number == 0 or bad > max(1, len(lines) // 10):
                raise FileProblem(
                    422, NOT_UTF8, f"the file is not UTF-8 (line {number + 1}); save it as UTF-8 (CSV UTF-8)"
                ) from exc
    return sample.decode("utf-8", "replace")


def _csv_layout(path: Path, begin: int) -> FileLayout:
    with path.open("rb") as file:
        file.seek(begin)
        lines = _Lines(file, Position(begin, 0, 0))
        reader = csv.reader(lines, strict=True)
        header: list[str] | None = None
        try:
            for fields in reader:
                if any(f.strip() for f in fields):
                    header = fields
                    break
        except (csv.Error, _LineTooLong) as exc:
            raise FileProblem(422, "NO_HEADER", f"the first line is not a CSV header: {exc}") from exc
        if header is None or lines.bad_utf8:
            raise FileProblem(422, "NO_HEADER", "the first line is not a CSV header")
        columns = tuple(_column_name(name) for name in header)
        _check_columns(columns)
        return FileLayout(CSV, columns, Position(lines.offset, lines.count, 0))


def _column_name(name: str) -> str:
    name = name.strip()
    if name.lower().startswith(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_PREFIX + name[len(ATTRIBUTE_PREFIX) :].strip()
    return name.lower()


def _check_columns(columns: tuple[str, ...]) -> None:
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    if not known.intersection(columns):
        raise FileProblem(
            422,
            "NO_HEADER",
            f"the first line is not a header: it names none of the columns {', '.join(REQUIRED_COLUMNS)}",
        )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise FileProblem(422, "DUPLICATE_COLUMN", f"column {name!r} appears twice in the header", name)
        seen.add(name)
        if name not in known and not (name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX)):
            raise FileProblem(
                422,
                "UNKNOWN_COLUMN",
                f"unknown column {name!r}; columns are {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)} and "
                f"attr.<key> for attributes (e.g. attr.{name or 'vendor'})",
                name or None,
            )
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        raise FileProblem(422, "MISSING_COLUMN", f"the header lacks the column(s) {', '.join(missing)}", missing[0])
    if "attributes" in seen and any(name.startswith(ATTRIBUTE_PREFIX) for name in seen):
        raise FileProblem(
            422, "CONFLICTING_COLUMNS", "give attributes either as one JSON column or as attr.* columns", "attributes"
        )


class _LineTooLong(Exception):
    def __str__(self) -> str:
        return f"a line longer than {MAX_RECORD_BYTES} bytes"


class _Lines:
    """The decoded lines of a binary file from a position, counting bytes and lines as they are taken.

    A line that is not UTF-8 is decoded with surrogate escapes and flags `bad_utf8` (reset per record by the
    caller); a line longer than MAX_RECORD_BYTES is skipped to its end and raises `_LineTooLong`.
    """

    def __init__(self, file: IO[bytes], start: Position) -> None:
        self.file = file
        self.offset = start.offset
        self.count = start.lines
        self.bad_utf8 = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.file.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.count += 1
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while True:  # skip to the end of the line without holding it
                more = self.file.readline(MAX_RECORD_BYTES)
                self.offset += len(more)
                if not more or more.endswith(b"\n"):
                    break
            raise _LineTooLong
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_utf8 = True
            return raw.decode("utf-8", "surrogateescape")


def iter_records(path: Path, layout: FileLayout, start: Position) -> Iterator[RawRecord]:
    """The data records of the file from `start` on (a generator: one record in memory at a time)."""
    with path.open("rb") as file:
        file.seek(start.offset)
        lines = _Lines(file, start)
        if layout.format == CSV:
            yield from _csv_records(lines, layout.columns or (), start.rows)
        else:
            yield from _ndjson_records(lines, start.rows)


def _csv_records(lines: _Lines, columns: tuple[str, ...], rows: int) -> Iterator[RawRecord]:
    reader = csv.reader(lines, strict=True)  # it pulls a line only when a record needs one: no read-ahead
    while True:
        line = lines.count + 1
        lines.bad_utf8 = False
        problem: RowProblem | None = None
        fields: list[str] = []
        try:
            fields = next(reader)
        except StopIteration:
            return
        except (csv.Error, _LineTooLong) as exc:  # the reader starts afresh at its next record
            problem = RowProblem(MALFORMED_ROW, f"not a valid CSV row: {exc}")
        if problem is None and not any(f.strip() for f in fields):
            continue
        rows += 1
        after = Position(lines.offset, lines.count, rows)
        if problem is None and len(fields) != len(columns):
            problem = RowProblem(MALFORMED_ROW, f"the row has {len(fields)} fields; the header has {len(columns)}")
        if problem is None and lines.bad_utf8:
            column = next((c for c, f in zip(columns, fields, strict=True) if _has_escapes(f)), None)
            problem = RowProblem(NOT_UTF8, "the row is not valid UTF-8", column)
        if problem is not None:
            yield RawRecord(rows, line, after, None, problem)
        else:
            yield RawRecord(rows, line, after, dict(zip(columns, fields, strict=True)))


def _has_escapes(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _ndjson_records(lines: _Lines, rows: int) -> Iterator[RawRecord]:
    while True:
        line = lines.count + 1
        lines.bad_utf8 = False
        problem: RowProblem | None = None
        text = ""
        try:
            text = next(lines)
        except StopIteration:
            return
        except _LineTooLong as exc:
            problem = RowProblem(MALFORMED_ROW, f"not a valid NDJSON row: {exc}")
        if problem is None and not text.strip():
            continue
        rows += 1
        after = Position(lines.offset, lines.count, rows)
        value: Any = None
        if problem is None and lines.bad_utf8:
            problem = RowProblem(NOT_UTF8, "the row is not valid UTF-8")
        if problem is None:
            try:
                value = loads_bounded(text, parse_constant=_no_constant)
            except ValueError as exc:
                problem = RowProblem(MALFORMED_ROW, f"not valid JSON: {exc}")
        if problem is None and not isinstance(value, dict):
            problem = RowProblem(MALFORMED_ROW, "not a JSON object")
        yield RawRecord(rows, line, after, None if problem else value, problem)
