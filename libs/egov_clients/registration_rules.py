"""What a registration must hold to be registered (registry.proto, DESIGN.md "registry").

The registry checks every registration with these before it writes anything; a client that is
about to spend something first (signing, which registers a PDF only after its owner authorised
and keys signed it) checks the same fields with the same functions, so a request the registry
would refuse is refused before anything is signed, with the registry's own reason.

Every check raises ``InvalidArgument`` with the reason a client switches on and the field at
fault; ``prefix`` names where the registration sits in the caller's own request
(``options.registration.``), empty for the registry's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from egov_common.errors import FieldViolation, InvalidArgument
from egov_pki.identifiers import Namespace, parse_identifier

__all__ = [
    "DOCUMENT_TYPE",
    "LIMITS",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "NO_TIME_MS",
    "Limits",
    "check_document_type",
    "check_idempotency_key",
    "check_metadata",
    "check_registration_fields",
    "check_text",
    "check_time",
    "check_validity",
    "epoch_ms",
    "invalid",
    "normalise_issuer",
    "normalise_subject",
    "registration_subject",
]

DOCUMENT_TYPE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

#: The range of google.protobuf.Timestamp (0001-01-01 to 9999-12-31 UTC), in ms since 1970.
MIN_TIME_MS = -62_135_596_800_000
MAX_TIME_MS = 253_402_300_799_999

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Limits:
    """Size limits of DESIGN.md / registry.proto."""

    idempotency_key_bytes = 128
    metadata_entries = 32
    metadata_key_bytes = 64
    metadata_total_bytes = 8 * 1024
    reason_text_bytes = 1024
    signer_certificates = 16
    batch_size = 500
    page_size_default = 50
    page_size_max = 500


LIMITS = Limits()


#: What a registration's fingerprint and its log leaf write for a validity time not given; a
#: given time of exactly this millisecond would read back as none, so none may be given.
NO_TIME_MS = -1


def invalid(reason: str, field: str, message: str) -> InvalidArgument:
    return InvalidArgument(reason, message, field_violations=(FieldViolation(field, message),))


def check_text(text: str, reason: str, field: str) -> str:
    """``text`` unless it holds a NUL character, which no PostgreSQL text column can store
    (SQLite would, so the two backends would disagree): INVALID_ARGUMENT ``reason`` then."""
    if "\x00" in text:
        raise invalid(reason, field, "must not contain NUL characters")
    return text


def epoch_ms(when: datetime) -> int:
    """``when`` (timezone-aware) in whole milliseconds since 1970, rounded down: what the
    registry stores of a request's Timestamp. Exact integer arithmetic: a float
    ``timestamp() * 1000`` is off by one millisecond for some times (before 1970, or far
    ahead) and rounds the last microsecond of year 9999 up into year 10000."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def check_time(ms: int, reason: str, field: str) -> int:
    """``ms`` unless it falls outside what a protobuf Timestamp can hold (years 1 to 9999)."""
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise invalid(reason, field, "a time from year 1 to 9999")
    return ms


def check_idempotency_key(key: str, field: str = "idempotency_key") -> str:
    if not key:
        raise invalid("IDEMPOTENCY_KEY_MISSING", field, "an idempotency key is required")
    if len(key.encode()) > LIMITS.idempotency_key_bytes:
        raise invalid("IDEMPOTENCY_KEY_INVALID", field, "at most 128 bytes")
    return check_text(key, "IDEMPOTENCY_KEY_INVALID", field)


def check_document_type(document_type: str, field: str = "document_type") -> str:
    if not DOCUMENT_TYPE.fullmatch(document_type):
        raise invalid("DOCUMENT_TYPE_INVALID", field, "1 to 64 characters of [a-z0-9-]")
    return document_type


