"""Registry rules: input limits, who may issue, log leaves, idempotency fingerprints, page tokens.

Every check raises an ``EgovError`` with the reason a client switches on; nothing here touches
storage, so the storage layer calls these before it writes anything. The checks of a
registration's own fields live in ``egov_clients.registration_rules``, where clients that must
check a registration before spending anything on it (signing) find the same ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Sequence

from egov_clients.registration_rules import (
    LIMITS,
    MAX_TIME_MS,
    MIN_TIME_MS,
    NO_TIME_MS,
    Limits,
    check_document_type,
    check_idempotency_key,
    check_metadata,
    check_text,
    check_time,
    check_validity,
    epoch_ms,
    normalise_issuer,
    normalise_subject,
    registration_subject,
)
from egov_clients.registration_rules import invalid as _invalid
from egov_common.errors import PermissionDenied
from egov_pki import merkle
from egov_pki.identifiers import Namespace

from .model import Actor, Document, DocumentQuery, Registration, StatusChange

__all__ = [
    "AUDIT_SCOPE",
    "ISSUE_POWER",
    "ISSUE_SCOPE",
    "LIMITS",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "Limits",
    "check_document_id",
    "check_document_type",
    "check_idempotency_key",
    "check_metadata",
    "check_sha256",
    "check_text",
    "check_time",
    "check_valid_until",
    "decode_page_token",
    "encode_page_token",
    "epoch_ms",
    "log_entry",
    "new_document_id",
    "normalise_issuer",
    "normalise_subject",
    "registration_fingerprint",
    "registration_subject",
    "require_issuer",
    "validate_registration",
]

#: The scope a caller needs to register, revoke or supersede documents of its own agency.
ISSUE_SCOPE = "registry:issue"
#: The power (identity's representation grants) a person acting for an agency needs as well.
ISSUE_POWER = "register-documents"
#: The scope that lists every agency's documents (an auditor, a supervising body).
AUDIT_SCOPE = "registry:audit"

_DOCUMENT_ID = re.compile(r"DOC-[0-9A-HJKMNP-TV-Z]{26}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_document_id() -> str:
    """``DOC-`` + 26 Crockford base32 characters of 128 random bits.

    The id is printed into PDFs and QR codes before signing, so it must not be guessable.
    """
    number = int.from_bytes(secrets.token_bytes(16), "big")
    chars = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "DOC-" + "".join(reversed(chars))


def check_document_id(document_id: str, field: str = "document_id") -> str:
    if not _DOCUMENT_ID.fullmatch(document_id):
        raise _invalid("DOCUMENT_ID_MALFORMED", field, "expected DOC- and 26 base32 characters")
    return document_id


def check_sha256(digest: bytes, field: str = "sha256") -> bytes:
    if len(digest) != 32:
        raise _invalid("HASH_MALFORMED", field, f"SHA-256 is 32 bytes, got {len(digest)}")
    return digest


def _agency_number(agency: str) -> str:
    prefix = Namespace.TH_JUR.value + ":"
    return agency[len(prefix) :] if agency.startswith(prefix) else agency


def require_issuer(actor: Actor, issuer: str) -> None:
    """Raise PERMISSION_DENIED (NOT_ISSUER) unless ``actor`` issues for ``issuer``.

    The caller needs scope ``registry:issue`` and ``agency`` equal to the issuer's TH-JUR
    number (with or without the ``TH-JUR:`` prefix).
    """
    if ISSUE_SCOPE not in actor.scopes or not (actor.agency or actor.any_agency):
        raise PermissionDenied(
            "NOT_ISSUER",
            f"the caller lacks scope {ISSUE_SCOPE} for an agency",
            metadata={"required_scope": ISSUE_SCOPE},
        )
    if not actor.any_agency and _agency_number(actor.agency) != _agency_number(issuer):
        raise PermissionDenied(
            "NOT_ISSUER",
            "the caller is not an issuer for this agency",
            metadata={"required_scope": ISSUE_SCOPE},
        )


def listing_issuer(actor: Actor, issuer: str) -> str:
    """The issuer filter ``actor`` may list with, ``issuer`` asked for ("" for any).

    Listing reveals who holds which documents (subjects' national ids, metadata), unlike a
    lookup by id or hash, which needs the document in hand: an auditor (``registry:audit``)
    lists everything; an issuer lists its own agency's documents (its agency when ``issuer``
    is empty; another agency is NOT_ISSUER); anyone else gets PERMISSION_DENIED
    (LISTING_NOT_ALLOWED)."""
    if AUDIT_SCOPE in actor.scopes:
        return issuer
    if ISSUE_SCOPE in actor.scopes and (actor.agency or actor.any_agency):
        if issuer or actor.any_agency:
            require_issuer(actor, issuer or actor.agency)
            return issuer
        return f"{Namespace.TH_JUR.value}:{_agency_number(actor.agency)}"
    raise PermissionDenied(
        "LISTING_NOT_ALLOWED",
        f"listing documents needs scope {AUDIT_SCOPE}, or {ISSUE_SCOPE} for the issuing agency;"
        " a document is looked up by its id or its SHA-256",
        metadata={"required_scope": AUDIT_SCOPE},
    )


def validate_registration(registration: Registration) -> None:
    """Field checks that need no storage. Raises INVALID_ARGUMENT with the first problem."""
    check_idempotency_key(registration.idempotency_key)
    if registration.document_id:
        check_document_id(registration.document_id)
    check_sha256(registration.sha256)
    check_document_type(registration.document_type)
    if len(registration.signer_certificate_sha256) > LIMITS.signer_certificates:
        raise _invalid("SIGNER_CERTIFICATES_INVALID", "signer_certificate_sha256", "at most 16")
    for index, fingerprint in enumerate(registration.signer_certificate_sha256):
        check_sha256(fingerprint, f"signer_certificate_sha256[{index}]")
    check_validity(registration.valid_from_ms, registration.valid_until_ms, None)
    check_metadata(registration.metadata)


def check_reason_text(text: str) -> str:
    if len(text.encode()) > LIMITS.reason_text_bytes:
        raise _invalid("REASON_TEXT_TOO_LONG", "reason_text", "at most 1 KiB")
    return check_text(text, "REASON_TEXT_INVALID", "reason_text")


def check_valid_until(registration: Registration, registered_at_ms: int) -> None:
    """VALIDITY_INVALID when the document would end before the registration time, its
    ``valid_from`` when none was given."""
    check_validity(registration.valid_from_ms, registration.valid_until_ms, registered_at_ms)


def registration_fingerprint(registration: Registration) -> bytes:
    """SHA-256 of everything a registration asks for except its idempotency key."""
    details = merkle.document_details_sha256(
        document_type=registration.document_type,
        subject=registration.subject,
        signer_certificate_sha256=registration.signer_certificate_sha256,
        valid_from_ms=(
            NO_TIME_MS if registration.valid_from_ms is None else registration.valid_from_ms
        ),
        valid_until_ms=registration.valid_until_ms,
        metadata=registration.metadata,
    )
    return hashlib.sha256(
        b"".join(
            [
                registration.document_id.encode(),
                b"\x00",
                registration.issuer.encode(),
                b"\x00",
                registration.sha256,
                details,
            ]
        )
    ).digest()


def log_entry(document: Document, change: StatusChange) -> merkle.LogEntry:
    """The leaf recording ``change`` of ``document`` (what the client recomputes)."""
    if change.status.value == merkle.LogEventType.REGISTERED.value:
        return merkle.LogEntry(
            document_id=document.document_id,
            sha256=document.sha256,
            issuer_agency=document.issuer,
            event_type=merkle.LogEventType.REGISTERED,
            status=change.status.value,
            timestamp_ms=change.changed_at_ms,
            details_sha256=document.details_sha256(),
        )
    event = merkle.LogEventType(change.status.value)
    return merkle.LogEntry(
        document_id=document.document_id,
        sha256=document.sha256,
        issuer_agency=document.issuer,
        event_type=event,
        status=change.status.value,
        timestamp_ms=change.changed_at_ms,
        related_document_id=change.superseded_by,
        reason=change.reason.value if change.reason else "",
        details_sha256=merkle.text_sha256(change.reason_text),
    )


# -- page tokens: bound to the query they came from ------------------------------------------

#: The longest page token this registry makes, with room to spare (a 32-character digest, a
#: time and a document id, as JSON in base64): anything longer was not made here.
_PAGE_TOKEN_CHARS = 256


def _query_digest(query: DocumentQuery) -> str:
    fields = [
        query.issuer,
        query.document_type,
        query.subject,
        query.status.value if query.status else "",
        "" if query.registered_after_ms is None else str(query.registered_after_ms),
        "" if query.registered_before_ms is None else str(query.registered_before_ms),
    ]
    return hashlib.sha256("\x00".join(fields).encode()).hexdigest()[:32]


def encode_page_token(query: DocumentQuery, last: Document) -> str:
    body = json.dumps([_query_digest(query), last.registered_at_ms, last.document_id])
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(query: DocumentQuery, token: str) -> tuple[int, str] | None:
    """The (registered_at_ms, document_id) cursor of ``token``; None for the first page.

    Raises INVALID_ARGUMENT (PAGE_TOKEN_INVALID) for a malformed token or one from another query.
    """
    if not token:
        return None
    problem = _invalid(
        "PAGE_TOKEN_INVALID", "page_token", "not a page token of this query (filters changed?)"
    )
    if len(token) > _PAGE_TOKEN_CHARS:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        digest, at_ms, document_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise problem from None
    if (
        not isinstance(digest, str)
        or digest != _query_digest(query)
        or type(at_ms) is not int  # not a bool either
        or not MIN_TIME_MS <= at_ms <= MAX_TIME_MS
        or not isinstance(document_id, str)
        or not _DOCUMENT_ID.fullmatch(document_id)
    ):
        raise problem
    return at_ms, document_id


def page_size(requested: int) -> int:
    if requested == 0:
        return LIMITS.page_size_default
    if not 1 <= requested <= LIMITS.page_size_max:
        raise _invalid("PAGE_SIZE_INVALID", "page_size", "1 to 500, or 0 for the default")
    return requested


def pack_fingerprints(fingerprints: Sequence[bytes]) -> bytes:
    """Signer fingerprints as one column value (32 bytes each)."""
    return b"".join(fingerprints)


def unpack_fingerprints(packed: bytes) -> tuple[bytes, ...]:
    return tuple(packed[i : i + 32] for i in range(0, len(packed), 32))
