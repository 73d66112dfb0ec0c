"""Who may do what: bearer tokens and mTLS service identities -> ``Caller`` -> domain ``Actor``.

The server's interceptor calls the :class:`~egov_common.auth.TokenVerifier` built here; the
servicer turns the resulting ``current_caller()`` into an :class:`Actor`, adding what settings
grant to mTLS service identities.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from egov_common.auth import Caller, CallerKind, TokenVerifier
from egov_common.errors import Unauthenticated

from ..domain.model import Actor
from ..domain.rules import ISSUE_POWER

__all__ = ["StaticTokenVerifier", "actor_for", "build_token_verifier"]


class StaticTokenVerifier:
    """Fixed tokens for development and tests; compared in constant time."""

    def __init__(self, tokens: Mapping[str, Mapping[str, Any]]) -> None:
        self._tokens = {token: dict(spec) for token, spec in tokens.items()}

    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        for known, spec in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return Caller(
                    kind=CallerKind(spec.get("kind", CallerKind.CLIENT.value)),
                    subject=str(spec.get("subject", "")),
                    scopes=frozenset(spec.get("scopes", ())),
                    agency=spec.get("agency"),
                    peer_service=peer_service,
                )
        raise Unauthenticated("TOKEN_INVALID", "the bearer token is not recognised")


def _jwt_verifier(issuer: str, jwks_url: str, audience: str) -> TokenVerifier:
    """identity's access tokens (never its ID tokens) through the shared fail-closed verifier
    of egov_pki.tokens."""
    from egov_pki.tokens import ACCESS_TOKEN_TYPE, BearerTokenVerifier, HttpJwks
    from egov_pki.tokens import TokenVerifier as JwtVerifier

    jwks = HttpJwks(jwks_url) if jwks_url else HttpJwks.discover(issuer)
    return BearerTokenVerifier(JwtVerifier(
        jwks, issuer=issuer, audiences=[audience], token_types=[ACCESS_TOKEN_TYPE]
    ))


class _FirstThatKnows:
    def __init__(self, static: StaticTokenVerifier, jwt: TokenVerifier) -> None:
        self._static, self._jwt = static, jwt

    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        try:
            return self._static(token, peer_service=peer_service)
        except Unauthenticated:
            return self._jwt(token, peer_service=peer_service)


def build_token_verifier(
    *, static_tokens: Mapping[str, Mapping[str, Any]], issuer: str, jwks_url: str, audience: str
) -> TokenVerifier | None:
    """The verifier settings ask for: static tokens, identity's JWTs, both, or none."""
    static = StaticTokenVerifier(static_tokens) if static_tokens else None
    jwt = _jwt_verifier(issuer, jwks_url, audience) if issuer else None
    if static and jwt:
        return _FirstThatKnows(static, jwt)
    return static or jwt


def actor_for(caller: Caller, trusted_services: Mapping[str, Mapping[str, Any]]) -> Actor:
    """The domain's view of a caller; mTLS services get the scopes settings grant them.

    A grant goes only to the service its certificate names (``peer_service``): a ``service``
    caller made from a bearer token (a development static token) proves no certificate. A
    person acting for a company (a representation token) acts for it here only if the grant
    has the power to register its documents.
    """
    scopes = set(caller.scopes)
    agency = caller.agency or ""
    representation = caller.claims.get("representation")
    if isinstance(representation, Mapping) and ISSUE_POWER not in representation.get("powers", ()):
        agency = ""
    any_agency = False
    if (
        caller.kind is CallerKind.SERVICE
        and caller.peer_service == caller.subject
        and caller.subject in trusted_services
    ):
        grant = trusted_services[caller.subject]
        scopes.update(grant.get("scopes", ()))
        granted_agency = str(grant.get("agency", ""))
        any_agency = granted_agency == "*"
        agency = agency or ("" if any_agency else granted_agency)
    subject = caller.subject or caller.kind.value
    act = caller.claims.get("act")
    if isinstance(act, Mapping) and isinstance(act.get("sub"), str):
        # A person acting for the agency (RFC 8693 act): the history names who acted, by the
        # subject identity gave (never the national id).
        subject = f"{subject} acted for by {act['sub']}"
    if caller.peer_service and caller.kind is not CallerKind.SERVICE:
        subject = f"{subject} via {caller.peer_service}"
    return Actor(subject=subject, scopes=frozenset(scopes), agency=agency, any_agency=any_agency)
