"""The tree-head key is created once, shared by replicas, and refused when it is not P-256."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from egov_registry.adapters.log_key import load_or_create_log_key


def _public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_replicas_starting_together_end_up_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log-key.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_log_key(path), range(8)))
    assert len({_public(k) for k in keys}) == 1
    assert path.stat().st_mode & 0o077 == 0
    assert path.with_name("log-key.pub.pem").exists()
    assert _public(load_or_create_log_key(path)) == _public(keys[0])


def test_a_key_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-key.pem"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="P-256"):
        load_or_create_log_key(path)
