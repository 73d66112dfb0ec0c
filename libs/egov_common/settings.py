"""Typed service settings from environment variables, read once at start-up.

Every service reads ``EGOV_<NAME>_*`` (``EGOV_REGISTRY_GRPC_LISTEN`` ...) and its peers'
addresses from ``EGOV_<PEER>_ADDRESS``. A service subclasses :class:`ServiceSettings`, adds its
own fields, and calls ``load_settings(RegistrySettings, "REGISTRY")`` in ``__main__``::

    class SigningSettings(ServiceSettings):
        keys_address: str = peer_address("KEYS")

Defaults that depend on the service (ports, data directory, SQLite file) are filled in by
:func:`load_settings` when the variable is unset.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import pydantic_settings
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_PORTS",
    "ServiceSettings",
    "SettingsError",
    "default_address",
    "env_name",
    "load_settings",
    "load_settings_or_exit",
    "peer_address",
    "secret_value",
]

#: Default loopback ports per service: (gRPC, HTTP); ``None`` where the service has none.
DEFAULT_PORTS: dict[str, tuple[int | None, int | None]] = {
    "IDENTITY": (50051, 8081),
    "KEYS": (50052, 8082),
    "REGISTRY": (50053, 8083),
    "SIGNING": (50054, None),
    "VERIFY_PORTAL": (None, 8080),
}

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


def secret_value(variable: str, value: pydantic.SecretStr, file: Path | None) -> tuple[str, str]:
    """A secret given in ``variable`` or in the file its ``<variable>_FILE`` names (a mounted
    Secret): (the variable it came from, the value, stripped; empty when neither is set).
    Raises SettingsError naming ``<variable>_FILE`` when that file cannot be read as text."""
    raw = value.get_secret_value().strip()
    if not raw and file is not None:
        variable += "_FILE"
        try:
            raw = file.read_text(encoding="utf-8").strip()  # whatever the locale
        except OSError as exc:
            raise SettingsError(variable, f"cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SettingsError(variable, "cannot be read: not UTF-8 text") from None
    return variable, raw


def default_address(name: str) -> str:
    """``127.0.0.1:<default gRPC port>`` of service ``name`` (``"KEYS"``)."""
    grpc_port, _ = DEFAULT_PORTS.get(name.upper(), (None, None))
    if grpc_port is None:
        raise KeyError(f"{name} has no default gRPC port")
    return f"127.0.0.1:{grpc_port}"


def peer_address(peer: str) -> Any:
    """Field for a peer's gRPC address, read from ``EGOV_<PEER>_ADDRESS`` (not the own prefix)."""
    peer = peer.upper()
    return Field(default=default_address(peer), validation_alias=f"EGOV_{peer}_ADDRESS")


def _check_host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    # ASCII digits only: str.isdigit() also takes Thai or Arabic-Indic digits, which int()
    # reads but the socket layer does not.
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())
        or not 0 <= int(port) <= 65535
    ):
        raise ValueError(f"expected host:port, the port 0 to 65535 in ASCII digits, got {value!r}")
    return value


#: Longest duration setting (seconds): longer is a mistake, and grpc or uvicorn overflow on
#: values far above it (``inf``, ``1e10``) long after start-up.
_MAX_SECONDS = 3600.0
#: gRPC's message size limits are C ints.
_MAX_MESSAGE_BYTES = 2**31 - 1


