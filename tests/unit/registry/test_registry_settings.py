"""The registry's own settings are bounded like every service's."""

from __future__ import annotations

import pytest
from egov_common.settings import SettingsError, load_settings
from egov_registry.settings import RegistrySettings


def test_a_worker_count_no_server_could_start_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The registry overrides ServiceSettings.max_workers (for its default); its bound went with
    # the override, so a mistyped count failed later, inside gRPC, naming nothing.
    monkeypatch.setenv("EGOV_REGISTRY_MAX_WORKERS", "5000")
    with pytest.raises(SettingsError) as exc:
        load_settings(RegistrySettings, "REGISTRY")
    assert exc.value.variable == "EGOV_REGISTRY_MAX_WORKERS"
    monkeypatch.setenv("EGOV_REGISTRY_MAX_WORKERS", "1024")
    assert load_settings(RegistrySettings, "REGISTRY").max_workers == 1024
