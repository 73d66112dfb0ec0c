"""Secrets at rest (signing keys, TOTP seeds, the pairwise salt): AES-256-GCM under a KEK.

A sealed value names the KEK that sealed it, so the KEK can rotate: the service seals with the
current KEK and opens with whichever of the current and previous KEKs the value names, and
``python -m egov_identity rewrap-kek`` re-seals old values under the current one.

Blob layout, version 2: ``0x02 | KEK id (8 bytes) | nonce (12) | ciphertext + tag``. The KEK id is
the first 8 bytes of SHA-256 of the raw 32-byte KEK (shown as 16 hex digits); it identifies the
key without revealing it. Version 1 (``0x01 | nonce | ciphertext + tag``, written before KEK ids)
is still read: each known KEK is tried, and the GCM tag tells which one sealed it. In both
versions the AAD is the ``context`` alone (the kid, the person id, the secret's name), so a blob
cannot be moved to another row.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from egov_common.errors import Internal

log = logging.getLogger(__name__)

_V1 = b"\x01"
_V2 = b"\x02"
_KEK_ID_BYTES = 8
_NONCE_BYTES = 12


def kek_id(kek: bytes) -> str:
    """The id of a KEK as stored beside what it sealed: 16 hex digits, the first 8 bytes of the
    SHA-256 of the raw key (``base64 -d <<<"$KEK" | sha256sum | cut -c1-16``)."""
    return hashlib.sha256(kek).digest()[:_KEK_ID_BYTES].hex()


class KekUnknown(Internal):
    """A sealed value names a KEK this process was not given (``KEK_UNKNOWN``)."""


class SealedValueUnreadable(Internal):
    """A sealed value does not open under the KEK it names (``SEALED_VALUE_UNREADABLE``): it
    was edited, truncated or copied from another row."""


class SecretBox:
    """Seals small secrets under the current KEK and opens them under any KEK it holds.

    ``kek`` is the current KEK (32 bytes); ``previous`` are older KEKs that may still have sealed
    values. Neither appears in ``repr`` or in any error or log line; only their ids do.
    """

    def __init__(self, kek: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (kek, *previous):
            if len(key) != 32:
                raise ValueError("a key-encryption key must be 32 bytes")
        self._current = kek_id(kek)
        self._aeads: dict[str, AESGCM] = {self._current: AESGCM(kek)}
        for key in previous:
            self._aeads.setdefault(kek_id(key), AESGCM(key))

    def __repr__(self) -> str:
        return f"SecretBox(current={self._current!r}, kek_ids={list(self._aeads)!r})"

    @property
    def current_kek_id(self) -> str:
        """The id of the KEK every new value is sealed under."""
        return self._current

    @property
    def kek_ids(self) -> tuple[str, ...]:
        """Ids of every KEK this box can open with, the current one first."""
        return tuple(self._aeads)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypts under the current KEK, binding ``context`` as AAD."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = _V2 + bytes.fromhex(self._current)
        return header + nonce + self._aeads[self._current].encrypt(
            nonce, plaintext, context.encode())

    def open(self, blob: bytes, context: str, *, what: str = "a sealed value") -> bytes:
        """The plaintext of ``blob`` sealed with ``context``; ``what`` names the value in errors
        and logs (never its content). Raises :class:`KekUnknown` or
        :class:`SealedValueUnreadable`."""
        return self.open_with_id(blob, context, what=what)[0]

    def open_with_id(self, blob: bytes, context: str, *, what: str = "a sealed value"
                     ) -> tuple[bytes, str]:
        """Like :meth:`open`, and also the id of the KEK that opened it."""
        version = blob[:1]
        if version == _V2 and len(blob) > 1 + _KEK_ID_BYTES + _NONCE_BYTES:
            sealed_by = blob[1:1 + _KEK_ID_BYTES].hex()
            aead = self._aeads.get(sealed_by)
            if aead is None:
                raise self._unknown(what, sealed_by)
            body = blob[1 + _KEK_ID_BYTES:]
            try:
                return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:],
                                    context.encode()), sealed_by
            except InvalidTag:
                raise self._unreadable(what, f"does not open under KEK {sealed_by}") from None
        if version == _V1 and len(blob) > 1 + _NONCE_BYTES:
            for candidate, aead in self._aeads.items():
                try:
                    return aead.decrypt(blob[1:13], blob[13:], context.encode()), candidate
                except InvalidTag:
                    continue
            raise self._unknown(what, "")
        raise self._unreadable(what, "is not a sealed value this service writes")

    @staticmethod
    def kek_id_of(blob: bytes) -> str | None:
        """The KEK id a blob names; ``None`` for a version 1 blob (sealed before KEK ids)."""
        if blob[:1] == _V2 and len(blob) > 1 + _KEK_ID_BYTES:
            return blob[1:1 + _KEK_ID_BYTES].hex()
        return None

    def _unknown(self, what: str, sealed_by: str) -> KekUnknown:
        by = (f"KEK {sealed_by}" if sealed_by else
              "a KEK recorded nowhere (sealed before KEK ids; none of the KEKs given opens it)")
        message = (f"{what} is sealed under {by}; this process has KEK "
                   f"{', '.join(self._aeads)}: give that KEK in EGOV_IDENTITY_KEK or "
                   f"EGOV_IDENTITY_PREVIOUS_KEKS")
        log.error("sealed value under an unknown KEK", extra={
            "sealed_value": what, "sealed_by": sealed_by or "unknown (version 1)",
            "kek_ids": ",".join(self._aeads)})
        return KekUnknown("KEK_UNKNOWN", message,
                          metadata={"kek_id": sealed_by} if sealed_by else None)

    @staticmethod
    def _unreadable(what: str, problem: str) -> SealedValueUnreadable:
        log.error("sealed value unreadable", extra={"sealed_value": what, "problem": problem})
        return SealedValueUnreadable("SEALED_VALUE_UNREADABLE", f"{what} {problem}")


def digest(value: str) -> str:
    """Hex SHA-256 of a bearer secret: the database stores only this (codes, refresh tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()
