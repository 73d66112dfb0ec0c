"""identity's tokens, verified with the shared fail-closed verifier (egov_pki.tokens).

- :class:`IdentityProofVerifier`: the ``authorization_proof`` of a request (an ID token,
  a representation token or an agency client's access token);
- :class:`BearerCallerVerifier`: the bearer token in call metadata becomes the call's Caller
  (agency service clients calling keys directly for an e-seal).
"""

from __future__ import annotations

from egov_common.auth import Caller, CallerKind
from egov_pki.tokens import (
    ACCESS_TOKEN_TYPE,
    HttpJwks,
    JwksSource,
    TokenVerifier,
    VerifiedToken,
)

__all__ = ["BearerCallerVerifier", "IdentityProofVerifier", "http_jwks"]


def http_jwks(url: str, issuer: str) -> HttpJwks:
    """identity's JWKS at ``url``, or, when none is configured, where its discovery says."""
    return HttpJwks(url) if url else HttpJwks.discover(issuer)


#: What an ``authorization_proof`` may be: an ID token (``typ`` JWT, a person's own proof) or
#: an access token (a representation token, an agency client's token); which one a credential
#: needs is the domain's decision (``authorize_owner``). Anything else, a token without ``typ``
#: among them, is refused here with ``TOKEN_TYPE_MISMATCH``.
PROOF_TOKEN_TYPES = ("JWT", ACCESS_TOKEN_TYPE)


class IdentityProofVerifier:
    """Signature, issuer, audience, expiry, token type: everything but the keys-specific
    policy."""

    def __init__(self, jwks: JwksSource, issuer: str, audiences: tuple[str, ...]) -> None:
        self._verifier = TokenVerifier(
            jwks, issuer=issuer, audiences=audiences, token_types=PROOF_TOKEN_TYPES
        )
        self._access_tokens = TokenVerifier(
            jwks, issuer=issuer, audiences=audiences, token_types=(ACCESS_TOKEN_TYPE,)
        )

    def verify(self, token: str) -> VerifiedToken:
        return self._verifier.verify(token)

    def verify_access_token(self, token: str) -> VerifiedToken:
        """Only an RFC 9068 access token (``typ`` ``at+jwt``): an ID token tells a portal who
        logged in and is never a credential for calling a service (OIDC Core, section 2)."""
        return self._access_tokens.verify(token)


class BearerCallerVerifier:
    """egov_common's server-side TokenVerifier protocol over the same verifier."""

    def __init__(self, proofs: IdentityProofVerifier) -> None:
        self._proofs = proofs

    def __call__(self, token: str, *, peer_service: str | None) -> Caller:
        verified = self._proofs.verify_access_token(token)
        is_client = verified.client_id is not None and verified.client_id == verified.subject
        return Caller(
            kind=CallerKind.CLIENT if is_client or verified.agency else CallerKind.PERSON,
            subject=verified.client_id or verified.subject,
            scopes=verified.scopes,
            agency=verified.agency,
            claims=dict(verified.claims),
            peer_service=peer_service,
        )
