"""The registry client trusts nothing the registry says: a lying log is a LogVerificationError.

A fake registry keeps a genuine RFC 9162 log of real documents and signs its tree heads; each
test makes it lie in one way and expects the client's verification to catch it, always as
``LogVerificationError`` (the verify portal turns exactly that into a FAILED proof check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from egov.registry.v1 import registry_pb2 as pb
from egov.type.v1 import party_pb2
from egov_clients.registry import LogVerificationError, RegistryClient, document_log_entries
from egov_pki import merkle

AGENCY = party_pb2.PartyIdentifier(
    namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_JUR, value="0994000000014"
)
LOG_KEY = ec.generate_private_key(ec.SECP256R1())
T0_MS = 1_800_000_000_000


def _document(n: int, *, revoked: bool = False) -> pb.Document:
    document = pb.Document(
        document_id=f"DOC-{n}",
        sha256=bytes([n]) * 32,
        issuer=AGENCY,
        document_type="permit",
        status=pb.DOCUMENT_STATUS_REGISTERED,
        metadata={"holder": f"holder {n}"},
    )
    document.valid_from.FromMilliseconds(T0_MS)
    registered = document.history.add(status=pb.DOCUMENT_STATUS_REGISTERED)
    registered.changed_at.FromMilliseconds(T0_MS + n)
    document.registered_at.FromMilliseconds(T0_MS + n)
    if revoked:
        document.status = pb.DOCUMENT_STATUS_REVOKED
        revocation = document.history.add(
            status=pb.DOCUMENT_STATUS_REVOKED,
            reason=pb.REVOCATION_REASON_ISSUED_IN_ERROR,
            reason_text="typo",
        )
        revocation.changed_at.FromMilliseconds(T0_MS + 1000 + n)
    return document


class _FakeRegistry:
    """Just enough of RegistryService, answering from a genuine log; tests then make it lie."""

    def __init__(self, documents: list[pb.Document]) -> None:
        self.key = LOG_KEY
        self.documents: dict[str, pb.Document] = {}
        self.leaves: list[bytes] = []
        for document in documents:
            stored = pb.Document()
            stored.CopyFrom(document)
            for change in stored.history:
                change.leaf_index = len(self.leaves)
                self.leaves.append(b"")
            for index, entry in document_log_entries(stored):
                self.leaves[index] = entry.encode()
            self.documents[stored.document_id] = stored

    def _root(self, size: int, start: int = 0) -> bytes:
        """MTH of leaves ``[start, size)``."""
        nodes: dict[merkle.NodeKey, bytes] = {}
        for index, leaf in enumerate(self.leaves[start:size]):
            nodes.update(merkle.append_nodes(index, merkle.leaf_hash(leaf), nodes))
        return merkle.range_hash(0, size - start, nodes) if size > start else merkle.empty_root()

    def _nodes(self, keys: set[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        return {key: self._root(key.first_leaf + key.size, key.first_leaf) for key in keys}

    def signed_head(self, size: int | None = None, *, timestamp_ms: int = T0_MS + 5000,
                    key: ec.EllipticCurvePrivateKey | None = None) -> pb.SignedTreeHead:
        size = len(self.leaves) if size is None else size
        head = merkle.sign_tree_head(
            merkle.TreeHead(size, self._root(size), timestamp_ms), key or self.key
        )
        proto = pb.SignedTreeHead(
            tree_size=head.tree_size, root_hash=head.root_hash, signature=head.signature
        )
        proto.timestamp.FromMilliseconds(head.timestamp_ms)
        return proto

    # -- the RPCs the client's verification calls ----------------------------------------------

    def GetDocument(self, request: pb.GetDocumentRequest, **_: Any) -> pb.GetDocumentResponse:
        return pb.GetDocumentResponse(document=self.documents[request.document_id])

    def GetSignedTreeHead(self, request: Any, **_: Any) -> pb.GetSignedTreeHeadResponse:
        return pb.GetSignedTreeHeadResponse(tree_head=self.signed_head())

    def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, **_: Any
    ) -> pb.GetInclusionProofResponse:
        size = request.tree_size or len(self.leaves)
        path = merkle.inclusion_proof(request.leaf_index, size, self._nodes)
        return pb.GetInclusionProofResponse(
            tree_head=self.signed_head(size),
            audit_path=path,
            entry=pb.LogEntry(
                leaf_index=request.leaf_index, leaf_data=self.leaves[request.leaf_index]
            ),
        )

    def GetLogEntries(self, request: pb.GetLogEntriesRequest, **_: Any) -> pb.GetLogEntriesResponse:
        entries = []
        for index in range(request.start, min(request.end, len(self.leaves))):
            leaf = merkle.LogEntry.decode(self.leaves[index])
            event = pb.LogEventType.Value(f"LOG_EVENT_TYPE_{leaf.event_type.value}")
            entries.append(pb.LogEntry(leaf_index=index, event_type=event,
                                       leaf_data=self.leaves[index], document_id=leaf.document_id))
        return pb.GetLogEntriesResponse(entries=entries)

    def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, **_: Any
    ) -> pb.GetConsistencyProofResponse:
        proof = merkle.consistency_proof(
            request.first_tree_size, request.second_tree_size, self._nodes
        )
        return pb.GetConsistencyProofResponse(proof=proof)


#: The relying party's clock: a minute after the fake registry signed its heads.
NOW_MS = T0_MS + 65_000


def _client(registry: _FakeRegistry, *, now_ms: int = NOW_MS) -> RegistryClient:
    client = RegistryClient(
        "127.0.0.1:1",
        log_key=LOG_KEY.public_key(),
        max_attempts=1,
        sleep=lambda _: None,
        clock=lambda: now_ms / 1000,
    )
    client._stub = registry  # type: ignore[assignment]
    return client


@pytest.fixture
def registry() -> _FakeRegistry:
    return _FakeRegistry([_document(1), _document(2, revoked=True), _document(3)])


def test_an_honest_registry_verifies(registry: _FakeRegistry) -> None:
    client = _client(registry)
    for document_id in ("DOC-1", "DOC-2", "DOC-3"):
        verified = client.verify_document(document_id)
        assert verified.tree_head.tree_size == 4


def _shown(registry: _FakeRegistry, document_id: str) -> pb.Document:
    """A copy of the stored document, for the registry to show altered."""
    document = pb.Document()
    document.CopyFrom(registry.documents[document_id])
    return document


def test_a_tree_head_signed_by_another_key_is_refused(registry: _FakeRegistry) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    registry.GetSignedTreeHead = lambda request, **_: pb.GetSignedTreeHeadResponse(  # type: ignore[method-assign]
        tree_head=registry.signed_head(key=impostor))
    with pytest.raises(LogVerificationError, match="signature"):
        _client(registry).verify_document("DOC-1")


def test_a_leaf_that_is_not_the_document_shown_is_refused(registry: _FakeRegistry) -> None:
    shown = _shown(registry, "DOC-1")
    shown.metadata["holder"] = "someone else"
    with pytest.raises(LogVerificationError, match="not what the document says"):
        _client(registry).verify_document(shown)


def test_a_forged_inclusion_proof_is_refused(registry: _FakeRegistry) -> None:
    genuine = registry.GetInclusionProof

    def forged(request: pb.GetInclusionProofRequest, **_: Any) -> pb.GetInclusionProofResponse:
        reply = genuine(request)
        reply.audit_path[0] = bytes(32)
        return reply

    registry.GetInclusionProof = forged  # type: ignore[method-assign]
    with pytest.raises(LogVerificationError, match="root"):
        _client(registry).verify_document("DOC-1")


def test_a_smaller_tree_head_that_rewrites_history_is_refused(registry: _FakeRegistry) -> None:
    client = _client(registry)
    client.verify_document("DOC-3")  # the client has seen the head of size 4
    registry.leaves[0] = b"rewritten"
    registry.GetSignedTreeHead = lambda request, **_: pb.GetSignedTreeHeadResponse(  # type: ignore[method-assign]
        tree_head=registry.signed_head(2))
    with pytest.raises(LogVerificationError, match="rewritten"):
        client.get_signed_tree_head()


@pytest.mark.parametrize(
    "lie",
    [
        pytest.param(lambda d: d.history[0].changed_at.FromMilliseconds(-1), id="before-1970"),
        pytest.param(
            lambda d: setattr(d.history[0].changed_at, "seconds", 2**62), id="beyond-64-bit-millis"
        ),
        pytest.param(lambda d: setattr(d.history[1], "reason", 99), id="unknown-reason"),
        pytest.param(lambda d: d.metadata.update(holder="x" * 70_000), id="oversized-metadata"),
        pytest.param(
            lambda d: d.signer_certificate_sha256.extend([bytes(32)] * 70_000),
            id="too-many-signers",
        ),
    ],
)
def test_a_document_no_log_leaf_can_encode_is_a_verification_failure(
    registry: _FakeRegistry, lie: Callable[[pb.Document], None]
) -> None:
    # What a lying registry may show; the verify portal must get a FAILED check, not a crash.
    shown = _shown(registry, "DOC-2")
    lie(shown)
    with pytest.raises(LogVerificationError):
        _client(registry).verify_document(shown)


@pytest.mark.parametrize(
    ("tree_size", "timestamp_ms"),
    [(-1, T0_MS), (4, -1)],
    ids=["negative-size", "before-1970"],
)
def test_a_tree_head_with_out_of_range_fields_is_a_verification_failure(
    registry: _FakeRegistry, tree_size: int, timestamp_ms: int
) -> None:
    head = registry.signed_head()
    head.tree_size = tree_size
    head.timestamp.FromMilliseconds(timestamp_ms)
    registry.GetSignedTreeHead = lambda request, **_: pb.GetSignedTreeHeadResponse(  # type: ignore[method-assign]
        tree_head=head)
    with pytest.raises(LogVerificationError):
        _client(registry).get_signed_tree_head()


def test_two_heads_checked_at_the_same_time_are_checked_against_each_other() -> None:
    # A split view: the log shows one caller a tree of 3 and, while that head's consistency
    # proof is on its way, another caller of the same client a different tree of 4. Both extend
    # the head the client trusted; they contradict each other, and one of them must be refused.
    trusted = _FakeRegistry([_document(1), _document(2)])
    fork_a = _FakeRegistry([_document(1), _document(2), _document(3)])
    fork_b = _FakeRegistry([_document(1), _document(2), _document(4), _document(5)])
    client = _client(trusted)
    client.get_signed_tree_head()

    class SplitView:
        view, interleave = fork_a, True

        def GetSignedTreeHead(self, request: Any, **_: Any) -> pb.GetSignedTreeHeadResponse:
            return pb.GetSignedTreeHeadResponse(tree_head=self.view.signed_head())

        def GetConsistencyProof(
            self, request: pb.GetConsistencyProofRequest, **_: Any
        ) -> pb.GetConsistencyProofResponse:
            view = self.view
            if self.interleave:  # the other caller's check runs to its end meanwhile
                self.interleave, self.view = False, fork_b
                client.get_signed_tree_head()
                self.view = view
            source = view if request.second_tree_size <= len(view.leaves) else fork_b
            return source.GetConsistencyProof(request)

    client._stub = SplitView()  # type: ignore[assignment]
    with pytest.raises(LogVerificationError, match="rewritten"):
        client.get_signed_tree_head()


def _superseded(registry: _FakeRegistry, document_id: str, by: str) -> pb.Document:
    """``document_id`` as the registry would show it superseded by ``by`` (not in the log)."""
    shown = _shown(registry, document_id)
    shown.status = pb.DOCUMENT_STATUS_SUPERSEDED
    shown.superseded_by = by
    change = shown.history.add(status=pb.DOCUMENT_STATUS_SUPERSEDED, superseded_by=by)
    change.changed_at.FromMilliseconds(T0_MS + 2000)
    change.leaf_index = 4
    return shown


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        pytest.param(
            lambda d: d.registered_at.FromMilliseconds(T0_MS - 86_400_000),
            "registered_at",
            id="registered-at-not-the-logged-time",
        ),
        pytest.param(
            lambda d: (setattr(d.history[0], "superseded_by", "DOC-3"),
                       setattr(d, "superseded_by", "DOC-3")),
            "what no registration logs",
            id="superseded-by-on-the-registration",
        ),
        pytest.param(
            lambda d: setattr(d.history[0], "reason_text", "withdrawn"),
            "what no registration logs",
            id="reason-on-the-registration",
        ),
        pytest.param(
            lambda d: setattr(d.history[1], "leaf_index", 0),
            "log order",
            id="changes-out-of-log-order",
        ),
    ],
)
def test_what_no_leaf_of_the_document_records_is_refused(
    registry: _FakeRegistry, lie: Callable[[pb.Document], object], message: str
) -> None:
    # Fields the shown document carries beside its leaves: a registry could set them at will,
    # and the verify portal shows them as proven.
    shown = _shown(registry, "DOC-2")
    lie(shown)
    with pytest.raises(LogVerificationError, match=message):
        _client(registry).verify_document(shown)


def test_superseded_by_comes_from_the_supersession_only() -> None:
    registry = _FakeRegistry([_document(1), _document(2, revoked=True), _document(3)])
    revoked_with_a_successor = _shown(registry, "DOC-2")
    revoked_with_a_successor.history[1].superseded_by = "DOC-3"
    revoked_with_a_successor.superseded_by = "DOC-3"
    with pytest.raises(LogVerificationError, match="only a supersession"):
        _client(registry).verify_document(revoked_with_a_successor)
    superseded = _superseded(registry, "DOC-1", by="DOC-3")
    superseded.superseded_by = "DOC-2"  # not the one its SUPERSEDED change names
    with pytest.raises(LogVerificationError, match="superseded_by"):
        _client(registry).verify_document(superseded)


def test_an_answer_about_another_document_is_refused(registry: _FakeRegistry) -> None:
    # Asked for DOC-2 (revoked), the registry shows DOC-1 (registered), a genuine entry whose
    # proofs all verify: only the question tells it is the wrong answer.
    registry.GetDocument = lambda request, **_: pb.GetDocumentResponse(  # type: ignore[method-assign]
        document=registry.documents["DOC-1"])
    with pytest.raises(LogVerificationError, match="another document"):
        _client(registry).verify_document("DOC-2")


def test_a_lookup_answered_with_another_digests_document_is_refused(
    registry: _FakeRegistry,
) -> None:
    registry.LookupByHash = lambda request, **_: pb.LookupByHashResponse(  # type: ignore[attr-defined]
        documents=[registry.documents["DOC-1"]])
    client = _client(registry)
    assert client.lookup_by_hash(bytes([1]) * 32)[0].document_id == "DOC-1"
    with pytest.raises(LogVerificationError, match="another digest"):
        client.lookup_by_hash(bytes([0xEE]) * 32)


def test_an_empty_tree_head_with_another_root_is_refused(registry: _FakeRegistry) -> None:
    # RFC 9162 2.1.1: the hash of an empty list is SHA-256 of the empty string; a signed head of
    # size 0 with any other root is no head of this log's (and no consistency proof checks it).
    head = registry.signed_head(0)
    head.root_hash = bytes(32)
    head.signature = merkle.sign_tree_head(
        merkle.TreeHead(0, bytes(32), T0_MS + 5000), LOG_KEY
    ).signature
    registry.GetSignedTreeHead = lambda request, **_: pb.GetSignedTreeHeadResponse(  # type: ignore[method-assign]
        tree_head=head)
    with pytest.raises(LogVerificationError, match="empty tree"):
        _client(registry).get_signed_tree_head()


def _serve_head(registry: _FakeRegistry, size: int, timestamp_ms: int) -> None:
    registry.GetSignedTreeHead = lambda request, **_: pb.GetSignedTreeHeadResponse(  # type: ignore[method-assign]
        tree_head=registry.signed_head(size, timestamp_ms=timestamp_ms))


def test_a_stale_tree_head_proves_no_status(registry: _FakeRegistry) -> None:
    # Captured before DOC-2's revocation and replayed: the head of 2 leaves and the document
    # as it was. Every signature and proof is genuine; only the head's age gives it away.
    before = _shown(registry, "DOC-2")
    before.status = pb.DOCUMENT_STATUS_REGISTERED
    del before.history[1]
    _serve_head(registry, 2, T0_MS)
    with pytest.raises(LogVerificationError, match="s old"):
        _client(registry, now_ms=T0_MS + 301_000).verify_document(before)
    assert _client(registry, now_ms=T0_MS + 299_000).verify_document(before)  # within 5 min


def test_a_tree_head_dated_in_the_future_is_refused(registry: _FakeRegistry) -> None:
    _serve_head(registry, 4, NOW_MS + 61_000)  # beyond a minute of clock skew
    with pytest.raises(LogVerificationError, match="future"):
        _client(registry).get_signed_tree_head()


def test_a_larger_tree_dated_before_a_smaller_one_is_refused(registry: _FakeRegistry) -> None:
    # An earlier size signed with a later date than the current tree: the pair a registry
    # would need to pass a pre-revocation view off as fresh.
    client = _client(registry)
    _serve_head(registry, 4, T0_MS)
    client.get_signed_tree_head()
    _serve_head(registry, 2, T0_MS + 61_000)
    with pytest.raises(LogVerificationError, match="dated before"):
        client.get_signed_tree_head()


def test_a_status_is_proven_in_the_largest_tree_the_client_trusts(
    registry: _FakeRegistry,
) -> None:
    client = _client(registry)
    client.verify_document("DOC-3")  # the client trusts the head of 4 leaves
    _serve_head(registry, 2, T0_MS + 1000)  # then the registry answers with an earlier one
    asked: list[int] = []
    genuine = registry.GetInclusionProof

    def recorded(request: pb.GetInclusionProofRequest, **_: Any) -> pb.GetInclusionProofResponse:
        asked.append(request.tree_size)
        return genuine(request)

    registry.GetInclusionProof = recorded  # type: ignore[method-assign]
    verified = client.verify_document("DOC-1")
    assert verified.tree_head.tree_size == 4 and asked == [4]


def test_an_audit_refuses_entries_labelled_with_what_their_leaf_does_not_record(
    registry: _FakeRegistry,
) -> None:
    head, entries = _client(registry).audit_log()
    assert head.tree_size == len(entries) == 4
    genuine = registry.GetLogEntries

    def mislabelled(request: pb.GetLogEntriesRequest, **_: Any) -> pb.GetLogEntriesResponse:
        reply = genuine(request)
        reply.entries[2].document_id = "DOC-999"  # DOC-2's revocation, shown as another's
        return reply

    registry.GetLogEntries = mislabelled  # type: ignore[method-assign]
    with pytest.raises(LogVerificationError, match="leaf 2 is labelled"):
        _client(registry).audit_log()


def test_a_leaf_has_exactly_one_reading(registry: _FakeRegistry) -> None:
    for leaf in registry.leaves:
        assert merkle.LogEntry.decode(leaf).encode() == leaf
    leaf = registry.leaves[2]
    assert merkle.LogEntry.decode(leaf).event_type is merkle.LogEventType.REVOKED
    for broken in (leaf + b"\x00", leaf[:-1], b"\x02" + leaf[1:], b""):
        with pytest.raises(ValueError):
            merkle.LogEntry.decode(broken)


def test_without_leaf_data_an_audit_and_a_proof_go_by_the_leaf_hashes(
    registry: _FakeRegistry,
) -> None:
    # What the registry shows a caller who is no auditor: no document ids, only hashes.
    genuine_entries, genuine_proof = registry.GetLogEntries, registry.GetInclusionProof

    def hashes_only(request: pb.GetLogEntriesRequest, **_: Any) -> pb.GetLogEntriesResponse:
        return pb.GetLogEntriesResponse(entries=[
            pb.LogEntry(leaf_index=e.leaf_index, leaf_hash=merkle.leaf_hash(e.leaf_data))
            for e in genuine_entries(request).entries])

    def proof_without_data(request: pb.GetInclusionProofRequest,
                           **_: Any) -> pb.GetInclusionProofResponse:
        reply = genuine_proof(request)
        reply.entry.leaf_hash = merkle.leaf_hash(reply.entry.leaf_data)
        reply.entry.leaf_data = b""
        return reply

    registry.GetLogEntries = hashes_only  # type: ignore[method-assign]
    registry.GetInclusionProof = proof_without_data  # type: ignore[method-assign]
    client = _client(registry)
    head, entries = client.audit_log()
    assert head.tree_size == 4 and not any(e.leaf_data for e in entries)
    assert client.verify_document("DOC-2")

    def wrong_hash(request: pb.GetLogEntriesRequest, **_: Any) -> pb.GetLogEntriesResponse:
        reply = hashes_only(request)
        reply.entries[1].leaf_hash = bytes(32)
        return reply

    registry.GetLogEntries = wrong_hash  # type: ignore[method-assign]
    with pytest.raises(LogVerificationError, match="signed root"):
        _client(registry).audit_log()
