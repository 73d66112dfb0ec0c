"""Identity proofing: evidence checked by verifier plugins against authoritative sources.

Each evidence kind has a verifier behind one interface (:class:`EvidenceVerifier`). A verifier
confirms the evidence with a source and compares the attributes read from the evidence (names,
birth date) with the source's: a difference is a MISMATCH with a reason, and any mismatch fails
the session (``EVIDENCE_CONFLICT``). The IAL reached follows from which kinds were verified
(:data:`IAL_RULES`), capped to the configured ordered list.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from egov_pki.identifiers import Identifier, Namespace

from egov_identity.adapters.sources import CivilRegistry, KycProviders, RegisteredPerson


class EvidenceKind(enum.StrEnum):
    ID_CARD_CHIP = "id_card_chip"
    PASSPORT = "passport"
    IDP_KYC = "idp_kyc"
    IN_PERSON = "in_person"


class EvidenceOutcome(enum.StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    MISMATCH = "mismatch"


class ProofingState(enum.StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PersonAttributes:
    given_name_th: str = ""
    family_name_th: str = ""
    given_name_en: str = ""
    family_name_en: str = ""
    birth_date: str = ""  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class IdCardChipEvidence:
    national_id: str
    attributes: PersonAttributes
    laser_code: str
    expiry_date: str


@dataclass(frozen=True, slots=True)
class PassportEvidence:
    document_number: str
    issuing_country: str
    attributes: PersonAttributes
    expiry_date: str
    chip_verified: bool


@dataclass(frozen=True, slots=True)
class IdpKycEvidence:
    provider: str
    assertion: str  # a JWT signed by the provider


@dataclass(frozen=True, slots=True)
class InPersonEvidence:
    officer_id: str
    location: str
    attributes: PersonAttributes
    photo_match: bool


Evidence = IdCardChipEvidence | PassportEvidence | IdpKycEvidence | InPersonEvidence

KIND_OF: Mapping[type, EvidenceKind] = {
    IdCardChipEvidence: EvidenceKind.ID_CARD_CHIP,
    PassportEvidence: EvidenceKind.PASSPORT,
    IdpKycEvidence: EvidenceKind.IDP_KYC,
    InPersonEvidence: EvidenceKind.IN_PERSON,
}


@dataclass(frozen=True, slots=True)
class EvidenceResult:
    """The recorded outcome of one piece of evidence; ``strength`` feeds the IAL rules
    (``chip``, ``passport``, ``passport_chip``, ``kyc``, ``in_person``)."""

    kind: EvidenceKind
    outcome: EvidenceOutcome
    reason: str
    source: str
    verified_at: float
    strength: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "outcome": self.outcome.value, "reason": self.reason,
                "source": self.source, "verified_at": self.verified_at,
                "strength": self.strength}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvidenceResult:
        return cls(EvidenceKind(data["kind"]), EvidenceOutcome(data["outcome"]), data["reason"],
                   data["source"], float(data["verified_at"]), data.get("strength", ""))


class EvidenceVerifier(Protocol):
    """Checks one kind of evidence about ``subject`` against an authoritative source."""

    kind: EvidenceKind

    def verify(self, subject: Identifier, evidence: Evidence, now: dt.datetime) -> EvidenceResult:
        ...


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def compare_attributes(claimed: PersonAttributes, source: RegisteredPerson) -> str:
    """``""`` when every attribute the evidence states matches the source, else the reason
    (``NAME_MISMATCH`` or ``BIRTH_DATE_MISMATCH``). Empty attributes are not compared."""
    if claimed.birth_date and claimed.birth_date != source.birth_date:
        return "BIRTH_DATE_MISMATCH"
    pairs = [
        (claimed.given_name_th, source.given_name_th),
        (claimed.family_name_th, source.family_name_th),
        (claimed.given_name_en, source.given_name_en),
        (claimed.family_name_en, source.family_name_en),
    ]
    for said, known in pairs:
        if said and _norm(said) != _norm(known):
            return "NAME_MISMATCH"
    return ""


def _result(kind: EvidenceKind, outcome: EvidenceOutcome, reason: str, source: str,
            now: dt.datetime, strength: str = "") -> EvidenceResult:
    return EvidenceResult(kind, outcome, reason, source, now.timestamp(), strength)


def _expired(date_text: str, now: dt.datetime) -> bool:
    try:
        return dt.date.fromisoformat(date_text) < now.date()
    except ValueError:
        return True


class IdCardChipVerifier:
    kind = EvidenceKind.ID_CARD_CHIP

    def __init__(self, registry: CivilRegistry) -> None:
        self._registry = registry

    def verify(self, subject: Identifier, evidence: Evidence, now: dt.datetime) -> EvidenceResult:
        assert isinstance(evidence, IdCardChipEvidence)
        src = self._registry.name
        if subject.namespace is not Namespace.TH_PID or evidence.national_id != subject.value:
            return _result(self.kind, EvidenceOutcome.MISMATCH, "IDENTIFIER_MISMATCH", src, now)
        known = self._registry.person(str(subject))
        if known is None:
            return _result(self.kind, EvidenceOutcome.REJECTED, "NOT_IN_SOURCE", src, now)
        if known.document_revoked or evidence.laser_code != known.card_laser_code:
            return _result(self.kind, EvidenceOutcome.REJECTED, "CARD_NOT_VALID", src, now)
        if _expired(evidence.expiry_date, now):
            return _result(self.kind, EvidenceOutcome.REJECTED, "DOCUMENT_EXPIRED", src, now)
        mismatch = compare_attributes(evidence.attributes, known)
        if mismatch:
            return _result(self.kind, EvidenceOutcome.MISMATCH, mismatch, src, now)
        return _result(self.kind, EvidenceOutcome.VERIFIED, "", src, now, "chip")


class PassportVerifier:
    kind = EvidenceKind.PASSPORT

    def __init__(self, registry: CivilRegistry) -> None:
        self._registry = registry

    def verify(self, subject: Identifier, evidence: Evidence, now: dt.datetime) -> EvidenceResult:
        assert isinstance(evidence, PassportEvidence)
        src = self._registry.name
        doc = f"PASSPORT:{evidence.issuing_country.upper()}:{evidence.document_number.upper()}"
        if subject.namespace is not Namespace.PASSPORT or doc != str(subject):
            return _result(self.kind, EvidenceOutcome.MISMATCH, "IDENTIFIER_MISMATCH", src, now)
        known = self._registry.person(doc)
        if known is None:
            return _result(self.kind, EvidenceOutcome.REJECTED, "NOT_IN_SOURCE", src, now)
        if known.document_revoked:
            return _result(self.kind, EvidenceOutcome.REJECTED, "DOCUMENT_REVOKED", src, now)
        if _expired(evidence.expiry_date, now):
            return _result(self.kind, EvidenceOutcome.REJECTED, "DOCUMENT_EXPIRED", src, now)
        mismatch = compare_attributes(evidence.attributes, known)
        if mismatch:
            return _result(self.kind, EvidenceOutcome.MISMATCH, mismatch, src, now)
        strength = "passport_chip" if evidence.chip_verified else "passport"
        return _result(self.kind, EvidenceOutcome.VERIFIED, "", src, now, strength)


class IdpKycVerifier:
    """A bank's / IdP's signed KYC assertion (JWT: ``sub`` = namespaced identifier, names,
    ``birthdate``), verified with the provider's registered keys."""

    kind = EvidenceKind.IDP_KYC

    def __init__(self, providers: KycProviders, registry: CivilRegistry, audience: str) -> None:
        self._providers = providers
        self._registry = registry
        self._audience = audience

    def verify(self, subject: Identifier, evidence: Evidence, now: dt.datetime) -> EvidenceResult:
        assert isinstance(evidence, IdpKycEvidence)
        src = evidence.provider
        jwks = self._providers.jwks(evidence.provider)
        if jwks is None:
            return _result(self.kind, EvidenceOutcome.REJECTED, "PROVIDER_UNKNOWN", src, now)
        try:
            claims = _verify_kyc(evidence.assertion, jwks, self._audience, now)
        except jwt.PyJWTError:
            return _result(self.kind, EvidenceOutcome.REJECTED, "ASSERTION_INVALID", src, now)
        if claims.get("sub") != str(subject):
            return _result(self.kind, EvidenceOutcome.MISMATCH, "IDENTIFIER_MISMATCH", src, now)
        known = self._registry.person(str(subject))
        if known is None:
            return _result(self.kind, EvidenceOutcome.REJECTED, "NOT_IN_SOURCE", src, now)
        said = PersonAttributes(
            given_name_en=str(claims.get("given_name", "")),
            family_name_en=str(claims.get("family_name", "")),
            birth_date=str(claims.get("birthdate", "")),
        )
        mismatch = compare_attributes(said, known)
        if mismatch:
            return _result(self.kind, EvidenceOutcome.MISMATCH, mismatch, src, now)
        return _result(self.kind, EvidenceOutcome.VERIFIED, "", src, now, "kyc")


