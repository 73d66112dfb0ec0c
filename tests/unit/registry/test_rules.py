"""Registry rules without a server: who may issue, input limits, page tokens, leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from egov_common.errors import InvalidArgument, PermissionDenied
from egov_pki.identifiers import check_digit
from egov_registry.domain import rules
from egov_registry.domain.model import (
    Actor,
    Document,
    DocumentQuery,
    DocumentStatus,
    Registration,
    StatusChange,
)
from hypothesis import given
from hypothesis import strategies as st

NUMBER = "099400000001"
AGENCY = f"TH-JUR:{NUMBER}{check_digit(NUMBER)}"


def _registration(**overrides: object) -> Registration:
    fields: dict[str, object] = {
        "idempotency_key": "k",
        "document_id": "",
        "sha256": b"\x01" * 32,
        "issuer": AGENCY,
        "document_type": "permit",
        "subject": "",
        "signer_certificate_sha256": (),
        "valid_from_ms": None,
        "valid_until_ms": None,
        "metadata": {},
    }
    fields.update(overrides)
    return Registration(**fields)  # type: ignore[arg-type]


def _document(document_id: str = "DOC-" + "A" * 26, at: int = 5) -> Document:
    change = StatusChange(DocumentStatus.REGISTERED, at, 0, "someone")
    return Document(
        document_id, b"\x01" * 32, AGENCY, "permit", "", (), at, None, {}, at, (change,)
    )


@pytest.mark.parametrize(
    "actor",
    [
        Actor("x", frozenset({"registry:issue"}), AGENCY),
        Actor("x", frozenset({"registry:issue"}), AGENCY.removeprefix("TH-JUR:")),
        Actor("signing", frozenset({"registry:issue"}), any_agency=True),
    ],
)
def test_issuers_of_the_agency_may_issue(actor: Actor) -> None:
    rules.require_issuer(actor, AGENCY)


@pytest.mark.parametrize(
    "actor",
    [
        Actor("x", frozenset(), AGENCY),
        Actor("x", frozenset({"registry:issue"}), ""),
        Actor("x", frozenset({"registry:issue"}), "TH-JUR:0105536000315"),
        Actor("x", frozenset({"registry:issue"}), "*"),
        Actor("x", frozenset({"registry:read"}), AGENCY),
    ],
)
def test_others_are_not_issuers(actor: Actor) -> None:
    with pytest.raises(PermissionDenied) as refused:
        rules.require_issuer(actor, AGENCY)
    assert refused.value.reason == "NOT_ISSUER"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"idempotency_key": ""}, "IDEMPOTENCY_KEY_MISSING"),
        ({"idempotency_key": "k" * 129}, "IDEMPOTENCY_KEY_INVALID"),
        ({"sha256": b"\x01" * 31}, "HASH_MALFORMED"),
        ({"document_type": "Permit"}, "DOCUMENT_TYPE_INVALID"),
        ({"metadata": {f"k{i}": "" for i in range(33)}}, "METADATA_TOO_LARGE"),
        ({"metadata": {"k" * 65: ""}}, "METADATA_TOO_LARGE"),
        ({"metadata": {"k": "v" * 8200}}, "METADATA_TOO_LARGE"),
        ({"valid_from_ms": 10, "valid_until_ms": 10}, "VALIDITY_INVALID"),
        ({"document_id": "DOC-x"}, "DOCUMENT_ID_MALFORMED"),
    ],
)
def test_invalid_registrations_name_the_problem(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rules.validate_registration(_registration(**overrides))
    assert refused.value.reason == reason
    assert refused.value.field_violations


def test_the_metadata_entry_named_does_not_depend_on_the_order_it_was_sent_in() -> None:
    # signing checks a registration before the registry does, from a map of its own whose
    # order is not the registry's: both must name the same entry, quoted as any key is
    entries = [("b]x", "v\x00"), ("a\n" + "k" * 64, "v")]
    named = set()
    for ordered in (entries, entries[::-1]):
        with pytest.raises(InvalidArgument) as refused:
            rules.check_metadata(dict(ordered))
        named.add((refused.value.reason, refused.value.field_violations[0].field))
    assert named == {("METADATA_TOO_LARGE", "metadata[" + repr(("a\n" + "k" * 64)[:64]) + "]")}


def test_metadata_at_the_limits_is_accepted() -> None:
    rules.validate_registration(_registration(metadata={f"k{i:02d}": "v" * 200 for i in range(32)}))


def test_fingerprint_ignores_the_key_but_not_the_payload() -> None:
    base = rules.registration_fingerprint(_registration())
    assert rules.registration_fingerprint(_registration(idempotency_key="other")) == base
    assert rules.registration_fingerprint(_registration(metadata={"a": "b"})) != base
    assert rules.registration_fingerprint(_registration(sha256=b"\x02" * 32)) != base


@given(ms=st.integers(rules.MIN_TIME_MS, rules.MAX_TIME_MS), micros=st.integers(0, 999))
def test_a_time_is_the_millisecond_it_falls_in(ms: int, micros: int) -> None:
    # what signing checks and sends must be what the registry stores for the same Timestamp:
    # the millisecond, exactly (a float timestamp() is off by one for some of them)
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms, microseconds=micros)
    assert rules.epoch_ms(when) == ms


def test_the_last_instant_a_timestamp_holds_is_in_range() -> None:
    end = datetime.max.replace(tzinfo=UTC)
    assert rules.check_time(rules.epoch_ms(end), "VALIDITY_INVALID", "valid_until") == (
        rules.MAX_TIME_MS
    )


def test_new_document_ids_are_well_formed_and_distinct() -> None:
    ids = {rules.new_document_id() for _ in range(200)}
    assert len(ids) == 200
    for document_id in ids:
        assert rules.check_document_id(document_id) == document_id


@given(
    at=st.integers(0, rules.MAX_TIME_MS),  # registration times: what a Timestamp holds
    issuer=st.sampled_from(["", AGENCY]),
    document_type=st.sampled_from(["", "permit"]),
)
def test_page_token_round_trips_for_its_own_query(at: int, issuer: str, document_type: str) -> None:
    query = DocumentQuery(issuer=issuer, document_type=document_type)
    document = _document(at=at)
    token = rules.encode_page_token(query, document)
    assert rules.decode_page_token(query, token) == (at, document.document_id)
    other = DocumentQuery(issuer=issuer, document_type=document_type + "x")
    with pytest.raises(InvalidArgument) as refused:
        rules.decode_page_token(other, token)
    assert refused.value.reason == "PAGE_TOKEN_INVALID"


@given(token=st.text(max_size=80))
def test_arbitrary_page_tokens_never_crash(token: str) -> None:
    try:
        rules.decode_page_token(DocumentQuery(), token)
    except InvalidArgument as refused:
        assert refused.reason == "PAGE_TOKEN_INVALID"


def test_leaf_of_a_revocation_commits_to_reason_and_text() -> None:
    from egov_registry.domain.model import RevocationReason

    document = _document()
    first = StatusChange(DocumentStatus.REVOKED, 9, 1, "x", RevocationReason.FRAUD, "a")
    second = StatusChange(DocumentStatus.REVOKED, 9, 1, "x", RevocationReason.FRAUD, "b")
    third = StatusChange(DocumentStatus.REVOKED, 9, 1, "x", RevocationReason.OTHER, "a")
    leaves = {rules.log_entry(document, c).encode() for c in (first, second, third)}
    assert len(leaves) == 3
