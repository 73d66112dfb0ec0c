from __future__ import annotations

from pathlib import Path

import pytest
from egov_common.settings import ServiceSettings, SettingsError, load_settings, peer_address


class _SigningSettings(ServiceSettings):
    keys_address: str = peer_address("KEYS")
    hsm_slot: int


def test_defaults_follow_the_design_ports_and_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_SIGNING_HSM_SLOT", "1")
    settings = load_settings(_SigningSettings, "SIGNING")
    assert settings.service_name == "signing"
    assert settings.grpc_listen == "127.0.0.1:50054"
    assert settings.http_listen == ""
    assert settings.keys_address == "127.0.0.1:50052"
    assert settings.data_dir == Path(".data/signing")
    assert settings.database_url == "sqlite:///.data/signing/signing.db"


def test_registry_defaults_include_http(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(ServiceSettings, "REGISTRY")
    assert (settings.grpc_listen, settings.http_listen) == ("127.0.0.1:50053", "127.0.0.1:8083")


def test_variables_override_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EGOV_SIGNING_HSM_SLOT", "7")
    monkeypatch.setenv("EGOV_SIGNING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EGOV_SIGNING_GRPC_LISTEN", "0.0.0.0:6000")
    monkeypatch.setenv("EGOV_KEYS_ADDRESS", "keys.internal:443")
    settings = load_settings(_SigningSettings, "SIGNING")
    assert settings.hsm_slot == 7
    assert settings.grpc_listen == "0.0.0.0:6000"
    assert settings.keys_address == "keys.internal:443"
    assert settings.database_url == f"sqlite:///{tmp_path}/signing.db"


def test_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EGOV_SIGNING_HSM_SLOT", raising=False)
    with pytest.raises(SettingsError, match="EGOV_SIGNING_HSM_SLOT") as exc:
        load_settings(_SigningSettings, "SIGNING")
    assert exc.value.variable == "EGOV_SIGNING_HSM_SLOT"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EGOV_SIGNING_HSM_SLOT", "not-a-number"),
        ("EGOV_SIGNING_GRPC_LISTEN", "no-port"),
        ("EGOV_SIGNING_LOG_LEVEL", "LOUD"),
        ("EGOV_SIGNING_TLS_MODE", "sometimes"),
        ("EGOV_SIGNING_GRACE_PERIOD", "-1"),
        ("EGOV_SIGNING_PROCESSES", "0"),
    ],
)
def test_malformed_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("EGOV_SIGNING_HSM_SLOT", "1")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as exc:
        load_settings(_SigningSettings, "SIGNING")
    assert exc.value.variable == variable
    assert variable in str(exc.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # each of these was accepted and crashed (or failed every call) later, far from the cause
        ("EGOV_SIGNING_GRACE_PERIOD", "inf"),
        ("EGOV_SIGNING_GRACE_PERIOD", "1e400"),
        ("EGOV_SIGNING_GRACE_PERIOD", "nan"),
        ("EGOV_SIGNING_DEFAULT_DEADLINE", "inf"),
        ("EGOV_SIGNING_DEFAULT_DEADLINE", "1e10"),
        ("EGOV_SIGNING_MAX_MESSAGE_BYTES", "4294967296"),
        ("EGOV_SIGNING_MAX_WORKERS", "100000000000"),
        ("EGOV_SIGNING_MAX_THREADS", "100000000000"),
        ("EGOV_SIGNING_MAX_QUEUED_CALLS", "-1"),
        ("EGOV_SIGNING_STREAM_IDLE_TIMEOUT", "0"),
        ("EGOV_SIGNING_STREAM_IDLE_TIMEOUT", "inf"),
        ("EGOV_SIGNING_GRPC_LISTEN", "127.0.0.1:٥٠٠٥١"),  # Arabic-Indic digits: isdigit() is True
        ("EGOV_SIGNING_GRPC_LISTEN", "127.0.0.1:²"),
        ("EGOV_SIGNING_HTTP_LISTEN", "127.0.0.1:๘๐๘๐"),  # Thai digits
    ],
)
def test_a_value_that_would_fail_later_is_refused_at_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("EGOV_SIGNING_HSM_SLOT", "1")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as exc:
        load_settings(_SigningSettings, "SIGNING")
    assert exc.value.variable == variable


def test_the_largest_accepted_values_are_usable() -> None:
    settings = ServiceSettings(
        grace_period=3600,
        default_deadline=3600,
        max_message_bytes=2**31 - 1,
        stream_idle_timeout=3600,
        grpc_listen="[::1]:65535",
    )
    assert settings.max_message_bytes == 2**31 - 1
