"""write_durably puts a whole file in place, keeps or replaces what is there as asked, and
leaves no temporary file behind, even when writing fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from egov_common.files import write_durably


def test_a_new_file_is_written_whole_with_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert write_durably(path, b"first", mode=0o600, replace=False) is True
    assert path.read_bytes() == b"first"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["secret"]


def test_an_existing_file_is_kept_or_replaced_as_asked(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write_durably(path, b"first", mode=0o600, replace=False)
    assert write_durably(path, b"second", mode=0o600, replace=False) is False
    assert path.read_bytes() == b"first"
    assert write_durably(path, b"third", mode=0o644, replace=True) is True
    assert path.read_bytes() == b"third"
    assert path.stat().st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["secret"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret"
    write_durably(path, b"first", mode=0o600, replace=False)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_durably(path, b"second", mode=0o600, replace=True)
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["secret"]