def _verify_kyc(assertion: str, jwks: Mapping[str, Any], audience: str,
                now: dt.datetime) -> dict[str, Any]:
    header = jwt.get_unverified_header(assertion)
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == header.get("kid"):
            key = jwt.PyJWK(jwk).key
            claims: dict[str, Any] = jwt.decode(
                assertion, key, algorithms=["ES256", "RS256"], audience=audience,
                options={"require": ["exp", "iat", "sub"], "verify_iat": False},
                leeway=dt.timedelta(seconds=30),
            )
            if claims["exp"] < now.timestamp() - 30:
                raise jwt.ExpiredSignatureError("expired")
            return claims
    raise jwt.InvalidKeyError("unknown kid")


class InPersonVerifier:
    """An officer's check of the physical document and the face against the photo."""

    kind = EvidenceKind.IN_PERSON

    def __init__(self, registry: CivilRegistry) -> None:
        self._registry = registry

    def verify(self, subject: Identifier, evidence: Evidence, now: dt.datetime) -> EvidenceResult:
        assert isinstance(evidence, InPersonEvidence)
        src = "officer"
        if not evidence.officer_id:
            return _result(self.kind, EvidenceOutcome.REJECTED, "OFFICER_MISSING", src, now)
        if not evidence.photo_match:
            return _result(self.kind, EvidenceOutcome.REJECTED, "PHOTO_NOT_MATCHED", src, now)
        known = self._registry.person(str(subject))
        if known is None:
            return _result(self.kind, EvidenceOutcome.REJECTED, "NOT_IN_SOURCE", src, now)
        mismatch = compare_attributes(evidence.attributes, known)
        if mismatch:
            return _result(self.kind, EvidenceOutcome.MISMATCH, mismatch, src, now)
        return _result(self.kind, EvidenceOutcome.VERIFIED, "", src, now, "in_person")


