"""Which requested names go into a certificate subject: only names identity verified.

A registration authority certifies what it verified, not what an applicant typed (CAs ignore
the subject fields of a request they have not validated). Each name field is compared with the
claim identity verified in the same language:

- natural persons: the ID token's ``verified_claims.claims`` (OpenID Connect for Identity
  Assurance): ``given_name`` / ``family_name`` for the English fields, ``given_name#th`` /
  ``family_name#th`` (OIDC Core 5.2 language tags) for the Thai ones;
- juristic persons (a representative's token): the ``representation`` claim's
  ``organization_name`` (English) and ``organization_name#th`` (Thai);
- agency e-seals: the names the agency's own client asks for (its token carries no names).

A field that differs from its verified claim is refused (``NAMES_MISMATCH``, naming the
field). A field with no verified claim to compare with is left out of the certificate and
reported as omitted; when that leaves no complete name (a given and a family name in one
language, or an organisation name), the request is refused (``NAMES_UNVERIFIED``, naming the
fields that could not be checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass, replace
from typing import Any

from egov_common.errors import FieldViolation, InvalidArgument, PermissionDenied
from egov_pki.tokens import VerifiedToken

from egov_keys.domain.pki import OwnerKind

__all__ = ["CertifiedNames", "OwnerNames", "certified_names"]


@dataclass(frozen=True, slots=True)
class OwnerNames:
    given_name_th: str = ""
    family_name_th: str = ""
    given_name_en: str = ""
    family_name_en: str = ""
    organization_th: str = ""
    organization_en: str = ""


@dataclass(frozen=True, slots=True)
class CertifiedNames:
    """The names that go into the certificate, and the requested fields left out of it (their
    request field names, ``names.given_name_th``...), for the audit entry."""

    names: OwnerNames
    omitted: tuple[str, ...]


# OwnerNames field -> the request's field (CreateCredentialRequest.names, PartyNames).
_REQUEST_FIELD = {
    "given_name_th": "names.given_name_th",
    "family_name_th": "names.family_name_th",
    "given_name_en": "names.given_name_en",
    "family_name_en": "names.family_name_en",
    "organization_th": "names.organization_name_th",
    "organization_en": "names.organization_name_en",
}
_PERSON_CLAIMS = {
    "given_name_en": "given_name",
    "family_name_en": "family_name",
    "given_name_th": "given_name#th",
    "family_name_th": "family_name#th",
}
_ORGANIZATION_CLAIMS = {
    "organization_en": "organization_name",
    "organization_th": "organization_name#th",
}


def certified_names(
    kind: OwnerKind, requested: OwnerNames, proof: VerifiedToken | None
) -> CertifiedNames:
    """The names of ``requested`` that ``proof`` verifies, per the module's rules.

    Raises ``InvalidArgument`` (``NAMES_INVALID``: a control or invisible character;
    ``NAMES_MISSING``: no complete name asked for), ``PermissionDenied`` (``NAMES_MISMATCH``:
    a name differs from the one identity verified; ``NAMES_UNVERIFIED``: no complete name is
    left that identity verified).
    """
    # Control and invisible characters (NUL, new lines, bidi overrides, zero-width spaces)
    # would let a certified name read as another's: str.isprintable() is False for every one
    # of them, and True for Thai letters and marks.
    if not all(name.isprintable() for name in astuple(requested)):
        raise InvalidArgument(
            "NAMES_INVALID",
            "names may hold no control or invisible characters",
            field_violations=(FieldViolation("names", "control or invisible characters"),),
        )
    natural = kind is OwnerKind.NATURAL_PERSON
    if not _complete(kind, requested):
        needed = "given and family name" if natural else "organization name"
        raise InvalidArgument(
            "NAMES_MISSING",
            f"a {needed} is required",
            field_violations=(FieldViolation("names", needed),),
        )
    if kind is OwnerKind.ELECTRONIC_SEAL:
        # The agency's own client asks for its seal; identity gives keys no agency names.
        return CertifiedNames(requested, ())
    if natural:
        verified, relevant = _person_claims(proof), _PERSON_CLAIMS
    else:
        verified, relevant = _organization_claims(proof), _ORGANIZATION_CLAIMS
    kept: dict[str, str] = {}
    omitted: list[str] = []
    mismatched: list[str] = []
    for name in relevant:
        value = getattr(requested, name)
        if not value:
            continue
        claim = verified.get(relevant[name])
        if claim is None:
            omitted.append(name)
        elif claim != value:
            mismatched.append(name)
        else:
            kept[name] = value
    if mismatched:
        raise PermissionDenied(
            "NAMES_MISMATCH",
            "a name differs from the one identity verified: "
            + ", ".join(_REQUEST_FIELD[n] for n in mismatched),
            field_violations=[
                FieldViolation(_REQUEST_FIELD[n], "differs from the verified claim")
                for n in mismatched
            ],
            metadata={"fields": ",".join(_REQUEST_FIELD[n] for n in mismatched)},
        )
    certified = replace(OwnerNames(), **kept)
    if not _complete(kind, certified):
        raise PermissionDenied(
            "NAMES_UNVERIFIED",
            "identity verified none of these names, so they cannot be certified: "
            + ", ".join(_REQUEST_FIELD[n] for n in omitted),
            field_violations=[
                FieldViolation(_REQUEST_FIELD[n], "no verified claim to compare with")
                for n in omitted
            ],
            metadata={"fields": ",".join(_REQUEST_FIELD[n] for n in omitted)},
        )
    return CertifiedNames(certified, tuple(_REQUEST_FIELD[n] for n in omitted))


def _complete(kind: OwnerKind, names: OwnerNames) -> bool:
    if kind is OwnerKind.NATURAL_PERSON:
        return bool(
            (names.given_name_en and names.family_name_en)
            or (names.given_name_th and names.family_name_th)
        )
    return bool(names.organization_en or names.organization_th)


def _strings(source: Any, claims: Mapping[str, str]) -> dict[str, str]:
    """The non-empty string values of ``claims``' names in ``source`` (a JSON object)."""
    if not isinstance(source, Mapping):
        return {}
    return {
        claim: value
        for claim in claims.values()
        if isinstance(value := source.get(claim), str) and value
    }


def _person_claims(proof: VerifiedToken | None) -> dict[str, str]:
    if proof is None:
        return {}
    verified = proof.claims.get("verified_claims")
    return _strings(
        verified.get("claims") if isinstance(verified, Mapping) else None, _PERSON_CLAIMS
    )


def _organization_claims(proof: VerifiedToken | None) -> dict[str, str]:
    # Only a token that speaks for the juristic person (authorize_owner checked that its
    # representation is for the owner) names it.
    if proof is None or proof.representation is None:
        return {}
    return _strings(proof.claims.get("representation"), _ORGANIZATION_CLAIMS)
