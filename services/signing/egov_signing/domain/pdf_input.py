"""Untrusted PDF input: size, page and signature limits, parse errors turned into reasons.

Every document that enters the service (to be signed or verified) goes through
:func:`open_untrusted_pdf`, so a non-PDF, an encrypted file, a truncated file or a decompression
bomb is refused the same way everywhere: :class:`egov_common.errors.InvalidArgument` with one of
the reasons below, never a crash.

A document is either ``bytes`` or a readable, seekable binary stream (a large upload spooled to
a temporary file): pyHanko reads what it needs from the stream and signs it in place, so a large
PDF is never held whole in memory. :func:`scan_document` hashes a stream in one chunked pass.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass
from typing import BinaryIO

from egov_common.errors import DeadlineExceeded, FieldViolation, InvalidArgument
from pyhanko.pdf_utils.decode_limits import (
    DecodeLimits,
    DocumentDecodeBudget,
    StreamDecodeLimits,
)
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

__all__ = [
    "NOT_A_PDF",
    "PDF_DECOMPRESSION_LIMIT",
    "PDF_ENCRYPTED",
    "PDF_MALFORMED",
    "PDF_TOO_LARGE",
    "PDF_TOO_MANY_PAGES",
    "PDF_TOO_MANY_REVISIONS",
    "PDF_TOO_MANY_SIGNATURES",
    "VERIFICATION_DEADLINE_EXCEEDED",
    "Deadline",
    "DocumentLimits",
    "DocumentScan",
    "PdfSource",
    "as_stream",
    "decompression_refused",
    "open_untrusted_pdf",
    "read_all",
    "scan_document",
    "stream_size",
]

NOT_A_PDF = "NOT_A_PDF"
PDF_MALFORMED = "PDF_MALFORMED"
PDF_ENCRYPTED = "PDF_ENCRYPTED"
PDF_TOO_LARGE = "PDF_TOO_LARGE"
PDF_TOO_MANY_PAGES = "PDF_TOO_MANY_PAGES"
PDF_TOO_MANY_SIGNATURES = "PDF_TOO_MANY_SIGNATURES"
PDF_TOO_MANY_REVISIONS = "PDF_TOO_MANY_REVISIONS"
PDF_DECOMPRESSION_LIMIT = "PDF_DECOMPRESSION_LIMIT"
VERIFICATION_DEADLINE_EXCEEDED = "VERIFICATION_DEADLINE_EXCEEDED"

_MIB = 1024 * 1024
_SCAN_CHUNK = _MIB

#: A whole PDF: its bytes, or a readable and seekable binary stream (read from its start).
PdfSource = bytes | BinaryIO


def as_stream(pdf: PdfSource) -> BinaryIO:
    """``pdf`` as a seekable stream (bytes are wrapped without a copy)."""
    if isinstance(pdf, bytes | bytearray | memoryview):
        return io.BytesIO(pdf)
    return pdf


def stream_size(stream: BinaryIO) -> int:
    """The stream's length in bytes; its position is kept."""
    position = stream.tell()
    try:
        return stream.seek(0, os.SEEK_END)
    finally:
        stream.seek(position)


def read_all(stream: BinaryIO) -> bytes:
    """The whole stream as bytes (in memory: for small documents and tests only)."""
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()  # hands over the buffer without a copy when not shared
    stream.seek(0)
    return stream.read()


@dataclass(frozen=True)
class DocumentScan:
    sha256: bytes
    size: int
    #: occurrences of the needle asked for (0 without one)
    count: int = 0