#: (IAL, strengths that must all be verified), highest first; the first satisfied rule wins.
IAL_RULES: Sequence[tuple[str, tuple[frozenset[str], ...]]] = (
    ("3", (frozenset({"chip"}), frozenset({"in_person"}), frozenset({"kyc"}))),
    ("2.3", (frozenset({"chip", "passport_chip"}), frozenset({"in_person"}))),
    ("2.2", (frozenset({"chip", "passport_chip"}),)),
    ("2.1", (frozenset({"kyc", "in_person"}),)),
    ("1.3", (frozenset({"passport"}),)),
    ("1.1", ()),
)


def ial_from_strengths(strengths: set[str]) -> str:
    """The highest IAL whose every requirement (any-of sets) is met by ``strengths``."""
    for level, requirements in IAL_RULES:
        if all(req & strengths for req in requirements):
            return level
    return "1.1"


def evidence_summary(results: Sequence[EvidenceResult]) -> list[dict[str, Any]]:
    """OIDC4IDA ``evidence`` entries for ``verified_claims`` (no document numbers)."""
    out: list[dict[str, Any]] = []
    for r in results:
        if r.outcome is not EvidenceOutcome.VERIFIED:
            continue
        time = dt.datetime.fromtimestamp(r.verified_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if r.kind is EvidenceKind.IDP_KYC:
            out.append({"type": "electronic_record", "check_details": [
                {"check_method": "kbv", "organization": r.source}], "time": time})
        elif r.kind is EvidenceKind.IN_PERSON:
            out.append({"type": "document", "check_details": [
                {"check_method": "pvp"}, {"check_method": "vpip"}], "time": time})
        else:
            doc = "idcard" if r.kind is EvidenceKind.ID_CARD_CHIP else "passport"
            method = "vcrypt" if r.strength in ("chip", "passport_chip") else "vpip"
            out.append({"type": "document", "document_details": {"type": doc},
                        "check_details": [{"check_method": method, "organization": r.source}],
                        "time": time})
    return out
