"""Files a service writes for itself and must find whole after a power cut: its generated keys,
passphrases and development certificates.

:func:`write_durably` writes a temporary file beside the target, syncs it, moves it into place
(a hard link that keeps an existing file, or a rename that replaces it) and syncs the folder. A
reader therefore sees the old file or the whole new one, never a torn one, and once it returns
the file survives a crash of the machine. Without the syncs a power cut could leave an empty key
file, or none, behind data already sealed or signed with the key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_durably"]


def write_durably(path: Path, data: bytes, *, mode: int, replace: bool) -> bool:
    """``data`` at ``path`` with permissions ``mode``, whole and synced, and the folder's entry
    for it synced too. With ``replace=False`` an existing file wins (another process got there
    first) and is left alone. Returns whether ``data`` was put in place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    placed = True
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                placed = False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    # Also when another process placed its file first: what this one goes on to do with that
    # file (seal data under a key in it) must not outlive the file's entry after a crash.
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return placed