def scan_document(stream: BinaryIO, needle: bytes = b"") -> DocumentScan:
    """SHA-256, size and the number of ``needle`` occurrences of the whole stream, in one pass
    through a fixed 1 MiB buffer (a file-backed document is never read whole into memory).
    The stream's position is kept."""
    position = stream.tell()
    try:
        if isinstance(stream, io.BytesIO):
            data = stream.getvalue()
            return DocumentScan(
                hashlib.sha256(data).digest(), len(data), data.count(needle) if needle else 0
            )
        digest = hashlib.sha256()
        size = count = 0
        # the last len(needle) - 1 bytes of a chunk stay in front of the next one, so an
        # occurrence across a chunk boundary is counted once (a shorter tail cannot hold one)
        keep = max(len(needle) - 1, 0)
        buffer = bytearray(keep + _SCAN_CHUNK)
        view = memoryview(buffer)
        carried = 0
        stream.seek(0)
        try:
            while True:
                n = stream.readinto(view[carried:])  # type: ignore[attr-defined]
                if not n:
                    break
                end = carried + n
                digest.update(view[carried:end])
                size += n
                if needle:
                    count += buffer.count(needle, 0, end)
                carried = min(keep, end)
                buffer[:carried] = buffer[end - carried : end]
        finally:
            view.release()
        return DocumentScan(digest.digest(), size, count)
    finally:
        stream.seek(position)


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds on one input document. Sizes in bytes, time in seconds."""

    max_bytes: int = 50 * _MIB
    max_pages: int = 2000
    max_signatures: int = 50
    #: total decoded stream bytes allowed per document (a floor; large files get 20x their size)
    max_decoded_bytes: int = 128 * _MIB
    #: wall-clock budget for one verification or signing of one document
    deadline_seconds: float = 60.0
    #: revisions (incremental updates) of a document to verify: pyHanko's difference analysis
    #: and the metadata comparison take time that grows with their square
    max_revisions: int = 500
    #: certificates the certificate path search may try to extend a path from, per signature
    #: (same-named certificates multiply the candidate paths: K per level give K**levels)
    max_path_candidates: int = 100
    #: indirect objects read in the search for signature dictionaries that no field uses
    max_objects_scanned: int = 50_000

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            per_stream=StreamDecodeLimits(max_output_size=min(self.max_decoded_bytes, 256 * _MIB)),
            document_budget=DocumentDecodeBudget(
                base_allowance=self.max_decoded_bytes, max_ratio=20
            ),
        )


class Deadline:
    """A monotonic deadline; :meth:`check` raises DeadlineExceeded once it has passed."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise DeadlineExceeded(
                VERIFICATION_DEADLINE_EXCEEDED, "the document took too long to process"
            )


def decompression_refused(err: BaseException) -> InvalidArgument:
    return InvalidArgument(
        PDF_DECOMPRESSION_LIMIT,
        "the PDF decompresses to more data than allowed (possible decompression bomb)",
        field_violations=(FieldViolation("pdf", str(err)[:200]),),
    )


def check_size(size: int, limits: DocumentLimits) -> None:
    """Raise PDF_TOO_LARGE when ``size`` bytes exceed the limit (used while streaming too)."""
    if size > limits.max_bytes:
        raise InvalidArgument(
            PDF_TOO_LARGE,
            f"the PDF is larger than {limits.max_bytes} bytes",
            metadata={"max_bytes": str(limits.max_bytes)},
        )


def open_untrusted_pdf(data: PdfSource, limits: DocumentLimits) -> PdfFileReader:
    """Parse ``data`` strictly and enforce ``limits``; the reader reads from ``data`` (a stream is
    used as it is, and is what an in-place signature is appended to).

    Raises InvalidArgument with reason NOT_A_PDF, PDF_MALFORMED, PDF_ENCRYPTED, PDF_TOO_LARGE,
    PDF_TOO_MANY_PAGES or PDF_DECOMPRESSION_LIMIT.
    """
    stream = as_stream(data)
    check_size(stream_size(stream), limits)
    # ISO 32000-1 7.5.2: the header may be preceded by junk, readers look in the first 1024 bytes
    stream.seek(0)
    head = stream.read(1024)
    if b"%PDF-" not in head:
        raise InvalidArgument(NOT_A_PDF, "the document is not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(stream, strict=True, decode_limits=limits.decode_limits())
        if reader.encrypted:
            raise InvalidArgument(PDF_ENCRYPTED, "the PDF is encrypted; send it decrypted")
        pages = int(reader.root["/Pages"]["/Count"])
    except InvalidArgument:
        raise
    except PdfDecodeLimitError as err:
        raise decompression_refused(err) from err
    except (PdfError, RecursionError, KeyError, TypeError, ValueError, IndexError) as err:
        raise InvalidArgument(
            PDF_MALFORMED,
            "the PDF cannot be parsed",
            field_violations=(FieldViolation("pdf", f"{type(err).__name__}: {str(err)[:200]}"),),
        ) from err
    except Exception as err:  # a parser bug on hostile input is still a bad input, not a crash
        raise InvalidArgument(
            PDF_MALFORMED,
            "the PDF cannot be parsed",
            field_violations=(FieldViolation("pdf", type(err).__name__),),
        ) from err
    if pages > limits.max_pages:
        raise InvalidArgument(
            PDF_TOO_MANY_PAGES,
            f"the PDF has more than {limits.max_pages} pages",
            metadata={"max_pages": str(limits.max_pages)},
        )
    return reader
