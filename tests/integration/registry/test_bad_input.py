"""Bad requests fail with a precise status and reason, and write nothing."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient, party
from egov_common.errors import EgovError
from egov_common.status import from_rpc_error
from egov_registry.domain import rules
from egov_registry.domain.model import DocumentQuery
from registry_testenv import AGENCY, OTHER_AGENCY, digest


def _refusal(call: Callable[[], Any]) -> EgovError:
    with pytest.raises((EgovError, grpc.RpcError)) as caught:
        call()
    error = caught.value
    return from_rpc_error(error) if isinstance(error, grpc.RpcError) else error


def _stored(client: RegistryClient) -> tuple[int, int]:
    documents = client.list_documents(pb.ListDocumentsRequest(page_size=500)).documents
    return client.get_signed_tree_head().tree_size, len(documents)


@pytest.fixture
def clients(shared_clients: dict[str, RegistryClient]) -> dict[str, RegistryClient]:
    return shared_clients


@pytest.fixture
def existing(clients: dict[str, RegistryClient]) -> pb.Document:
    return clients["issuer"].register(
        sha256=digest(secrets.token_hex(8)), issuer=AGENCY, document_type="p"
    )


def _register(client: RegistryClient, **overrides: Any) -> Callable[[], Any]:
    fields: dict[str, Any] = {"sha256": digest("new"), "issuer": AGENCY, "document_type": "p"}
    fields.update(overrides)
    request = client.registration(**fields)
    return lambda: client.register_request(request)


def _raw_register(client: RegistryClient, request: pb.RegisterDocumentRequest) -> Callable[[], Any]:
    return lambda: client._stub.RegisterDocument(request, timeout=10, metadata=client._metadata)


_BAD_REGISTRATIONS = [
    ("short hash", "INVALID_ARGUMENT", "HASH_MALFORMED"),
    ("long hash", "INVALID_ARGUMENT", "HASH_MALFORMED"),
    ("bad signer fingerprint", "INVALID_ARGUMENT", "HASH_MALFORMED"),
    ("too many metadata entries", "INVALID_ARGUMENT", "METADATA_TOO_LARGE"),
    ("metadata over 8 KiB", "INVALID_ARGUMENT", "METADATA_TOO_LARGE"),
    ("issuer with a wrong check digit", "INVALID_ARGUMENT", "ISSUER_INVALID"),
    ("person as issuer", "INVALID_ARGUMENT", "ISSUER_INVALID"),
    ("subject with a wrong check digit", "INVALID_ARGUMENT", "SUBJECT_INVALID"),
    ("validity ends before it starts", "INVALID_ARGUMENT", "VALIDITY_INVALID"),
    ("missing idempotency key", "INVALID_ARGUMENT", "IDEMPOTENCY_KEY_MISSING"),
    ("document type with spaces", "INVALID_ARGUMENT", "DOCUMENT_TYPE_INVALID"),
    ("another agency's documents", "PERMISSION_DENIED", "NOT_ISSUER"),
    ("unreserved document id", "FAILED_PRECONDITION", "RESERVATION_NOT_FOUND"),
    ("malformed document id", "INVALID_ARGUMENT", "DOCUMENT_ID_MALFORMED"),
    # What PostgreSQL cannot store is refused on SQLite too, before it reaches either.
    ("NUL in the idempotency key", "INVALID_ARGUMENT", "IDEMPOTENCY_KEY_INVALID"),
    ("NUL in metadata", "INVALID_ARGUMENT", "METADATA_INVALID"),
    ("validity ends before the registration", "INVALID_ARGUMENT", "VALIDITY_INVALID"),
    ("validity beyond year 9999", "INVALID_ARGUMENT", "VALIDITY_INVALID"),
    ("validity with negative nanos", "INVALID_ARGUMENT", "VALIDITY_INVALID"),
    # `$` of a regular expression also matches before a final newline.
    ("document type with a trailing newline", "INVALID_ARGUMENT", "DOCUMENT_TYPE_INVALID"),
    ("subject with a trailing newline", "INVALID_ARGUMENT", "SUBJECT_INVALID"),
    ("document id with a trailing newline", "INVALID_ARGUMENT", "DOCUMENT_ID_MALFORMED"),
]


def _with(client: RegistryClient, edit: Callable[[pb.RegisterDocumentRequest], None]) -> Any:
    request = client.registration(sha256=digest("new"), issuer=AGENCY, document_type="p")
    edit(request)
    return _raw_register(client, request)


def test_bad_registration_is_refused_and_nothing_written(
    clients: dict[str, RegistryClient], existing: pb.Document
) -> None:
    issuer = clients["issuer"]
    before = _stored(issuer)
    calls = {
        "short hash": _register(issuer, sha256=b"\x01" * 31),
        "long hash": _register(issuer, sha256=b"\x01" * 33),
        "bad signer fingerprint": _register(issuer, signer_certificate_sha256=[b"\x02" * 20]),
        "too many metadata entries": _register(issuer, metadata={f"k{i}": "v" for i in range(33)}),
        "metadata over 8 KiB": _register(issuer, metadata={"big": "x" * 9000}),
        "issuer with a wrong check digit": _register(
            issuer, issuer=AGENCY[:-1] + "0" if AGENCY[-1] != "0" else AGENCY[:-1] + "1"
        ),
        "person as issuer": _register(issuer, issuer="TH-PID:" + AGENCY.split(":")[1]),
        "subject with a wrong check digit": _register(issuer, subject="TH-PID:1101700230700"),
        "validity ends before it starts": _register(
            issuer, valid_from_ms=2_000_000_000_000, valid_until_ms=1_000_000_000_000
        ),
        "missing idempotency key": _raw_register(
            issuer,
            pb.RegisterDocumentRequest(sha256=digest("k"), issuer=party(AGENCY), document_type="p"),
        ),
        "document type with spaces": _register(issuer, document_type="birth certificate"),
        "another agency's documents": _register(issuer, issuer=OTHER_AGENCY),
        "unreserved document id": _register(issuer, document_id="DOC-" + "A" * 26),
        "malformed document id": _register(issuer, document_id="DOC-123"),
        "NUL in the idempotency key": _register(issuer, idempotency_key="key\x00"),
        "NUL in metadata": _register(issuer, metadata={"note": "a\x00b"}),
        "validity ends before the registration": _register(
            issuer, valid_until_ms=946_684_800_000  # 2000-01-01, and no valid_from: from now
        ),
        "validity beyond year 9999": _with(
            issuer, lambda r: setattr(r.valid_from, "seconds", 10**16)
        ),
        "validity with negative nanos": _with(
            issuer, lambda r: setattr(r.valid_until, "nanos", -5)
        ),
        "document type with a trailing newline": _register(issuer, document_type="permit\n"),
        "subject with a trailing newline": _register(issuer, subject="TH-PID:1101700230708\n"),
        "document id with a trailing newline": _register(
            issuer, document_id=rules.new_document_id() + "\n"
        ),
    }

    for case, code, reason in _BAD_REGISTRATIONS:
        error = _refusal(calls[case])
        assert (case, error.code.value, error.reason) == (case, code, reason)
    assert _stored(issuer) == before


def test_unknown_document_is_not_found(clients: dict[str, RegistryClient]) -> None:
    reader = clients["reader"]
    before = reader.get_signed_tree_head().tree_size
    error = _refusal(lambda: reader.get_document("DOC-" + "Z" * 26))
    assert (error.code.value, error.reason) == ("NOT_FOUND", "DOCUMENT_NOT_FOUND")
    error = _refusal(lambda: reader.get_document("not-an-id"))
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "DOCUMENT_ID_MALFORMED")
    error = _refusal(
        lambda: clients["issuer"].revoke("DOC-" + "Z" * 26, pb.REVOCATION_REASON_FRAUD)
    )
    assert (error.code.value, error.reason) == ("NOT_FOUND", "DOCUMENT_NOT_FOUND")
    assert reader.get_signed_tree_head().tree_size == before


def test_malformed_hash_lookup_is_refused(clients: dict[str, RegistryClient]) -> None:
    error = _refusal(lambda: clients["reader"].lookup_by_hash(b"abc"))
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "HASH_MALFORMED")
    assert clients["reader"].lookup_by_hash(digest("never registered")) == []


def test_wrong_issuer_cannot_revoke_and_nothing_changes(
    clients: dict[str, RegistryClient], existing: pb.Document
) -> None:
    error = _refusal(
        lambda: clients["other"].revoke(existing.document_id, pb.REVOCATION_REASON_FRAUD)
    )
    assert (error.code.value, error.reason) == ("PERMISSION_DENIED", "NOT_ISSUER")
    error = _refusal(
        lambda: clients["issuer"].revoke(existing.document_id, pb.REVOCATION_REASON_UNSPECIFIED)
    )
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "REVOCATION_REASON_MISSING")
    after = clients["reader"].get_document(existing.document_id)
    assert after == existing
    assert clients["reader"].get_signed_tree_head().tree_size == (
        existing.history[0].leaf_index + 1
    )


def test_bad_list_filters_and_page_tokens_are_refused(clients: dict[str, RegistryClient]) -> None:
    reader, auditor = clients["reader"], clients["auditor"]
    document = clients["issuer"].register(
        sha256=digest(secrets.token_hex(8)), issuer=AGENCY, document_type="p"
    )
    # A token of the right shape for "no filters", made by hand, with a time no clock reaches.
    no_filters = rules._query_digest(DocumentQuery())
    far = json.dumps([no_filters, 10**30, document.document_id]).encode()
    nested = b"[" * 100_000
    beyond = pb.ListDocumentsRequest()
    beyond.registered_before.seconds = 10**17
    cases = [
        (pb.ListDocumentsRequest(status=99), "STATUS_INVALID"),
        (beyond, "TIME_FILTER_INVALID"),
        # a NUL no PostgreSQL text holds: refused alike on both backends, not INTERNAL there
        (pb.ListDocumentsRequest(document_type="permit\x00"), "DOCUMENT_TYPE_INVALID"),
        (pb.ListDocumentsRequest(page_token=_b64(far)), "PAGE_TOKEN_INVALID"),
        (pb.ListDocumentsRequest(page_token=_b64(nested)), "PAGE_TOKEN_INVALID"),
    ]
    for request, reason in cases:
        error = _refusal(lambda request=request: auditor.list_documents(request))
        assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", reason)
    error = _refusal(lambda: reader.get_document(document.document_id + "\n"))
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "DOCUMENT_ID_MALFORMED")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_bad_revocations_are_refused_and_nothing_changes(
    clients: dict[str, RegistryClient], existing: pb.Document
) -> None:
    issuer = clients["issuer"]
    stub, md = issuer._stub, issuer._metadata
    cases = [
        (pb.RevokeDocumentRequest(document_id=existing.document_id, reason=99),
         "REVOCATION_REASON_INVALID"),
        (pb.RevokeDocumentRequest(document_id=existing.document_id,
                                  reason=pb.REVOCATION_REASON_FRAUD, reason_text="a\x00b"),
         "REASON_TEXT_INVALID"),
    ]
    for request, reason in cases:
        error = _refusal(lambda request=request: stub.RevokeDocument(request, metadata=md))
        assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", reason)
    assert clients["reader"].get_document(existing.document_id) == existing


def test_one_bad_entry_of_a_batch_fails_alone(clients: dict[str, RegistryClient]) -> None:
    issuer = clients["issuer"]
    good, bad, nul = (
        issuer.registration(sha256=digest(secrets.token_hex(8)), issuer=AGENCY, document_type="p")
        for _ in range(3)
    )
    bad.valid_from.seconds = 10**16
    nul.idempotency_key = "k\x00"
    results = issuer.register_many([good, bad, nul])
    assert isinstance(results[0], pb.RegisterDocumentResponse)
    assert [(r.code.value, r.reason) for r in results[1:]] == [  # type: ignore[union-attr]
        ("INVALID_ARGUMENT", "VALIDITY_INVALID"),
        ("INVALID_ARGUMENT", "IDEMPOTENCY_KEY_INVALID"),
    ]
    assert issuer.lookup_by_hash(bad.sha256) == [] and issuer.lookup_by_hash(nul.sha256) == []


def test_page_token_from_another_query_is_refused(
    clients: dict[str, RegistryClient],
) -> None:
    issuer = clients["issuer"]
    for i in range(3):
        issuer.register(sha256=digest(f"page {i}"), issuer=AGENCY, document_type="permit")
    first = issuer.list_documents(pb.ListDocumentsRequest(document_type="permit", page_size=1))
    assert first.next_page_token

    for request in (
        pb.ListDocumentsRequest(
            document_type="licence", page_size=1, page_token=first.next_page_token
        ),
        pb.ListDocumentsRequest(document_type="permit", page_size=1, page_token="forged!!"),
    ):
        error = _refusal(lambda request=request: issuer.list_documents(request))
        assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "PAGE_TOKEN_INVALID")
    error = _refusal(lambda: issuer.list_documents(pb.ListDocumentsRequest(page_size=501)))
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "PAGE_SIZE_INVALID")


def test_proofs_for_sizes_beyond_the_log_are_refused(
    clients: dict[str, RegistryClient], existing: pb.Document
) -> None:
    stub, md = clients["reader"]._stub, clients["reader"]._metadata
    size = clients["reader"].get_signed_tree_head().tree_size
    cases = [
        (
            lambda: stub.GetConsistencyProof(
                pb.GetConsistencyProofRequest(first_tree_size=1, second_tree_size=size + 5),
                metadata=md,
            ),
            "INVALID_ARGUMENT",
            "TREE_SIZE_INVALID",
        ),
        (
            lambda: stub.GetConsistencyProof(
                pb.GetConsistencyProofRequest(first_tree_size=0), metadata=md
            ),
            "INVALID_ARGUMENT",
            "TREE_SIZE_INVALID",
        ),
        (
            lambda: stub.GetInclusionProof(
                pb.GetInclusionProofRequest(leaf_index=size + 7), metadata=md
            ),
            "NOT_FOUND",
            "LEAF_NOT_FOUND",
        ),
        (
            lambda: stub.GetLogEntries(pb.GetLogEntriesRequest(start=size + 5, end=2), metadata=md),
            "INVALID_ARGUMENT",
            "RANGE_INVALID",
        ),
    ]
    for call, code, reason in cases:
        error = _refusal(call)
        assert (error.code.value, error.reason) == (code, reason)


def test_oversize_batch_is_refused_whole(clients: dict[str, RegistryClient]) -> None:
    issuer = clients["issuer"]
    before = issuer.get_signed_tree_head().tree_size
    requests = [
        issuer.registration(sha256=digest(f"big batch {i}"), issuer=AGENCY, document_type="p")
        for i in range(501)
    ]
    error = _refusal(
        lambda: issuer._stub.RegisterDocuments(
            pb.RegisterDocumentsRequest(requests=requests), metadata=issuer._metadata
        )
    )
    assert (error.code.value, error.reason) == ("INVALID_ARGUMENT", "BATCH_TOO_LARGE")
    assert issuer.get_signed_tree_head().tree_size == before
