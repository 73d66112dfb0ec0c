"""Who is calling: a :class:`Caller` per gRPC call, read with :func:`current_caller`.

The server sets it before the servicer runs, from the mTLS peer certificate of the internal
service CA (kind ``service``, subject = the service name its DNS subjectAltNames carry, as
cert-manager writes them: ``egov_common.tls.service_name``; a certificate naming no single
service gives no service identity) and from a bearer token in ``authorization`` metadata
verified by the service's :class:`TokenVerifier` (kind ``person`` or ``client``;
``peer_service`` keeps the service that forwarded it). Otherwise the caller is anonymous.
Authorisation (who may call what) is the servicer's decision.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "ANONYMOUS",
    "Caller",
    "CallerKind",
    "TokenVerifier",
    "caller_scope",
    "current_caller",
]


class CallerKind(enum.StrEnum):
    SERVICE = "service"
    CLIENT = "client"
    PERSON = "person"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of the current call.

    ``subject``: service name, OAuth client id, or the person's ``sub``; ``scopes``: granted
    scopes; ``agency``: the juristic person the caller acts for, if any; ``claims``: the verified
    token claims (never logged); ``peer_service``: the mTLS service that carried the call.
    """

    kind: CallerKind
    subject: str = ""
    scopes: frozenset[str] = frozenset()
    agency: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    peer_service: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind is CallerKind.ANONYMOUS

    def is_service(self, name: str) -> bool:
        """True when the call came over mTLS from service ``name`` (``"signing"``)."""
        return self.peer_service == name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Caller(kind=CallerKind.ANONYMOUS)

#: The caller of the call being served (set by the server per call; read ``current_caller()``).
caller_var: contextvars.ContextVar[Caller] = contextvars.ContextVar(
    "egov_caller", default=ANONYMOUS
)


class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Caller`.

    Raises ``egov_common.errors.Unauthenticated`` (reason e.g. ``TOKEN_INVALID``,
    ``TOKEN_EXPIRED``) when the token is not acceptable; the call then fails with that status.
    ``peer_service`` is the mTLS service that carried the token, or ``None``.
    """

    def __call__(self, token: str, *, peer_service: str | None) -> Caller: ...


def current_caller() -> Caller:
    """The caller of the gRPC call being served (``ANONYMOUS`` outside a call)."""
    return caller_var.get()


@contextlib.contextmanager
def caller_scope(caller: Caller) -> Iterator[Caller]:
    """Make ``caller`` current for the block (the server does this; tests of servicers too)."""
    token = caller_var.set(caller)
    try:
        yield caller
    finally:
        caller_var.reset(token)
