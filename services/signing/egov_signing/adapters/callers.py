"""Bearer tokens reaching signing.

Signing makes no authorisation decision of its own: the owner's proof is checked by keys
(Authorize), the issuer's right to register by the registry, and the caller's bearer token is
forwarded to them. So a token is accepted here as an opaque credential and passed on; with
``EGOV_SIGNING_TOKEN_ISSUER`` and ``..._JWKS_URL`` set, it is verified first (fail closed).
"""

from __future__ import annotations

from egov_common.auth import Caller, CallerKind, TokenVerifier

__all__ = ["build_token_verifier"]


class _ForwardedToken:
    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        return Caller(kind=CallerKind.CLIENT, subject="forwarded-bearer", peer_service=peer_service)


class _VerifiedToken:
    def __init__(self, issuer: str, jwks_url: str, audience: str) -> None:
        from egov_pki.tokens import ACCESS_TOKEN_TYPE, HttpJwks
        from egov_pki.tokens import TokenVerifier as JwtVerifier

        jwks = HttpJwks(jwks_url) if jwks_url else HttpJwks.discover(issuer)
        self._verifier = JwtVerifier(
            jwks, issuer=issuer, audiences=[audience], token_types=[ACCESS_TOKEN_TYPE]
        )

    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        verified = self._verifier.verify(token)
        return Caller(
            kind=CallerKind.PERSON if verified.identifier else CallerKind.CLIENT,
            subject=verified.subject,
            scopes=verified.scopes,
            agency=verified.agency,
            claims=verified.claims,
            peer_service=peer_service,
        )


def build_token_verifier(*, issuer: str, jwks_url: str, audience: str) -> TokenVerifier:
    if issuer:
        return _VerifiedToken(issuer, jwks_url, audience)
    return _ForwardedToken()