class ServiceSettings(BaseSettings):
    """Settings every service honours. All durations are seconds, sizes bytes."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=False, env_ignore_empty=False
    )

    #: Lower-case service name (``registry``); set by :func:`load_settings`.
    service_name: str = ""
    #: gRPC listen address, ``host:port`` (port 0 picks a free one).
    grpc_listen: str = "127.0.0.1:0"
    #: HTTP listen address for services with HTTP endpoints; empty = no HTTP server.
    http_listen: str = ""
    #: SQLAlchemy URL; default ``sqlite:///<data_dir>/<service>.db``.
    database_url: str = ""
    #: Directory for the service's files (SQLite database, dev TLS material).
    data_dir: Path = Path(".data")
    log_level: str = "INFO"
    #: How long in-flight calls may run after SIGTERM before the server stops hard (at most
    #: an hour).
    grace_period: float = Field(default=10.0, ge=0, le=_MAX_SECONDS, allow_inf_nan=False)
    #: Largest gRPC message accepted or sent; larger ones fail with RESOURCE_EXHAUSTED. At most
    #: 2**31 - 1 (gRPC's limit).
    max_message_bytes: int = Field(default=8 * 1024 * 1024, gt=0, le=_MAX_MESSAGE_BYTES)
    #: Deadline for outgoing calls that have no incoming deadline to inherit (at most an hour).
    default_deadline: float = Field(default=30.0, gt=0, le=_MAX_SECONDS, allow_inf_nan=False)
    #: Connections to each peer service, taking outgoing calls in turn: a peer serving from
    #: several processes has each connection served by one of them, chosen by its kernel.
    peer_connections: int = Field(default=4, ge=1, le=32)
    #: gRPC calls that run at once, each on a worker thread (``egov_common.executor``).
    max_workers: int = Field(default=16, gt=0, le=1024)
    #: Worker threads in all: above ``max_workers`` only while calls wait (``blocking()``,
    #: e.g. for their group commit), when another call takes the waiting one's place.
    max_threads: int = Field(default=64, gt=0, le=4096)
    #: Calls that may wait for a worker while every worker is taken. One more is refused at
    #: once with RESOURCE_EXHAUSTED (reason ``SERVER_BUSY``) instead of queueing without bound;
    #: health checks are never queued behind calls (they have threads of their own).
    max_queued_calls: int = Field(default=256, ge=0, le=100_000)
    #: Seconds a client-streaming call may go without sending its next message (or its end)
    #: while the servicer waits for it; then the call is ended (CANCELLED, logged with reason
    #: ``CLIENT_STREAM_IDLE``) and its worker freed. At most an hour.
    stream_idle_timeout: float = Field(
        default=30.0, gt=0, le=_MAX_SECONDS, allow_inf_nan=False
    )
    #: Processes serving gRPC (and HTTP) on the same ports (SO_REUSEPORT): a Python gRPC server
    #: uses one core, so N workers use up to N. 1 = this process serves (no worker processes).
    processes: int = Field(default=1, ge=1, le=64)

    #: ``off``: plaintext on loopback (development); ``mtls``: mutual TLS, service CA.
    tls_mode: Literal["off", "mtls"] = "off"
    #: Directory of the internal service CA (``ca.pem``, ``ca.key``); a dev CA is created there on
    #: first run when it is empty. Default: ``<data_dir>/../service-ca``.
    tls_ca_dir: Path | None = None
    #: Production: certificate files mounted from a secret; they override the dev CA.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    #: Write finished spans as JSON lines to this file (tests, debugging). OTLP export is
    #: configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables.
    trace_file: Path | None = None

    @field_validator("grpc_listen")
    @classmethod
    def _grpc_listen(cls, value: str) -> str:
        return _check_host_port(value)

    @field_validator("http_listen")
    @classmethod
    def _http_listen(cls, value: str) -> str:
        return _check_host_port(value) if value else value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"expected one of {sorted(_LOG_LEVELS)}, got {value!r}")
        return value.upper()

    @property
    def service_ca_dir(self) -> Path:
        """Where the internal service CA lives (see ``tls_ca_dir``)."""
        return self.tls_ca_dir or self.data_dir.parent / "service-ca"


S = TypeVar("S", bound=ServiceSettings)


def env_name(settings_cls: type[ServiceSettings], prefix: str, field: str) -> str:
    """The environment variable that sets ``field`` of ``settings_cls`` under ``prefix``."""
    info = settings_cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    return f"EGOV_{prefix}_{field}".upper()


def load_settings(settings_cls: type[S], name: str) -> S:
    """Read ``settings_cls`` from ``EGOV_<NAME>_*`` environment variables (and peers' addresses).

    Raises :class:`SettingsError` naming the first missing or malformed variable. Tests set
    variables with ``monkeypatch.setenv``.
    """
    prefix = name.upper()
    env_prefix = f"EGOV_{prefix}_"
    kwargs: dict[str, Any] = {"_env_prefix": env_prefix}
    try:
        settings = settings_cls(**kwargs)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        variable = env_name(settings_cls, prefix, field) if field else env_prefix + "*"
        problem = "is required but not set" if err["type"] == "missing" else err["msg"]
        raise SettingsError(variable, problem) from None
    except pydantic_settings.SettingsError as exc:
        field = _field_in_message(settings_cls, str(exc))
        variable = env_name(settings_cls, prefix, field) if field else env_prefix + "*"
        raise SettingsError(variable, "is not valid JSON for this setting") from None
    return _with_service_defaults(settings, prefix)


def _field_in_message(settings_cls: type[ServiceSettings], message: str) -> str:
    for field in settings_cls.model_fields:
        if f'"{field}"' in message:
            return field
    return ""


def _with_service_defaults(settings: S, prefix: str) -> S:
    unset = set(type(settings).model_fields) - settings.model_fields_set
    grpc_port, http_port = DEFAULT_PORTS.get(prefix, (None, None))
    service = prefix.lower()
    update: dict[str, Any] = {}
    if "service_name" in unset:
        update["service_name"] = service
    if "grpc_listen" in unset and grpc_port is not None:
        update["grpc_listen"] = f"127.0.0.1:{grpc_port}"
    if "http_listen" in unset and http_port is not None:
        update["http_listen"] = f"127.0.0.1:{http_port}"
    data_dir = settings.data_dir
    if "data_dir" in unset:
        data_dir = Path(".data") / service
        update["data_dir"] = data_dir
    if "database_url" in unset:
        update["database_url"] = f"sqlite:///{(data_dir / f'{service}.db').as_posix()}"
    return settings.model_copy(update=update) if update else settings


def describe(settings: ServiceSettings) -> str:
    """The settings as one JSON line for the start-up log (no secrets are settings)."""
    return json.dumps(settings.model_dump(mode="json"), sort_keys=True)


def load_settings_or_exit(settings_cls: type[S], name: str) -> S:
    """:func:`load_settings` for ``__main__``: on a bad setting, print one line naming the
    variable to stderr and exit with status 2 (no traceback)."""
    try:
        return load_settings(settings_cls, name)
    except SettingsError as exc:
        print(f"egov {name.lower()}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
