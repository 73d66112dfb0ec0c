"""Every registry RPC over a real channel against a real process, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import RegistryClient, party
from egov_common.errors import AlreadyExists, FailedPrecondition, PermissionDenied
from egov_pki import merkle
from registry_testenv import AGENCY, ISSUER_TOKEN, OTHER_AGENCY, digest, thai_number


@pytest.fixture
def clients(shared_clients: dict[str, RegistryClient]) -> dict[str, RegistryClient]:
    return shared_clients


def _size(client: RegistryClient) -> int:
    return client.get_signed_tree_head().tree_size


SUBJECT = "TH-PID:" + thai_number("110170023070")


def test_reserved_id_is_registered_and_proven_in_the_log(
    clients: dict[str, RegistryClient],
) -> None:
    issuer, reader = clients["issuer"], clients["reader"]
    reservation = issuer.reserve_document_id(AGENCY, "birth-certificate")
    assert reservation.verification_url.endswith(reservation.document_id)

    document = issuer.register(
        sha256=digest("birth certificate of somchai"),
        issuer=AGENCY,
        document_type="birth-certificate",
        subject=SUBJECT,
        document_id=reservation.document_id,
        signer_certificate_sha256=[digest("seal certificate")],
        valid_from_ms=1_767_225_600_000,
        valid_until_ms=1_893_456_000_000,
        metadata={"district": "Bang Rak", "title": "สูติบัตร"},
    )

    assert document.document_id == reservation.document_id
    assert document.status == pb.DOCUMENT_STATUS_REGISTERED
    assert f"TH-PID:{document.subject.value}" == SUBJECT
    verified = reader.verify_document(document.document_id)
    assert verified.document == document
    assert verified.tree_head.tree_size > document.history[0].leaf_index


def test_retry_with_same_key_returns_the_same_document(clients: dict[str, RegistryClient]) -> None:
    issuer = clients["issuer"]
    request = issuer.registration(sha256=digest("permit"), issuer=AGENCY, document_type="permit")
    before = _size(issuer)

    first = issuer.register_request(request)
    again = issuer.register_request(request)

    assert not first.replayed and again.replayed
    assert again.document == first.document
    assert _size(issuer) == before + 1


def test_same_key_with_another_payload_is_refused(clients: dict[str, RegistryClient]) -> None:
    issuer = clients["issuer"]
    first = issuer.register(
        sha256=digest("a"), issuer=AGENCY, document_type="permit", idempotency_key="k-1"
    )
    with pytest.raises(FailedPrecondition) as refused:
        issuer.register(
            sha256=digest("b"), issuer=AGENCY, document_type="permit", idempotency_key="k-1"
        )
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.metadata["document_id"] == first.document_id


def test_a_reservation_under_a_registered_idempotency_key_names_the_registered_document(
    clients: dict[str, RegistryClient],
) -> None:
    # A signing service reserves with the key its registration will carry: a retry of a signing
    # whose answer was lost learns that the document is registered before signing it again.
    from egov_common.errors import InvalidArgument

    issuer = clients["issuer"]
    assert issuer.reserve_document_id(AGENCY, "permit", idempotency_key="k-reserve").document_id
    first = issuer.register(
        sha256=digest("reserved and registered"), issuer=AGENCY, document_type="permit",
        idempotency_key="k-reserve",
    )
    before = _size(issuer)
    with pytest.raises(AlreadyExists) as refused:
        issuer.reserve_document_id(AGENCY, "permit", idempotency_key="k-reserve")
    assert refused.value.reason == "ALREADY_REGISTERED"
    assert refused.value.metadata["document_id"] == first.document_id
    with pytest.raises(InvalidArgument) as invalid:
        issuer.reserve_document_id(AGENCY, "permit", idempotency_key="k" * 129)
    assert invalid.value.reason == "IDEMPOTENCY_KEY_INVALID"
    # the key is the issuer's own: another agency's issuer may use it; nothing was logged
    assert clients["other"].reserve_document_id(
        OTHER_AGENCY, "permit", idempotency_key="k-reserve"
    ).document_id
    assert _size(issuer) == before


def test_same_hash_twice_for_one_issuer_names_the_existing_document(
    clients: dict[str, RegistryClient],
) -> None:
    first = clients["issuer"].register(sha256=digest("x"), issuer=AGENCY, document_type="permit")
    with pytest.raises(AlreadyExists) as refused:
        clients["issuer"].register(sha256=digest("x"), issuer=AGENCY, document_type="permit")
    assert refused.value.reason == "HASH_ALREADY_REGISTERED"
    assert refused.value.metadata["document_id"] == first.document_id
    # Another issuer may register the same bytes (e.g. a countersigned copy).
    second = clients["other"].register(
        sha256=digest("x"), issuer=OTHER_AGENCY, document_type="permit"
    )
    clients["issuer"].revoke(first.document_id, pb.REVOCATION_REASON_ISSUED_IN_ERROR, "typo")
    found = clients["reader"].lookup_by_hash(digest("x"))
    # Both, the older first, each with its whole history.
    assert [d.document_id for d in found] == [first.document_id, second.document_id]
    assert [len(d.history) for d in found] == [2, 1]


def test_batch_registration_reports_each_item(clients: dict[str, RegistryClient]) -> None:
    issuer = clients["issuer"]
    requests = [
        issuer.registration(sha256=digest(f"batch {i}"), issuer=AGENCY, document_type="permit")
        for i in range(5)
    ]
    before = _size(issuer)
    requests.append(requests[0])  # the same key again in the same batch: a replay
    requests.append(
        issuer.registration(sha256=digest("batch 1"), issuer=AGENCY, document_type="permit")
    )
    results = issuer.register_many(requests)
    assert [type(r).__name__ for r in results] == ["RegisterDocumentResponse"] * 6 + [
        "AlreadyExists"
    ]
    assert results[5].replayed and results[5].document == results[0].document  # type: ignore[union-attr]
    assert _size(issuer) == before + 5


def test_only_the_agencys_issuer_may_register_revoke_or_supersede(
    clients: dict[str, RegistryClient],
) -> None:
    before = _size(clients["reader"])
    for name in ("other", "reader", "anonymous"):
        with pytest.raises(PermissionDenied) as refused:
            clients[name].register(sha256=digest("n"), issuer=AGENCY, document_type="permit")
        assert refused.value.reason == "NOT_ISSUER"
    document = clients["issuer"].register(sha256=digest("n"), issuer=AGENCY, document_type="p")
    newer = clients["issuer"].register(sha256=digest("n2"), issuer=AGENCY, document_type="p")
    with pytest.raises(PermissionDenied) as refused:
        clients["other"].revoke(document.document_id, pb.REVOCATION_REASON_FRAUD)
    assert refused.value.reason == "NOT_ISSUER"
    with pytest.raises(PermissionDenied):
        clients["reader"].supersede(document.document_id, newer.document_id)
    with pytest.raises(PermissionDenied):
        clients["anonymous"].reserve_document_id(AGENCY, "permit")
    assert clients["anonymous"].get_document(document.document_id).status == (
        pb.DOCUMENT_STATUS_REGISTERED
    )
    assert _size(clients["anonymous"]) == before + 2


def test_revocation_keeps_history_and_is_proven(clients: dict[str, RegistryClient]) -> None:
    issuer, reader = clients["issuer"], clients["reader"]
    document = issuer.register(sha256=digest("r"), issuer=AGENCY, document_type="licence")

    revoked = issuer.revoke(document.document_id, pb.REVOCATION_REASON_FRAUD, "forged photo")
    retried = issuer.revoke(document.document_id, pb.REVOCATION_REASON_FRAUD, "forged photo")

    assert revoked.status == pb.DOCUMENT_STATUS_REVOKED
    assert [c.status for c in revoked.history] == [
        pb.DOCUMENT_STATUS_REGISTERED,
        pb.DOCUMENT_STATUS_REVOKED,
    ]
    assert revoked.history[1].reason == pb.REVOCATION_REASON_FRAUD
    assert retried == revoked
    reader.verify_document(document.document_id)
    with pytest.raises(FailedPrecondition) as refused:
        issuer.revoke(document.document_id, pb.REVOCATION_REASON_OTHER, "changed my mind")
    assert refused.value.reason == "DOCUMENT_REVOKED"


def test_supersession_links_both_documents(clients: dict[str, RegistryClient]) -> None:
    issuer, reader = clients["issuer"], clients["reader"]
    old = issuer.register(sha256=digest("v1"), issuer=AGENCY, document_type="licence")
    new = issuer.register(sha256=digest("v2"), issuer=AGENCY, document_type="licence")

    reply = issuer.supersede(old.document_id, new.document_id, "address changed")

    assert reply.old_document.status == pb.DOCUMENT_STATUS_SUPERSEDED
    assert reply.old_document.superseded_by == new.document_id
    assert reply.new_document.supersedes == old.document_id
    assert reader.get_document(new.document_id).supersedes == old.document_id
    reader.verify_document(old.document_id)
    reader.verify_document(new.document_id)
    with pytest.raises(FailedPrecondition) as refused:
        issuer.supersede(new.document_id, new.document_id)
    assert refused.value.reason == "SUPERSEDE_SELF"
    with pytest.raises(FailedPrecondition) as refused:
        issuer.revoke(old.document_id, pb.REVOCATION_REASON_FRAUD)
    assert refused.value.reason == "DOCUMENT_SUPERSEDED"


def test_list_documents_filters_and_pages_in_a_stable_order(
    clients: dict[str, RegistryClient],
) -> None:
    issuer = clients["issuer"]
    mine = [
        issuer.register(
            sha256=digest(f"list {i}"),
            issuer=AGENCY,
            document_type="list-permit" if i % 2 else "list-licence",
            subject=SUBJECT if i < 4 else "",
        ).document_id
        for i in range(7)
    ]
    since = clients["reader"].get_document(mine[0]).registered_at
    clients["other"].register(sha256=digest("theirs"), issuer=OTHER_AGENCY, document_type="permit")
    issuer.revoke(mine[1], pb.REVOCATION_REASON_ISSUED_IN_ERROR)

    seen: list[str] = []
    token = ""
    while True:
        page = clients["auditor"].list_documents(
            pb.ListDocumentsRequest(
                issuer=party(AGENCY), registered_after=since, page_size=3, page_token=token
            )
        )
        seen += [d.document_id for d in page.documents]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(mine) and len(seen) == len(set(seen))

    def ids(**filters: object) -> set[str]:
        request = pb.ListDocumentsRequest(registered_after=since, **filters)  # type: ignore[arg-type]
        page = clients["auditor"].list_documents(request)
        return {d.document_id for d in page.documents}

    assert ids(document_type="list-permit", issuer=party(AGENCY)) == {mine[1], mine[3], mine[5]}
    assert ids(subject=party(SUBJECT)) == set(mine[:4])
    assert ids(status=pb.DOCUMENT_STATUS_REVOKED) == {mine[1]}


def test_a_listing_is_for_auditors_and_for_an_issuer_s_own_documents(
    clients: dict[str, RegistryClient],
) -> None:
    """Who holds which documents (a subject's national id) is not open: a relying party finds
    a document by its id or hash, an issuer lists its own agency's, an auditor everything."""
    mine = clients["issuer"].register(
        sha256=digest("listing mine"), issuer=AGENCY, document_type="permit", subject=SUBJECT
    )
    theirs = clients["other"].register(
        sha256=digest("listing theirs"), issuer=OTHER_AGENCY, document_type="permit"
    )
    everything = pb.ListDocumentsRequest(page_size=500)
    by_subject = pb.ListDocumentsRequest(subject=party(SUBJECT))
    for name in ("anonymous", "reader"):
        for request in (everything, by_subject):
            with pytest.raises(PermissionDenied) as refused:
                clients[name].list_documents(request)
            assert refused.value.reason == "LISTING_NOT_ALLOWED"
        assert clients[name].get_document(mine.document_id).document_id == mine.document_id

    own = {d.document_id for d in clients["issuer"].list_documents(everything).documents}
    assert mine.document_id in own and theirs.document_id not in own
    with pytest.raises(PermissionDenied) as refused:
        clients["issuer"].list_documents(pb.ListDocumentsRequest(issuer=party(OTHER_AGENCY)))
    assert refused.value.reason == "NOT_ISSUER"
    audited = {d.document_id for d in clients["auditor"].list_documents(everything).documents}
    assert {mine.document_id, theirs.document_id} <= audited


def test_log_serves_heads_proofs_and_entries(clients: dict[str, RegistryClient]) -> None:
    issuer, reader = clients["issuer"], clients["reader"]
    heads = []
    before = _size(reader)
    for i in range(6):
        issuer.register(sha256=digest(f"log {i}"), issuer=AGENCY, document_type="permit")
        heads.append(reader.get_signed_tree_head())
    for old in heads[:-1]:
        reader.verify_consistency(old, heads[-1])

    audited = clients["auditor"].log_entries(before, before + 6)
    assert [e.leaf_index for e in audited] == list(range(before, before + 6))
    for entry in audited:
        reader.verify_leaf(entry.leaf_index, entry.leaf_data)
    assert {e.event_type for e in audited} == {pb.LOG_EVENT_TYPE_REGISTERED}

    # Anyone else gets the leaves' hashes: every root can be recomputed, but the log lists no
    # document ids to look each document up by (with its subject and metadata).
    public = reader.log_entries(before, before + 6)
    assert [e.leaf_hash for e in public] == [merkle.leaf_hash(e.leaf_data) for e in audited]
    assert {(e.document_id, e.leaf_data, e.event_type) for e in public} == {
        ("", b"", pb.LOG_EVENT_TYPE_UNSPECIFIED)
    }
    by_index = reader._stub.GetInclusionProof(pb.GetInclusionProofRequest(leaf_index=before))
    assert (by_index.entry.document_id, by_index.entry.leaf_data) == ("", b"")
    assert reader.audit_log()[0].tree_size >= before + 6

    info = reader._stub.GetLogInfo(pb.GetLogInfoRequest())
    assert info.signature_algorithm == "ecdsa-p256-sha256"
    assert len(info.log_id) == 32


def test_demo_story_reserves_registers_proves_and_revokes(
    shared_clients: dict[str, RegistryClient],
) -> None:
    from egov_clients.registry import demo

    address = shared_clients["issuer"]._channel._channel.target().decode()  # type: ignore[attr-defined]
    summary = demo(address, token=ISSUER_TOKEN, issuer=AGENCY)
    assert summary["status_after_revocation"] == "DOCUMENT_STATUS_REVOKED"
    assert summary["tree_size"] == summary["registered_tree_size"] + 1


def test_a_full_batch_with_full_metadata_comes_back_to_a_client_of_its_own(
    clients: dict[str, RegistryClient],
) -> None:
    # 500 registrations with 8 KiB of metadata each are within every limit, and their answer
    # is over gRPC's default 4 MiB: a client that could not receive it would never learn what
    # was committed, however often it retried.
    issuer = clients["issuer"]
    metadata = {f"k{i:02d}": "x" * 250 for i in range(32)}  # 32 x (3 + 250) bytes < 8 KiB
    requests = [
        RegistryClient.registration(
            sha256=digest(f"big-batch-{n}"), issuer=AGENCY, document_type="p", metadata=metadata
        )
        for n in range(500)
    ]
    results = issuer.register_many(requests)
    assert all(isinstance(r, pb.RegisterDocumentResponse) for r in results)
    assert len({r.document.document_id for r in results}) == 500  # type: ignore[union-attr]
