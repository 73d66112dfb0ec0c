"""Domain values of the registry: documents, status changes, reservations, queries."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from egov_pki import merkle

__all__ = [
    "Actor",
    "Document",
    "DocumentQuery",
    "DocumentStatus",
    "Page",
    "Registration",
    "RegistrationOutcome",
    "Reservation",
    "RevocationReason",
    "StatusChange",
]


class DocumentStatus(enum.StrEnum):
    REGISTERED = "REGISTERED"
    REVOKED = "REVOKED"
    SUPERSEDED = "SUPERSEDED"


class RevocationReason(enum.StrEnum):
    ISSUED_IN_ERROR = "ISSUED_IN_ERROR"
    NO_LONGER_VALID = "NO_LONGER_VALID"
    FRAUD = "FRAUD"
    SUBJECT_REQUEST = "SUBJECT_REQUEST"
    LEGAL_ORDER = "LEGAL_ORDER"
    KEY_COMPROMISE = "KEY_COMPROMISE"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls: the subject (for the history), its scopes and the agency it acts for.

    ``any_agency`` is only ever granted by settings to a trusted mTLS service (e.g. signing,
    which registers for the agency whose e-seal it used), never by a token.
    """

    subject: str
    scopes: frozenset[str] = frozenset()
    agency: str = ""
    any_agency: bool = False


@dataclass(frozen=True, slots=True)
class Registration:
    """A validated registration request. Identifiers are namespaced strings (``TH-JUR:...``).

    Times are Unix milliseconds; ``valid_from_ms`` None means "the registration time".
    """

    idempotency_key: str
    document_id: str
    sha256: bytes
    issuer: str
    document_type: str
    subject: str
    signer_certificate_sha256: tuple[bytes, ...]
    valid_from_ms: int | None
    valid_until_ms: int | None
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: DocumentStatus
    changed_at_ms: int
    leaf_index: int
    actor: str
    reason: RevocationReason | None = None
    reason_text: str = ""
    superseded_by: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    document_id: str
    sha256: bytes
    issuer: str
    document_type: str
    subject: str
    signer_certificate_sha256: tuple[bytes, ...]
    valid_from_ms: int
    valid_until_ms: int | None
    metadata: Mapping[str, str]
    registered_at_ms: int
    history: tuple[StatusChange, ...]
    supersedes: str = ""

    @property
    def status(self) -> DocumentStatus:
        return self.history[-1].status

    @property
    def superseded_by(self) -> str:
        return next((c.superseded_by for c in self.history if c.superseded_by), "")

    def details_sha256(self) -> bytes:
        return merkle.document_details_sha256(
            document_type=self.document_type,
            subject=self.subject,
            signer_certificate_sha256=self.signer_certificate_sha256,
            valid_from_ms=self.valid_from_ms,
            valid_until_ms=self.valid_until_ms,
            metadata=self.metadata,
        )


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    document: Document
    replayed: bool


@dataclass(frozen=True, slots=True)
class Reservation:
    document_id: str
    issuer: str
    document_type: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class DocumentQuery:
    """Filters of ListDocuments; empty strings and None match everything."""

    issuer: str = ""
    document_type: str = ""
    subject: str = ""
    status: DocumentStatus | None = None
    registered_after_ms: int | None = None
    registered_before_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    documents: tuple[Document, ...]
    next_page_token: str = ""
