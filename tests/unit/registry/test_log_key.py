"""The tree-head key is created once, shared by replicas, encrypted at rest, and refused when it
is not P-256, when the passphrase does not open it, or when it lies unencrypted where it cannot
be sealed."""

from __future__ import annotations

import errno
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from egov_common.settings import SettingsError, describe
from egov_registry.adapters.log_key import load_or_create_log_key
from egov_registry.settings import RegistrySettings

PASSPHRASE = b"Q2hvb3NlIGEgcmFuZG9tIHNlY3JldCwgbm90IHRoaXM="


def _public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _plain_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _openssl_public(path: Path, passphrase: bytes) -> bytes:
    """The public key openssl finds in the encrypted file (DER)."""
    done = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "stdin", "-pubout", "-outform", "DER"],
        input=passphrase + b"\n", capture_output=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_replicas_starting_together_end_up_with_one_key_sealed_under_one_passphrase(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "log-key.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_log_key(path), range(8)))
    assert len({_public(k) for k in keys}) == 1
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    passphrase_file = path.with_name("log-key.passphrase")
    for secret in (path, passphrase_file):
        assert secret.stat().st_mode & 0o077 == 0
    assert _openssl_public(path, passphrase_file.read_bytes().strip()) == _public(keys[0])
    assert path.with_name("log-key.pub.pem").exists()
    assert _public(load_or_create_log_key(path)) == _public(keys[0])
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "log-key.passphrase", "log-key.pem", "log-key.pub.pem"
    ]


def test_a_configured_passphrase_seals_the_key_and_another_does_not_open_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log-key.pem"
    key = load_or_create_log_key(path, PASSPHRASE)
    assert not path.with_name("log-key.passphrase").exists()
    assert _openssl_public(path, PASSPHRASE) == _public(key)
    sealed = path.read_bytes()

    with pytest.raises(SettingsError, match="does not open the log key") as refused:
        load_or_create_log_key(path, PASSPHRASE[::-1])
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_PASSPHRASE"
    assert PASSPHRASE[::-1].decode() not in str(refused.value)
    assert path.read_bytes() == sealed
    assert _public(load_or_create_log_key(path, PASSPHRASE)) == _public(key)


def test_a_key_sealed_by_openssl_as_the_readme_says_opens(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    plain, path = tmp_path / "plain.pem", tmp_path / "log-key.pem"
    plain.write_bytes(_plain_pem(key))
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256",
         "-in", str(plain), "-out", str(path), "-passout", "env:EGOV_REGISTRY_LOG_KEY_PASSPHRASE"],
        env={"EGOV_REGISTRY_LOG_KEY_PASSPHRASE": PASSPHRASE.decode(), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, timeout=30,
    )
    assert _public(load_or_create_log_key(path, PASSPHRASE)) == _public(key)


def test_an_unencrypted_key_is_sealed_in_place_keeping_the_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "log-key.pem"
    path.write_bytes(_plain_pem(key))
    path.chmod(0o644)

    assert _public(load_or_create_log_key(path, PASSPHRASE)) == _public(key)
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert path.stat().st_mode & 0o077 == 0
    assert _openssl_public(path, PASSPHRASE) == _public(key)
    assert [p.name for p in tmp_path.iterdir()] == ["log-key.pem"]  # no plaintext copy left


def test_an_unencrypted_key_that_cannot_be_sealed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log-key.pem"
    plain = _plain_pem(ec.generate_private_key(ec.SECP256R1()))
    path.write_bytes(plain)

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a mounted secret's folder
    refusal = r"unencrypted.*Read-only file system.*openssl pkcs8"
    with pytest.raises(SettingsError, match=refusal) as refused:
        load_or_create_log_key(path, PASSPHRASE)
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_FILE"
    assert path.read_bytes() == plain


@pytest.mark.parametrize("content", [
    _plain_pem(ed25519.Ed25519PrivateKey.generate()),
    _plain_pem(ec.generate_private_key(ec.SECP384R1())),
])
def test_a_key_that_is_not_p256_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "log-key.pem"
    path.write_bytes(content)
    with pytest.raises(SettingsError, match="P-256") as refused:
        load_or_create_log_key(path, PASSPHRASE)
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_FILE"
    assert path.read_bytes() == content


def test_a_file_that_is_no_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-key.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.raises(SettingsError, match="not a PEM private key"):
        load_or_create_log_key(path, PASSPHRASE)


