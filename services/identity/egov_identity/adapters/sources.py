"""Authoritative-source interfaces the proofing verifiers check evidence against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RegisteredPerson:
    """A person as the civil registry (DOPA) or passport authority knows them."""

    identifier: str  # namespaced: TH-PID:... or PASSPORT:<country>:<number>
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    birth_date: str  # YYYY-MM-DD
    card_laser_code: str = ""  # ID card back-side code (TH-PID only)
    document_expiry: str = ""  # card or passport expiry, YYYY-MM-DD
    document_revoked: bool = False


@dataclass(frozen=True, slots=True)
class RegisteredCompany:
    """A juristic person as the company register (DBD) knows it."""

    identifier: str  # TH-JUR:...
    name_th: str
    name_en: str
    directors: tuple[str, ...]  # namespaced identifiers of natural persons


class CivilRegistry(Protocol):
    """Looks up natural persons; ``name`` is the source's id in evidence results (``dopa``)."""

    name: str

    def person(self, identifier: str) -> RegisteredPerson | None: ...


class CompanyRegister(Protocol):
    """Looks up juristic persons and their directors (DBD). Asked at registration and again
    at every grant and revocation of a representation: ``company`` raises ``OSError`` (a
    connection refused or timed out) or ``egov_common.errors.Unavailable`` when the register
    cannot be asked, and returns ``None`` only when it has no such company."""

    name: str

    def company(self, identifier: str) -> RegisteredCompany | None: ...


class KycProviders(Protocol):
    """Public keys (JWKS) of banks / IdPs whose KYC assertions proofing accepts."""

    def jwks(self, provider: str) -> Mapping[str, Any] | None: ...