def check_metadata(metadata: Mapping[str, str], field: str = "metadata") -> None:
    if len(metadata) > LIMITS.metadata_entries:
        raise invalid("METADATA_TOO_LARGE", field, "at most 32 entries")
    total = 0
    # in key order: a map's order is the sender's, so two senders (signing checking first, the
    # registry) would otherwise name different entries of one registration
    for key, value in sorted(metadata.items()):
        entry = f"{field}[{key[:64]!r}]"
        key_size = len(key.encode())
        if key_size == 0 or key_size > LIMITS.metadata_key_bytes:
            raise invalid("METADATA_TOO_LARGE", entry, "keys are 1 to 64 bytes")
        total += key_size + len(value.encode())
        check_text(key, "METADATA_INVALID", entry)
        check_text(value, "METADATA_INVALID", entry)
    if total > LIMITS.metadata_total_bytes:
        raise invalid("METADATA_TOO_LARGE", field, "at most 8 KiB of keys and values")


def check_validity(
    valid_from_ms: int | None,
    valid_until_ms: int | None,
    registered_at_ms: int | None,
    prefix: str = "",
) -> None:
    """Both times within a Timestamp's range, and VALIDITY_INVALID when the document would end
    before it starts: ``valid_from`` defaults to the registration time (``registered_at_ms``;
    None when not known yet), so without it ``valid_until`` must come after that."""
    for name, ms in (("valid_from", valid_from_ms), ("valid_until", valid_until_ms)):
        if ms is not None:
            check_time(ms, "VALIDITY_INVALID", prefix + name)
            if ms == NO_TIME_MS:
                raise invalid(
                    "VALIDITY_INVALID",
                    prefix + name,
                    "1969-12-31T23:59:59.999Z is reserved: the log encodes 'no time' so",
                )
    if valid_until_ms is None:
        return
    start = registered_at_ms if valid_from_ms is None else valid_from_ms
    if start is not None and valid_until_ms <= start:
        raise invalid(
            "VALIDITY_INVALID",
            prefix + "valid_until",
            "valid_until must be after valid_from"
            + (" (the registration time)" if valid_from_ms is None else ""),
        )


def normalise_issuer(namespace: str, value: str, field: str = "issuer") -> str:
    """``TH-JUR:<number>`` for a valid juristic number; ISSUER_INVALID otherwise."""
    if namespace != Namespace.TH_JUR.value:
        raise invalid("ISSUER_INVALID", field, "the issuer must be a TH-JUR identifier")
    try:
        return str(parse_identifier(f"{namespace}:{value}", field=field))
    except InvalidArgument as exc:
        raise invalid("ISSUER_INVALID", field, exc.message) from None


def normalise_subject(namespace: str, value: str, field: str = "subject") -> str:
    """Namespaced subject string, or empty when no subject is given."""
    if not namespace and not value:
        return ""
    try:
        return str(parse_identifier(f"{namespace}:{value}", field=field))
    except InvalidArgument as exc:
        raise invalid("SUBJECT_INVALID", field, exc.message) from None


def registration_subject(namespace: str, value: str, *, given: bool, field: str = "subject") -> str:
    """The subject of a registration (``namespace`` empty when the request left it
    unspecified): empty when none is ``given``; SUBJECT_INVALID when one is given without a
    namespace (``<field>.namespace``) or with an invalid value (``<field>``)."""
    if given and not namespace:
        raise invalid("SUBJECT_INVALID", f"{field}.namespace", "the subject needs a namespace")
    return normalise_subject(namespace, value, field)


def check_registration_fields(
    *,
    idempotency_key: str,
    document_type: str,
    metadata: Mapping[str, str],
    valid_from_ms: int | None,
    valid_until_ms: int | None,
    registered_at_ms: int | None = None,
    prefix: str = "",
) -> None:
    """The checks of a registration's own fields that need no storage and no digest, in the
    order the registry makes them; the first problem is raised. With ``registered_at_ms``,
    last, an end before that time when no start is given (the registry checks that at the
    registration's time, after the fields)."""
    check_idempotency_key(idempotency_key, prefix + "idempotency_key")
    check_document_type(document_type, prefix + "document_type")
    check_validity(valid_from_ms, valid_until_ms, None, prefix)
    check_metadata(metadata, prefix + "metadata")
    if registered_at_ms is not None:
        check_validity(valid_from_ms, valid_until_ms, registered_at_ms, prefix)