def test_the_passphrase_setting_is_a_long_secret_from_the_variable_or_its_file(
    tmp_path: Path,
) -> None:
    assert RegistrySettings().log_key_passphrase_bytes() is None  # development file
    given = RegistrySettings(log_key_passphrase=PASSPHRASE.decode())
    assert given.log_key_passphrase_bytes() == PASSPHRASE
    assert PASSPHRASE.decode() not in describe(given) + repr(given)  # the start-up log line
    file = tmp_path / "passphrase"
    file.write_text(PASSPHRASE.decode() + "\n")
    assert RegistrySettings(log_key_passphrase_file=file).log_key_passphrase_bytes() == PASSPHRASE

    with pytest.raises(SettingsError, match="at least 32 characters") as short:
        RegistrySettings(log_key_passphrase="hunter2").log_key_passphrase_bytes()
    assert short.value.variable == "EGOV_REGISTRY_LOG_KEY_PASSPHRASE"
    assert "hunter2" not in str(short.value)
    file.write_text("\n")
    with pytest.raises(SettingsError, match="empty") as empty:
        RegistrySettings(log_key_passphrase_file=file).log_key_passphrase_bytes()
    assert empty.value.variable == "EGOV_REGISTRY_LOG_KEY_PASSPHRASE_FILE"
    with pytest.raises(SettingsError, match="cannot be read"):
        RegistrySettings(log_key_passphrase_file=tmp_path / "absent").log_key_passphrase_bytes()
    file.write_bytes(b"\xff" * 40)
    with pytest.raises(SettingsError, match="not UTF-8 text"):
        RegistrySettings(log_key_passphrase_file=file).log_key_passphrase_bytes()


def test_a_passphrase_that_does_not_open_the_key_stops_start_up_before_migrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from egov_registry.__main__ import main

    path = tmp_path / "secret" / "log-key.pem"
    load_or_create_log_key(path, PASSPHRASE)
    database = tmp_path / "registry.db"
    monkeypatch.setenv("EGOV_REGISTRY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EGOV_REGISTRY_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("EGOV_REGISTRY_LOG_KEY_FILE", str(path))
    monkeypatch.setenv("EGOV_REGISTRY_LOG_KEY_PASSPHRASE", PASSPHRASE.decode()[::-1])

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err == (
        "egov registry: configuration error: EGOV_REGISTRY_LOG_KEY_PASSPHRASE: "
        f"does not open the log key {path} (a wrong passphrase, or a cipher other than PBES2 "
        "with AES-256-CBC)\n"
    )
    assert not database.exists()


def test_without_a_passphrase_a_read_only_folder_or_a_short_development_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log-key.pem"
    path.with_name("log-key.passphrase").write_text("short\n")
    with pytest.raises(SettingsError, match="fewer than 32 characters"):
        load_or_create_log_key(path)
    assert not path.exists()

    mounted = tmp_path / "mounted" / "log-key.pem"
    mounted.parent.mkdir()
    mounted.write_bytes(_plain_pem(ec.generate_private_key(ec.SECP256R1())))

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SettingsError, match=r"is not set and .* cannot be made") as refused:
        load_or_create_log_key(mounted)
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_PASSPHRASE"


def test_a_sealed_key_in_a_read_only_folder_opens_without_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the cluster mounts it: log-key.pem alone, in a read-only Secret volume."""
    made = tmp_path / "made" / "log-key.pem"
    key = load_or_create_log_key(made, PASSPHRASE)
    mounted = tmp_path / "mounted" / "log-key.pem"
    mounted.parent.mkdir()
    mounted.write_bytes(made.read_bytes())

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert _public(load_or_create_log_key(mounted, PASSPHRASE)) == _public(key)
    assert [p.name for p in mounted.parent.iterdir()] == ["log-key.pem"]


def test_a_key_path_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-key.pem"
    path.mkdir()  # a folder where the file should be: a mount gone wrong
    with pytest.raises(SettingsError, match="cannot be read") as refused:
        load_or_create_log_key(path, PASSPHRASE)
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_FILE"


def test_a_key_that_is_absent_where_none_can_be_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a Secret volume without the key
    with pytest.raises(SettingsError, match=r"does not exist and cannot be made \(Read-only") \
            as refused:
        load_or_create_log_key(tmp_path / "log-key.pem", PASSPHRASE)
    assert refused.value.variable == "EGOV_REGISTRY_LOG_KEY_FILE"


def test_an_unencrypted_key_behind_a_link_is_sealed_where_it_lies(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    target = tmp_path / "secrets" / "registry.pem"
    target.parent.mkdir()
    target.write_bytes(_plain_pem(key))
    path = tmp_path / "log-key.pem"
    path.symlink_to(target)

    assert _public(load_or_create_log_key(path, PASSPHRASE)) == _public(key)
    assert path.is_symlink()
    assert target.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert [p.name for p in target.parent.iterdir()] == ["registry.pem"]  # no plaintext left
