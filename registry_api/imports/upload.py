"""Receiving an import: the request body, raw or multipart/form-data, streamed to a file as it arrives.

The body is never held in memory: each chunk the server hands over is hashed and written (multipart parts
through python-multipart's streaming parser), and the file is fsynced before the import is recorded, so an
import answered with 202 survives a crash. A body over `max_bytes` is refused with 413 as soon as it passes
the limit (or at once from its Content-Length).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from registry_api.imports.formats import FileProblem

__all__ = ["Upload", "receive_upload"]

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the file


@dataclass(frozen=True)
class Upload:
    """The received file: where it is, its name and media type as the client gave them, size and sha256."""

    path: Path
    file_name: str
    content_type: str
    size: int
    sha256: str


class _Sink:
    """Appends to the file, hashing, and refuses to grow past `max_bytes` (413)."""

    def __init__(self, file: IO[bytes], max_bytes: int) -> None:
        self.file = file
        self.max_bytes = max_bytes
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise FileProblem(413, "IMPORT_TOO_LARGE", f"an import file takes at most {self.max_bytes} bytes")
        self.hash.update(data)
        self.file.write(data)


class _FilePart:
    """python-multipart callbacks that send the first file part (a filename, or the field `file`) to a sink."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.found = False
        self.file_name = ""
        self.content_type = ""
        self._inside = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        is_file = b"filename" in options or options.get(b"name") == b"file"
        if is_file and not self.found:
            self.found = self._inside = True
            self.file_name = options.get(b"filename", b"").decode("utf-8", "replace")
            self.content_type = self._headers.get(b"content-type", b"").decode("latin-1")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        self._inside = False


async def receive_upload(request: Request, path: Path, max_bytes: int, file_name: str | None) -> Upload:
    """Stream the request's file to `path`; raises `FileProblem` (413, or 400/422 for a broken multipart body).

    A raw body's name is `file_name` (the `filename` query parameter) and its type the Content-Type header;
    a multipart body's are those of its file part.
    """
    content_type = request.headers.get("content-type", "")
    media, options = parse_options_header(content_type)
    declared = request.headers.get("content-length", "")
    slack = MULTIPART_OVERHEAD_BYTES if media == b"multipart/form-data" else 0
    if declared.isdigit() and int(declared) > max_bytes + slack:
        raise FileProblem(413, "IMPORT_TOO_LARGE", f"an import file takes at most {max_bytes} bytes")
    with path.open("wb") as file:
        sink = _Sink(file, max_bytes)
        if media == b"multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                raise FileProblem(400, "MALFORMED_MULTIPART", "multipart/form-data needs a boundary", "Content-Type")
            part = _FilePart(sink)
            parser = MultipartParser(boundary, _callbacks(part))  # type: ignore[arg-type]
            try:
                async for chunk in request.stream():
                    parser.write(chunk)
                parser.finalize()
            except FileProblem:
                raise
            except Exception as exc:  # python-multipart's MultipartParseError and friends
                raise FileProblem(400, "MALFORMED_MULTIPART", f"the multipart body cannot be read: {exc}") from exc
            if not part.found:
                raise FileProblem(
                    422, "NO_FILE", "the multipart body has no file part (send it as the field file)", "file"
                )
            name, media_type = part.file_name or (file_name or ""), part.content_type
        else:
            async for chunk in request.stream():
                sink.write(chunk)
            name, media_type = file_name or "", content_type
        file.flush()
        await run_in_threadpool(os.fsync, file.fileno())  # recorded next: the file must outlive a crash
    return Upload(path, name, media_type, sink.size, sink.hash.hexdigest())


def _callbacks(part: _FilePart) -> dict[str, object]:
    names = ("on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
             "on_part_data", "on_part_end")  # fmt: skip
    return {name: getattr(part, name) for name in names}
