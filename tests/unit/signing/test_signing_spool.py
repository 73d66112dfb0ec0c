"""Large documents: spooled to an unnamed temporary file, signed in place, read in chunks."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from egov_common.errors import InvalidArgument
from egov_signing.domain import pdf_input
from egov_signing.domain.pdf_input import DocumentLimits, open_untrusted_pdf, scan_document
from egov_signing.domain.report import Indication, PadesLevel
from egov_signing.domain.signing import Level, PdfSigningService, SignOptions
from egov_signing.domain.verification import DocumentVerifier, RevocationMode, TrustAnchors
from egov_signing.spool import SpoolDirectory
from signing_testkit import SigningPki, SoftwareKeys, make_pdf


def _open_fds_under(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def _spooled(directory: SpoolDirectory, data: bytes, chunk: int = 1000):  # type: ignore[no-untyped-def]
    spool = directory.open()
    for start in range(0, len(data), chunk):
        spool.write(data[start : start + chunk])
    return spool


def test_small_upload_stays_in_memory_large_one_moves_to_an_unnamed_file(
    tmp_path: Path,
) -> None:
    directory = SpoolDirectory(tmp_path, memory_bytes=4096)
    assert oct(directory.path.stat().st_mode & 0o777) == "0o700"
    small = _spooled(directory, b"a" * 4096)
    assert not small.on_disk
    data = os.urandom(50_000)
    large = _spooled(directory, data)
    assert large.on_disk and large.size == len(data)
    large.stream.seek(0)
    assert large.stream.read() == data
    # no name in the directory, ever: only the open descriptor holds the blocks
    assert list(directory.path.iterdir()) == []
    assert len(_open_fds_under(directory.path)) == 1
    large.close()
    large.close()  # idempotent
    small.close()
    assert _open_fds_under(directory.path) == []
    made = directory.path
    directory.remove()
    assert not made.exists()


def test_spool_is_closed_when_the_block_ends_with_an_error(tmp_path: Path) -> None:
    directory = SpoolDirectory(tmp_path, memory_bytes=10)
    with pytest.raises(RuntimeError), directory.open() as spool:
        spool.write(b"x" * 100)
        assert spool.on_disk
        raise RuntimeError("cancelled")
    assert _open_fds_under(directory.path) == []


@pytest.mark.parametrize("chunk", [7, 9, 10, 64])
def test_scan_counts_needles_across_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pdf_input, "_SCAN_CHUNK", chunk)
    data = b"xx/ByteRange/ByteRangeyy" + os.urandom(100) + b"/ByteRange" * 3 + b"/Byte"
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.seek(5)
        scan = scan_document(file, b"/ByteRange")  # type: ignore[arg-type]
        assert file.tell() == 5  # the position is kept
    assert scan.sha256 == hashlib.sha256(data).digest()
    assert scan.size == len(data)
    assert scan.count == data.count(b"/ByteRange") == 5
    assert scan_document(io.BytesIO(data), b"/ByteRange") == scan


def test_limits_hold_for_a_spooled_document(tmp_path: Path) -> None:
    directory = SpoolDirectory(tmp_path, memory_bytes=100)
    with _spooled(directory, make_pdf(pages=3)) as spool:
        assert spool.on_disk
        with pytest.raises(InvalidArgument) as err:
            open_untrusted_pdf(spool.stream, DocumentLimits(max_pages=2))
        assert err.value.reason == "PDF_TOO_MANY_PAGES"
        with pytest.raises(InvalidArgument) as err:
            open_untrusted_pdf(spool.stream, DocumentLimits(max_bytes=100))
        assert err.value.reason == "PDF_TOO_LARGE"
    not_pdf = _spooled(directory, b"GIF89a" + b"\0" * 500)
    with not_pdf as spool, pytest.raises(InvalidArgument) as err:
        open_untrusted_pdf(spool.stream, DocumentLimits())
    assert err.value.reason == "NOT_A_PDF"


@pytest.mark.parametrize("level", [Level.B_B, Level.B_LTA])
def test_spooled_document_is_signed_in_place_and_verifies_from_the_file(
    pki: SigningPki, keys: SoftwareKeys, tmp_path: Path, level: Level
) -> None:
    original = make_pdf(image_bytes=300_000)
    directory = SpoolDirectory(tmp_path, memory_bytes=64 * 1024)
    service = PdfSigningService(
        keys, timestamper=pki.timestamper(), validation_context_factory=pki.validation_context
    )
    with _spooled(directory, original, chunk=65536) as spool:
        signed = service.sign(spool.stream, SignOptions("cred-1", level))
        assert signed.document is spool.stream  # the update was appended to the upload
        pdf = signed.pdf
        assert pdf.startswith(original)  # an incremental update: the original bytes untouched
        assert signed.size_bytes == len(pdf)
        assert signed.sha256 == hashlib.sha256(pdf).digest()
        verifier = DocumentVerifier(
            TrustAnchors([pki.root_pem]), revocation_mode=RevocationMode.SOFT_FAIL
        )
        from_file = verifier.verify(spool.stream)
    from_bytes = verifier.verify(pdf)
    assert from_file.indication is Indication.TOTAL_PASSED, from_file.signatures
    assert from_file.signatures[0].pades_level is PadesLevel(level.value)
    assert from_file.document_sha256 == from_bytes.document_sha256 == signed.sha256.hex()
    assert from_file.document_size == from_bytes.document_size == len(pdf)
    assert _open_fds_under(directory.path) == []
