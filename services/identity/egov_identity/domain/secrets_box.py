"""Secrets at rest (signing keys, TOTP seeds): AES-256-GCM under the key-encryption key."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class SecretBox:
    """Encrypts small secrets with AES-256-GCM; ``context`` (e.g. the kid) is bound as AAD so a
    blob cannot be moved to another row. The KEK comes from settings (a mounted secret)."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(kek)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        if blob[:1] != _VERSION:
            raise ValueError("unknown secret blob version")
        return self._aead.decrypt(blob[1:13], blob[13:], context.encode())


def digest(value: str) -> str:
    """Hex SHA-256 of a bearer secret: the database stores only this (codes, refresh tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()
