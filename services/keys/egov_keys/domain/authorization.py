"""Who may create, use and revoke a credential (sole control, DESIGN.md "keys").

- natural person: the owner's own ID token from identity (never an access token: an access
  token is for calling a service, and any client the person used holds one); ``acr`` >= AAL2
  and a recent ``auth_time`` to sign, to manage (revoke, list) and to be issued a credential;
  IAL >= 2.3 (configurable) to have a credential issued;
- juristic person: a representative's token (identity's token exchange issues it as an access
  token) whose representation (RFC 8693 ``act``) is for that company and carries the ``sign``
  power, with the same AAL and login age;
- agency e-seal: the agency's service client (access token or mTLS caller) with the seal scope,
  for its own agency;
- an operator's client with the admin scope (an access token, or the caller) may manage any.

A proof of the wrong type is refused with ``TOKEN_TYPE_MISMATCH``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from egov_common.auth import Caller, CallerKind
from egov_common.errors import PermissionDenied, Unauthenticated
from egov_pki.identifiers import Identifier
from egov_pki.tokens import ACCESS_TOKEN_TYPE, VerifiedToken

from egov_keys.domain.pki import OwnerKind

__all__ = ["AssurancePolicy", "ProofVerifier", "Purpose", "authorize_owner", "caller_label"]


_CLOCK_SKEW_SECONDS = 60.0


class ProofVerifier(Protocol):
    """Verifies a token from identity (signature, issuer, audience, expiry): egov_pki.tokens."""

    def verify(self, token: str) -> VerifiedToken: ...


@dataclass(frozen=True, slots=True)
class AssurancePolicy:
    min_aal: int = 2
    #: IAL needed to have a natural-person credential issued (ordered by ``ial_order``).
    min_ial_issue: str = "2.3"
    ial_order: tuple[str, ...] = ("1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "3")
    #: How old the login behind a signing authorisation (or an issuance) may be.
    max_auth_age: dt.timedelta = dt.timedelta(minutes=10)
    #: How old the login behind a revocation or a listing of credentials may be.
    max_manage_auth_age: dt.timedelta = dt.timedelta(minutes=10)
    sign_power: str = "sign"
    seal_scope: str = "keys:seal"
    admin_scope: str = "keys:admin"

    def ial_at_least(self, ial: str | None, minimum: str) -> bool:
        if ial is None or ial not in self.ial_order:
            return False
        return self.ial_order.index(ial) >= self.ial_order.index(minimum)


class Purpose:
    ISSUE = "issue"
    SIGN = "sign"
    MANAGE = "manage"


def caller_label(caller: Caller) -> str:
    """How the audit log names a caller (service or client id; persons stay unnamed)."""
    if caller.kind is CallerKind.PERSON:
        return "person"
    if caller.peer_service and caller.kind is not CallerKind.SERVICE:
        return f"{caller.kind.value}:{caller.subject}@{caller.peer_service}"
    return f"{caller.kind.value}:{caller.subject}" if caller.subject else caller.kind.value


def _same_party(claimed: str | None, owner: Identifier) -> bool:
    if not claimed:
        return False
    # Agencies may be named "TH-JUR:<n>" or bare "<n>" in client registrations.
    return claimed == str(owner) or claimed == owner.value


def _media_type(typ: str | None) -> str:
    """A header ``typ`` as the media type it names (RFC 7515, section 4.1.9: case-insensitive,
    ``application/`` implied)."""
    lowered = (typ or "").lower()
    return lowered.removeprefix("application/")


def _is_access_token(proof: VerifiedToken) -> bool:
    return _media_type(proof.token_type) == ACCESS_TOKEN_TYPE


def _is_id_token(proof: VerifiedToken) -> bool:
    # identity signs its ID tokens with ``typ`` JWT (RFC 7519, section 5.1).
    return _media_type(proof.token_type) == "jwt"


def _type_mismatch(wanted: str) -> Unauthenticated:
    return Unauthenticated("TOKEN_TYPE_MISMATCH", f"the proof must be {wanted}")


def _require_recent_login(proof: VerifiedToken, max_age: dt.timedelta, now: dt.datetime) -> None:
    if proof.auth_time is None:
        raise PermissionDenied("AUTH_TIME_TOO_OLD", "the token carries no auth_time")
    age = now.timestamp() - proof.auth_time
    if age > max_age.total_seconds() or age < -_CLOCK_SKEW_SECONDS:
        # A login "in the future" is as untrustworthy as a stale one.
        raise PermissionDenied("AUTH_TIME_TOO_OLD", "the login is not recent enough")


def authorize_owner(
    *,
    owner: Identifier,
    kind: OwnerKind,
    purpose: str,
    proof: VerifiedToken | None,
    caller: Caller,
    policy: AssurancePolicy,
    now: dt.datetime,
    owner_subject: str = "",
) -> str:
    """Check that ``proof`` (or, for seals, the caller) speaks for ``owner``.

    ``owner_subject``: the identity ``sub`` that had the credential issued; to sign, a token
    without the ``identifier`` claim may prove the owner by that ``sub`` instead (issuing always
    needs the identifier, which goes into the certificate).
    Returns an actor label for the audit log (no personal data). Raises PermissionDenied or
    Unauthenticated with the reason the RPC contract names.
    """
    if kind is OwnerKind.ELECTRONIC_SEAL:
        if proof is not None:
            if not _is_access_token(proof):
                raise _type_mismatch("the agency client's access token")
            scopes, agency = proof.scopes, proof.agency
            who = f"client:{proof.client_id or proof.subject}"
        else:
            scopes, agency, who = caller.scopes, caller.agency, caller_label(caller)
        if purpose == Purpose.MANAGE and policy.admin_scope in scopes:
            return who
        if policy.seal_scope not in scopes:
            if proof is None and caller.is_anonymous:
                raise Unauthenticated("PROOF_MISSING", "an e-seal needs the agency's client token")
            raise PermissionDenied("SCOPE_MISSING", "the caller lacks the seal scope")
        if not _same_party(agency, owner):
            raise PermissionDenied("OWNER_MISMATCH", "the client belongs to another agency")
        return who
    if proof is None:
        if purpose == Purpose.MANAGE and policy.admin_scope in caller.scopes:
            return caller_label(caller)
        raise Unauthenticated("PROOF_MISSING", "an ID or representation token is required")
    if purpose == Purpose.MANAGE and policy.admin_scope in proof.scopes and _is_access_token(proof):
        return f"client:{proof.client_id or proof.subject}"
    if kind is OwnerKind.NATURAL_PERSON and not _is_id_token(proof):
        raise _type_mismatch("the owner's ID token")
    if (proof.aal or 0) < policy.min_aal:
        raise PermissionDenied("AAL_TOO_LOW", f"authentication below AAL{policy.min_aal}")
    _require_recent_login(
        proof,
        policy.max_manage_auth_age if purpose == Purpose.MANAGE else policy.max_auth_age,
        now,
    )
    if kind is OwnerKind.NATURAL_PERSON:
        same = _same_party(proof.identifier, owner) or (
            purpose != Purpose.ISSUE
            and proof.identifier is None
            and bool(owner_subject)
            and proof.subject == owner_subject
        )
        if proof.representation is not None or not same:
            raise PermissionDenied("OWNER_MISMATCH", "the token is not the credential owner's")
        if purpose == Purpose.ISSUE and not policy.ial_at_least(proof.ial, policy.min_ial_issue):
            raise PermissionDenied(
                "IAL_TOO_LOW", f"identity assurance below IAL {policy.min_ial_issue}"
            )
        return "person"
    rep = proof.representation
    if rep is None or not _same_party(rep.juristic_person, owner):
        raise PermissionDenied("NOT_REPRESENTATIVE", "the token does not act for this company")
    if not _is_access_token(proof):
        # identity's token exchange issues representation tokens as access tokens only.
        raise _type_mismatch("a representation token from identity's token exchange")
    if policy.sign_power not in rep.powers:
        raise PermissionDenied("NOT_REPRESENTATIVE", "the representation lacks the sign power")
    return f"representative:{rep.grant_id or 'grant'}"
