"""Settings that cannot work together stop start-up with a settings error naming the
variables (exit 2, one line, no traceback), before anything is migrated or created."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from egov_common.settings import SettingsError, load_settings
from egov_identity.__main__ import main
from egov_identity.settings import IdentitySettings


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EGOV_IDENTITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EGOV_IDENTITY_DATABASE_URL", f"sqlite:///{tmp_path / 'identity.db'}")
    root = logging.getLogger()  # main installs the service's JSON log handler: undo it
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _problem(monkeypatch: pytest.MonkeyPatch, **env: str) -> SettingsError:
    for name, value in env.items():
        monkeypatch.setenv(f"EGOV_IDENTITY_{name}", value)
    settings = load_settings(IdentitySettings, "IDENTITY")
    with pytest.raises(SettingsError) as info:
        settings.check_consistency()
    return info.value


@pytest.mark.parametrize(("env", "variable", "also_named"), [
    ({"KEY_ROTATION_SECONDS": "86400", "KEY_PUBLISH_AHEAD_SECONDS": "86400"},
     "EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS", "EGOV_IDENTITY_KEY_ROTATION_SECONDS"),
    ({"KEY_PUBLISH_AHEAD_SECONDS": "30"},
     "EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS", "max-age of /jwks"),
    ({"ACCESS_TOKEN_SECONDS": "3600", "REFRESH_TOKEN_SECONDS": "600"},
     "EGOV_IDENTITY_REFRESH_TOKEN_SECONDS", "EGOV_IDENTITY_ACCESS_TOKEN_SECONDS"),
    ({"CIBA_INTERVAL_SECONDS": "120"},
     "EGOV_IDENTITY_CIBA_INTERVAL_SECONDS", "EGOV_IDENTITY_CIBA_EXPIRES_SECONDS"),
    ({"MAX_FAILURES": "10", "CLIENT_MAX_FAILURES": "10"},
     "EGOV_IDENTITY_CLIENT_MAX_FAILURES", "EGOV_IDENTITY_MAX_FAILURES"),
    ({"ISSUER": "https://id.example/?tenant=1"}, "EGOV_IDENTITY_ISSUER", "query"),
    ({"ISSUER": "id.example"}, "EGOV_IDENTITY_ISSUER", "https URL"),
    ({"IAL_LEVELS": "1,2,2"}, "EGOV_IDENTITY_IAL_LEVELS", "duplicates"),
])
def test_inconsistent_settings_name_the_variables(monkeypatch: pytest.MonkeyPatch,
                                                  env: dict[str, str], variable: str,
                                                  also_named: str) -> None:
    error = _problem(monkeypatch, **env)
    assert error.variable == variable
    assert also_named in str(error)


def test_the_defaults_are_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    load_settings(IdentitySettings, "IDENTITY").check_consistency()


def test_a_publish_ahead_as_long_as_the_rotation_stops_start_up_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EGOV_IDENTITY_KEY_ROTATION_SECONDS", "3600")
    monkeypatch.setenv("EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS", "7200")
    assert main(["rotate-signing-key"]) == 2  # the same start-up as serving
    err = capsys.readouterr().err
    assert err.startswith("egov identity: configuration error: "
                          "EGOV_IDENTITY_KEY_PUBLISH_AHEAD_SECONDS: (7200) must be shorter than "
                          "EGOV_IDENTITY_KEY_ROTATION_SECONDS (3600)")
    assert "Traceback" not in err
    assert not (tmp_path / "identity.db").exists()  # checked before migrating


@pytest.mark.parametrize(("content", "problem"), [
    ("[{\"client_name\": \"no id\"}]", "entry 1 is not a client: field 'client_id'"),
    ("{\"client_id\": \"x\"}", "must be a JSON list"),
    ("[not json", "is not JSON"),
    ("[{\"client_id\": \"x\", \"subject_type\": \"secret\"}]", "entry 1 is not a client"),
])
def test_a_malformed_bootstrap_clients_file_is_a_settings_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        content: str, problem: str) -> None:
    path = tmp_path / "clients.json"
    path.write_text(content)
    monkeypatch.setenv("EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE", str(path))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "EGOV_IDENTITY_BOOTSTRAP_CLIENTS_FILE" in err and problem in err
    assert "Traceback" not in err
