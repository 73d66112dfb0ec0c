"""The tree-head signing key: ECDSA P-256, from a configured PEM or generated on first start.

Several registry processes on one database must sign with the same key, so they share the file
(a mounted secret in production). Generation is race-free: the key is written to a temporary
file and hard-linked into place; whoever loses the race loads the winner's key. It is durable
before the first tree head is signed with it: the file is synced before it is linked and the
folder after, so a power cut cannot leave an empty key file behind, or a log whose signed heads
no key on disk can sign again. The public key beside it (``<name>.pub.pem``, for relying
parties) is written the same way, from the key that won.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["load_or_create_log_key", "public_key_pem"]


def load_or_create_log_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the PEM key at ``path``, creating it (mode 0600) when absent.

    Raises ``ValueError`` when the file holds something other than a P-256 private key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_durably(path, pem, mode=0o600, replace=False)
        key = _load(path)
        public = path.with_name(path.stem + ".pub.pem")
        published = public_key_pem(key)
        if not public.exists() or public.read_bytes() != published:  # the winner may be writing it
            _write_durably(public, published, mode=0o644, replace=True)
        return key
    return _load(path)


def _write_durably(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    """``data`` at ``path``, whole and synced, with the folder's entry for it synced too. With
    ``replace=False`` an existing file wins (its writer got there first) and is left alone."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _load(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path} is not an ECDSA P-256 private key")
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
