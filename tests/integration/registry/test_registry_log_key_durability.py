"""The tree-head key is on disk before the registry signs with it: strace watches a real process
create it (and, in development, the passphrase it is sealed under). A key lost to a power cut
(an empty file after the crash, or no entry in the folder) would leave signed tree heads that no
key on disk can sign again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from egov_registry.adapters.log_key import load_or_create_log_key, public_key_pem

_CREATE = "import sys; from pathlib import Path; " \
    "from egov_registry.adapters.log_key import load_or_create_log_key; " \
    "load_or_create_log_key(Path(sys.argv[1]))"


def test_a_new_log_key_is_synced_before_it_is_in_place_and_its_folder_after(
    tmp_path: Path, durable_writes: Callable[..., list[str]]
) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    path = folder / "log-key.pem"
    assert durable_writes(_CREATE, str(path), folder=folder) == [
        "sync .log-key.passphrase",  # the development passphrase first: the key is sealed under it
        "move to log-key.passphrase",
        "sync folder",
        "sync .log-key.pem",  # the private key's temporary file, whole
        "move to log-key.pem",
        "sync folder",
        "sync .log-key.pub.pem",
        "move to log-key.pub.pem",
        "sync folder",
    ]
    key = load_or_create_log_key(path)
    assert (folder / "log-key.pub.pem").read_bytes() == public_key_pem(key)
    sealed = serialization.load_pem_private_key(
        path.read_bytes(), password=(folder / "log-key.passphrase").read_bytes().strip()
    )
    assert sealed.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
