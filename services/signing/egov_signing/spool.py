"""Where an uploaded PDF waits while it is signed or verified.

A small upload stays in memory; once it passes ``memory_bytes`` it moves to an unnamed temporary
file (``O_TMPFILE`` where the OS has it, else created and unlinked at once) inside a private
directory (mode 0700) of this process. The file never has a name another process could open,
and its blocks are freed when it is closed (every RPC closes its spool on success, error,
cancellation and deadline) or, at the latest, when the process ends: nothing of a document
stays on disk after the call.

The signing domain signs the spooled stream in place, and the response is read back from it in
chunks, so a large PDF is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = ["Spool", "SpoolDirectory"]

_MIB = 1024 * 1024


class Spool:
    """One document: written once while the upload streams in, then read and appended to."""

    def __init__(self, directory: str, memory_bytes: int) -> None:
        self._directory = directory
        self._memory_bytes = memory_bytes
        self._stream: BinaryIO = io.BytesIO()
        self.size = 0

    @property
    def stream(self) -> BinaryIO:
        """The document so far (memory or temporary file), readable, writable and seekable."""
        return self._stream

    @property
    def on_disk(self) -> bool:
        return not isinstance(self._stream, io.BytesIO)

    def write(self, data: bytes) -> None:
        if not self.on_disk and self.size + len(data) > self._memory_bytes:
            file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 - closed in close()
            try:
                assert isinstance(self._stream, io.BytesIO)
                file.write(self._stream.getbuffer())
            except BaseException:
                file.close()
                raise
            self._stream.close()
            self._stream = file
        self._stream.write(data)
        self.size += len(data)

    def close(self) -> None:
        """Free the document (idempotent). A temporary file's blocks go with its descriptor."""
        with contextlib.suppress(BufferError):  # a memoryview still held: freed when dropped
            self._stream.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SpoolDirectory:
    """This process's private directory for spooled documents (mode 0700), made on first use by
    each process: a worker forked from the process that built this object gets its own, and
    removes only its own."""

    def __init__(self, parent: Path | None = None, *, memory_bytes: int = _MIB) -> None:
        self._parent = parent
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._made: tuple[int, Path] | None = None

    @property
    def path(self) -> Path:
        with self._lock:
            if self._made is None or self._made[0] != os.getpid():
                if self._parent is not None:
                    self._parent.mkdir(parents=True, exist_ok=True)
                made = Path(tempfile.mkdtemp(prefix="egov-signing-", dir=self._parent))
                self._made = (os.getpid(), made)
            return self._made[1]

    def open(self) -> Spool:
        return Spool(str(self.path), self.memory_bytes)

    def remove(self) -> None:
        with self._lock:
            if self._made is not None and self._made[0] == os.getpid():
                shutil.rmtree(self._made[1], ignore_errors=True)
                self._made = None
