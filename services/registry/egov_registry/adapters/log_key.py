"""The tree-head signing key: ECDSA P-256, from a configured PEM or generated on first start.

Several registry processes on one database must sign with the same key, so they share the file
(a mounted secret in production). Generation is race-free: the key is written to a temporary
file and hard-linked into place; whoever loses the race loads the winner's key.
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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".log-key-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        public = path.with_name(path.stem + ".pub.pem")
        if not public.exists():
            public.write_bytes(public_key_pem(_load(path)))
    return _load(path)


def _load(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path} is not an ECDSA P-256 private key")
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
