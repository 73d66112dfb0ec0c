"""Read an uploaded PDF from a request body while it streams, enforcing the size limit.

The file never touches the disk (a citizen's document is not written anywhere, not even to a
temporary file) and the body is never read past the limit (plus a bounded drain so that
browsers still get the error page instead of a reset connection), nor waited for longer than
the timeouts: a client that stops sending is refused and what it sent is dropped. Accepted
bodies: ``multipart/form-data`` with exactly one file part named ``file`` (the HTML form) or a
bare ``application/pdf`` body (scripts and ``curl --data-binary``).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

#: A form's own overhead on top of the file (boundaries, part headers, small fields).
FORM_OVERHEAD_BYTES = 64 * 1024
#: Small text fields of the form (document id, language) are cut off beyond this.
MAX_FIELD_BYTES = 256
#: How far PDF readers look for the ``%PDF-`` header (ISO 32000 implementations allow junk).
PDF_HEADER_WINDOW = 1024


class UploadProblem(enum.StrEnum):
    NO_FILE = "no_file"
    TOO_LARGE = "too_large"
    NOT_PDF = "not_pdf"
    BAD_REQUEST = "bad_request"
    #: The client stopped sending the body (or sent it too slowly): answered 408.
    TIMED_OUT = "timed_out"


class UploadRefused(Exception):
    """The upload cannot be verified; ``problem`` says why in words the page translates."""

    def __init__(self, problem: UploadProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class UploadedPdf:
    file_name: str
    content: bytes
    fields: dict[str, str] = field(default_factory=dict)


def looks_like_pdf(content: bytes) -> bool:
    """True if ``%PDF-`` appears near the start, as PDF readers require."""
    return b"%PDF-" in content[:PDF_HEADER_WINDOW]


async def read_upload(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    *,
    max_file_bytes: int,
    idle_timeout: float | None = None,
    deadline: float | None = None,
) -> UploadedPdf:
    """Read the PDF out of a request body.

    ``idle_timeout``: seconds the body may go without a byte; ``deadline``: seconds the whole
    body may take (both unlimited when None). Past either, ``UploadRefused(TIMED_OUT)``.

    Raises ``UploadRefused`` for a missing file, a body over the limit (judged on the
    declared ``Content-Length`` first, then on the bytes as they arrive), a non-PDF, or a
    malformed request.
    """
    media_type, options = parse_options_header(content_type or "")
    body_limit = max_file_bytes + FORM_OVERHEAD_BYTES
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise UploadRefused(UploadProblem.BAD_REQUEST) from None
        if declared > body_limit:
            raise UploadRefused(UploadProblem.TOO_LARGE)
    if idle_timeout is not None or deadline is not None:
        body = _timed(body, idle_timeout, deadline)

    if media_type in (b"application/pdf", b"application/octet-stream"):
        content = await _read_bare(body, max_file_bytes)
        upload = UploadedPdf(file_name="document.pdf", content=content)
    elif media_type == b"multipart/form-data" and options.get(b"boundary"):
        upload = await _read_form(body, options[b"boundary"], max_file_bytes, body_limit)
    else:
        raise UploadRefused(UploadProblem.BAD_REQUEST)

    if not upload.content:
        raise UploadRefused(UploadProblem.NO_FILE)
    if not looks_like_pdf(upload.content):
        raise UploadRefused(UploadProblem.NOT_PDF)
    return upload


async def _timed(
    body: AsyncIterator[bytes], idle_timeout: float | None, deadline: float | None
) -> AsyncIterator[bytes]:
    """``body``'s chunks, or ``UploadRefused(TIMED_OUT)`` once the client is too slow."""
    end = None if deadline is None else time.monotonic() + deadline
    chunks = aiter(body)
    while True:
        wait = idle_timeout
        if end is not None:
            left = end - time.monotonic()
            wait = left if wait is None else min(wait, left)
        if wait is not None and wait <= 0:
            raise UploadRefused(UploadProblem.TIMED_OUT)
        try:
            chunk = await asyncio.wait_for(anext(chunks), wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadRefused(UploadProblem.TIMED_OUT) from None
        yield chunk


async def _read_bare(body: AsyncIterator[bytes], max_file_bytes: int) -> bytes:
    buffer = bytearray()
    async for chunk in body:
        buffer += chunk
        if len(buffer) > max_file_bytes:
            await _drain(body, max_file_bytes)
            raise UploadRefused(UploadProblem.TOO_LARGE)
    return bytes(buffer)


class _FormCollector:
    """Callbacks for the streaming multipart parser: one file part, a few short fields.

    A second file part makes the form malformed (``second_file``): files are never joined,
    and which of two files a visitor meant is not for the portal to guess.
    """

    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.file_name: str | None = None
        self.file = bytearray()
        self.fields: dict[str, str] = {}
        self.too_large = False
        self.second_file = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._part_name = ""
        self._part_file_name: str | None = None
        self._part_value = bytearray()

    def on_part_begin(self) -> None:
        self._part_name = ""
        self._part_file_name = None
        self._part_value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            _, params = parse_options_header(bytes(self._header_value))
            self._part_name = params.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in params:
                self._part_file_name = params[b"filename"].decode("utf-8", "replace")
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        if self._is_file_part():
            if self.file_name is None:
                self.file_name = self._part_file_name
            else:
                self.second_file = True

    def _is_file_part(self) -> bool:
        return self._part_name == "file" and self._part_file_name is not None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file_part():
            if self.second_file:
                return
            self.file += data[start:end]
            if len(self.file) > self.max_file_bytes:
                self.too_large = True
        elif len(self._part_value) < MAX_FIELD_BYTES:
            room = MAX_FIELD_BYTES - len(self._part_value)
            self._part_value += data[start : min(end, start + room)]

    def on_part_end(self) -> None:
        if self._part_name and self._part_file_name is None:
            self.fields[self._part_name] = self._part_value.decode("utf-8", "replace").strip()


async def _read_form(
    body: AsyncIterator[bytes], boundary: bytes, max_file_bytes: int, body_limit: int
) -> UploadedPdf:
    collector = _FormCollector(max_file_bytes)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > body_limit:
            collector.too_large = True
        if not collector.too_large:
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise UploadRefused(UploadProblem.BAD_REQUEST) from None
            if collector.second_file:
                raise UploadRefused(UploadProblem.BAD_REQUEST)
        if collector.too_large:
            await _drain(body, max_file_bytes)
            raise UploadRefused(UploadProblem.TOO_LARGE)
    try:
        parser.finalize()
    except MultipartParseError:
        raise UploadRefused(UploadProblem.BAD_REQUEST) from None
    if collector.file_name is None:
        raise UploadRefused(UploadProblem.NO_FILE)
    name = collector.file_name.replace("\\", "/").rsplit("/", 1)[-1][:200] or "document.pdf"
    return UploadedPdf(file_name=name, content=bytes(collector.file), fields=collector.fields)


async def discard_upload(
    body: AsyncIterator[bytes],
    *,
    max_file_bytes: int,
    idle_timeout: float | None = None,
    deadline: float | None = None,
) -> None:
    """Read and drop (a bounded amount of) a body the portal will not verify, so that the
    client reads the answer instead of a reset connection; nothing of it is kept."""
    if idle_timeout is not None or deadline is not None:
        body = _timed(body, idle_timeout, deadline)
    await _drain(body, max_file_bytes)


async def _drain(body: AsyncIterator[bytes], max_file_bytes: int) -> None:
    """Read and drop a bounded amount of the rest so the browser reads our answer.

    A server that answers while the client is still sending makes many browsers show a
    connection error instead of the page; past three times the limit we stop being polite.
    """
    budget = 3 * max_file_bytes
    try:
        async for chunk in body:
            budget -= len(chunk)
            if budget <= 0:
                return
    except UploadRefused:  # the client stopped sending: answer now
        return
