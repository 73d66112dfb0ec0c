"""Domain values of the keys service (frozen dataclasses, no persistence concerns)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from egov_pki.identifiers import Identifier

from egov_keys.domain.algorithms import HashAlgorithm
from egov_keys.domain.custody import KeyReference
from egov_keys.domain.pki import OwnerKind

__all__ = [
    "AuditEvent",
    "AuditRecord",
    "CertificateStatus",
    "Credential",
    "CredentialStatus",
    "RevocationReason",
    "SadRecord",
]


class CredentialStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    RENEWED = "renewed"


class RevocationReason(enum.StrEnum):
    """RFC 5280 section 5.3.1 reasons a credential owner or operator may give."""

    KEY_COMPROMISE = "key_compromise"
    #: an authority's own key (an issuing CA, the OCSP signer, the TSA): operators only
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"
    UNSPECIFIED = "unspecified"


class CertificateStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Credential:
    """Key + certificate + owner + authorisation mode (CSC API v2 credential)."""

    credential_id: str
    owner: Identifier
    kind: OwnerKind
    key: KeyReference
    certificate_der: bytes
    certificate_serial: int
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: CredentialStatus
    created_at: dt.datetime
    #: The identity ``sub`` of the person who created it (natural persons), for the audit trail.
    created_by: str
    max_signatures: int
    renewed_from: str = ""
    renewed_by: str = ""
    revoked_at: dt.datetime | None = None
    revocation_reason: RevocationReason | None = None


@dataclass(frozen=True, slots=True)
class SadRecord:
    """What the database keeps of a SAD: its SHA-256, never the SAD itself."""

    sad_hash: str
    credential_id: str
    hash_algorithm: HashAlgorithm
    #: SHA-256 over the sorted authorised digests (order-insensitive binding).
    hashes_binding: str
    num_signatures: int
    expires_at: dt.datetime
    spent_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An entry about to be appended (the store assigns sequence and hashes)."""

    action: str
    actor: str
    credential_id: str
    outcome: str
    details_json: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    sequence: int
    occurred_at: dt.datetime
    action: str
    actor: str
    credential_id: str
    outcome: str
    details_json: str
    previous_hash: bytes
    entry_hash: bytes
