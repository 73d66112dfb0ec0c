"""The tree-head signing key: ECDSA P-256, from a configured file or generated on first start.

Several registry processes on one database must sign with the same key, so they share the file
(a mounted secret in production). Generation is race-free: the key is written to a temporary
file and hard-linked into place; whoever loses the race loads the winner's key. It is durable
before the first tree head is signed with it (``egov_common.files.write_durably``), so a power
cut cannot leave an empty key file behind, or a log whose signed heads no key on disk can sign
again. The public key beside it (``<name>.pub.pem``, for relying
parties) is written the same way, from the key that won.

The key is encrypted at rest: an encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256 and
AES-256-CBC), which ``openssl pkey -passin`` also opens, under a passphrase given in the
settings. The passphrase must be a random secret: PBKDF2's few rounds (2,048, as written by
``cryptography``) do not protect a guessable one. Without a configured passphrase (development)
one is generated into ``<name>.passphrase`` beside the key, written as durably. A key found
unencrypted is sealed in place where its folder is writable, and refused where it is not (a
mounted secret), with the ``openssl`` command that seals it.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.files import write_durably
from egov_common.settings import SettingsError

__all__ = ["MIN_PASSPHRASE_LENGTH", "load_or_create_log_key", "public_key_pem"]

_log = logging.getLogger(__name__)

#: Characters a configured passphrase must have at least: ``openssl rand -base64 32`` gives 44.
MIN_PASSPHRASE_LENGTH = 32
_KEY_FILE = "EGOV_REGISTRY_LOG_KEY_FILE"
_PASSPHRASE = "EGOV_REGISTRY_LOG_KEY_PASSPHRASE"  # noqa: S105 - a variable's name


def load_or_create_log_key(
    path: Path, passphrase: bytes | None = None
) -> ec.EllipticCurvePrivateKey:
    """Open the encrypted key at ``path`` with ``passphrase``, creating both when absent.

    ``passphrase=None`` uses (and creates) the development passphrase file beside the key.
    Raises :class:`SettingsError` naming the variable to fix when the file is not a P-256
    private key, the passphrase does not open it, or it is unencrypted and cannot be sealed.
    """
    if path.exists():  # perhaps a mounted secret, in a read-only folder: nothing is written
        return _load(path, *_passphrase_and_variable(path, passphrase))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        passphrase, variable = _passphrase_and_variable(path, passphrase)
        key = ec.generate_private_key(ec.SECP256R1())
        write_durably(path, _sealed(key, passphrase), mode=0o600, replace=False)
        key = _load(path, passphrase, variable)  # another replica's, if it linked its key first
        public = path.with_name(path.stem + ".pub.pem")
        published = public_key_pem(key)
        if not public.exists() or public.read_bytes() != published:  # the winner may write it
            write_durably(public, published, mode=0o644, replace=True)
    except OSError as exc:  # a mistyped path, or a Secret volume without the key
        raise SettingsError(
            _KEY_FILE, f"{path} does not exist and cannot be made ({exc.strerror or exc})"
        ) from None
    return key


def _passphrase_and_variable(path: Path, passphrase: bytes | None) -> tuple[bytes, str]:
    """The passphrase, and the variable to name when it does not open the key: the configured
    one, else the development passphrase file beside the key (made when absent)."""
    if passphrase is not None:
        return passphrase, _PASSPHRASE
    file = path.with_name(path.stem + ".passphrase")
    variable = f"{_PASSPHRASE} (development passphrase file {file})"
    try:
        if not file.exists():
            write_durably(file, secrets.token_urlsafe(32).encode(), mode=0o600, replace=False)
        passphrase = file.read_bytes().strip()
    except OSError as exc:  # a read-only folder: a mounted secret wants a configured passphrase
        raise SettingsError(
            _PASSPHRASE, f"is not set and {file} cannot be made ({exc.strerror or exc})"
        ) from None
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise SettingsError(variable, f"holds fewer than {MIN_PASSPHRASE_LENGTH} characters")
    return passphrase, variable


def _sealed(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _load(path: Path, passphrase: bytes, variable: str) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsError(_KEY_FILE, f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:  # "Password was given but private key is not encrypted"
        key = _seal_in_place(path, data, passphrase)
    except ValueError:
        if b"ENCRYPTED" in data:
            raise SettingsError(
                variable,
                f"does not open the log key {path} (a wrong passphrase, or a cipher other than "
                "PBES2 with AES-256-CBC)",
            ) from None
        raise SettingsError(_KEY_FILE, f"{path} is not a PEM private key") from None
    return _p256(key, path)


def _p256(key: object, path: Path) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SettingsError(_KEY_FILE, f"{path} is not an ECDSA P-256 private key")
    return key


def _seal_in_place(path: Path, data: bytes, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise SettingsError(_KEY_FILE, f"{path} is not a PEM private key") from None
    key = _p256(loaded, path)  # before sealing: a key refused is left as it was
    try:  # the file itself, not a link to it: a rename would leave the plaintext behind
        write_durably(path.resolve(), _sealed(key, passphrase), mode=0o600, replace=True)
    except OSError as exc:
        raise SettingsError(
            _KEY_FILE,
            f"{path} holds the log key unencrypted and cannot be sealed in place "
            f"({exc.strerror or exc}); seal it with `openssl pkcs8 -topk8 -v2 aes-256-cbc "
            f"-v2prf hmacWithSHA256 -passout env:{_PASSPHRASE}` and mount the result",
        ) from None
    _log.warning("log key %s was unencrypted: sealed it in place under the passphrase", path)
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
