"""Typed client of the registry (``egov.registry.v1``) that checks the log's answers itself.

    client = RegistryClient(channel, log_key=pinned_public_key, token=access_token)
    document = client.register(sha256=digest, issuer="TH-JUR:0994000165455",
                               document_type="business-registration")
    proof = client.verify_document(document.document_id)   # raises LogVerificationError

Every call has a deadline, never later than the deadline of the call being served when there
is one (``egov_common.deadlines``). ``register``/``register_many`` retry on UNAVAILABLE (and on
DEADLINE_EXCEEDED, since the server may have committed) with the SAME idempotency key, so a
retry can never create a second document; no retry is made that would start after the
deadline of the call being served. Tree heads are checked against the pinned log key,
inclusion proofs against the head, the leaf against the document the server showed, and each new
head against the last one this client saw (consistency proof): the server is not trusted.
Errors from the server arrive as ``egov_common.errors.EgovError`` subclasses with their reason.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from egov.registry.v1 import registry_pb2 as pb
from egov.registry.v1 import registry_pb2_grpc
from egov.type.v1 import party_pb2
from egov_common.deadlines import remaining
from egov_common.errors import Code, DeadlineExceeded, EgovError, error_for_code
from egov_common.settings import ServiceSettings
from egov_common.status import from_rpc_error
from egov_pki import merkle
from google.protobuf import timestamp_pb2

__all__ = [
    "LogVerificationError",
    "RegistryClient",
    "VerifiedDocument",
    "deciding_entry",
    "document_log_entries",
    "party",
    "tree_head_from_proto",
]

T = TypeVar("T")

_RETRYABLE = {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}
_NAMESPACES = {
    party_pb2.IDENTIFIER_NAMESPACE_TH_PID: "TH-PID",
    party_pb2.IDENTIFIER_NAMESPACE_TH_JUR: "TH-JUR",
    party_pb2.IDENTIFIER_NAMESPACE_PASSPORT: "PASSPORT",
}
_STATUS = {
    pb.DOCUMENT_STATUS_REGISTERED: "REGISTERED",
    pb.DOCUMENT_STATUS_REVOKED: "REVOKED",
    pb.DOCUMENT_STATUS_SUPERSEDED: "SUPERSEDED",
}


class LogVerificationError(merkle.MerkleProofError):
    """The registry's answer does not check out: bad signature, proof, leaf or history."""


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A document whose every status change shown was found in a tree head signed by the log
    key. What a log proves is that the changes shown are in it, not that none is missing: a
    registry leaving out a later revocation is caught by whoever audits the whole log
    (:meth:`RegistryClient.audit_log`, or the issuer, who holds the revocation's proof), not
    by this check alone."""

    document: pb.Document
    tree_head: merkle.TreeHead


def party(identifier: str) -> party_pb2.PartyIdentifier:
    """``"TH-JUR:0994000165455"`` -> PartyIdentifier (namespace is explicit, never guessed)."""
    namespace, _, value = identifier.partition(":")
    numbers = {name: number for number, name in _NAMESPACES.items()}
    if namespace not in numbers or not value:
        raise ValueError(f"expected <TH-PID|TH-JUR|PASSPORT>:<value>, got {identifier!r}")
    return party_pb2.PartyIdentifier(namespace=numbers[namespace], value=value)


def _party_string(identifier: party_pb2.PartyIdentifier) -> str:
    if not identifier.value and not identifier.namespace:
        return ""
    return f"{_NAMESPACES.get(identifier.namespace, '')}:{identifier.value}"


def _ms(ts: timestamp_pb2.Timestamp) -> int:
    return int(ts.seconds) * 1000 + int(ts.nanos) // 1_000_000


def _load_key(key: ec.EllipticCurvePublicKey | bytes) -> ec.EllipticCurvePublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    loaded = (
        serialization.load_pem_public_key(key)
        if key.lstrip().startswith(b"-----")
        else serialization.load_der_public_key(key)
    )
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise ValueError("the registry log key must be an ECDSA P-256 public key")
    return loaded


def tree_head_from_proto(head: pb.SignedTreeHead) -> merkle.TreeHead:
    return merkle.TreeHead(
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        timestamp_ms=_ms(head.timestamp),
        signature=head.signature,
    )


#: Document statuses, the most severe first (see deciding_entry).
_SEVERITY = {
    pb.DOCUMENT_STATUS_REVOKED: 0,
    pb.DOCUMENT_STATUS_SUPERSEDED: 1,
    pb.DOCUMENT_STATUS_REGISTERED: 2,
}


def deciding_entry(documents: Sequence[pb.Document]) -> pb.Document:
    """The entry that speaks for a digest that several issuers registered (LookupByHash: one
    entry per issuer, oldest first): the most severe status, so one issuer's revocation is
    never hidden by another's entry; among equals the newest. ``documents`` is not empty."""
    return min(reversed(documents), key=lambda d: _SEVERITY.get(d.status, len(_SEVERITY)))


def document_log_entries(document: pb.Document) -> list[tuple[int, merkle.LogEntry]]:
    """The leaves the log must hold for ``document``, recomputed from what the server showed.

    One ``(leaf_index, entry)`` per status change, oldest first. The layout is the one the
    server appends (``egov_pki.merkle.LogEntry``), so any edit of a stored document or history
    row yields a leaf that is not in the signed tree. ``supersedes`` is proven by the
    replaced document's SUPERSEDED leaf: verify that document to rely on it.
    Raises :class:`LogVerificationError` for a document no log leaf can encode.
    """
    issuer = _party_string(document.issuer)
    try:
        details = merkle.document_details_sha256(
            document_type=document.document_type,
            subject=_party_string(document.subject) if document.HasField("subject") else "",
            signer_certificate_sha256=list(document.signer_certificate_sha256),
            valid_from_ms=_ms(document.valid_from),
            valid_until_ms=_ms(document.valid_until) if document.HasField("valid_until") else None,
            metadata=dict(document.metadata),
        )
    except ValueError as exc:
        raise LogVerificationError(f"the document cannot be in the log: {exc}") from None
    entries: list[tuple[int, merkle.LogEntry]] = []
    for position, change in enumerate(document.history):
        status = _STATUS.get(change.status, "")
        if position > 0 and change.leaf_index <= document.history[position - 1].leaf_index:
            raise LogVerificationError("the document's status changes are not in log order")
        if position == 0:
            if status != "REGISTERED":
                raise LogVerificationError("a document's history must start with REGISTERED")
            # No REGISTERED leaf records these: shown there, they would pass unproven.
            if change.superseded_by or change.reason or change.reason_text:
                raise LogVerificationError("the registration shows what no registration logs")
            if _ms(document.registered_at) != _ms(change.changed_at):
                raise LogVerificationError("registered_at differs from the logged registration")
            entry = merkle.LogEntry(
                document_id=document.document_id,
                sha256=document.sha256,
                issuer_agency=issuer,
                event_type=merkle.LogEventType.REGISTERED,
                status=status,
                timestamp_ms=_ms(change.changed_at),
                details_sha256=details,
            )
        else:
            if status not in ("REVOKED", "SUPERSEDED"):
                raise LogVerificationError(f"unexpected status change to {status or 'nothing'}")
            if bool(change.superseded_by) != (status == "SUPERSEDED"):
                raise LogVerificationError("only a supersession names the document replacing it")
            reason = ""
            if change.reason not in pb.RevocationReason.values():
                raise LogVerificationError(f"unknown revocation reason {change.reason}")
            if change.reason != pb.REVOCATION_REASON_UNSPECIFIED:
                reason = pb.RevocationReason.Name(change.reason).removeprefix("REVOCATION_REASON_")
            entry = merkle.LogEntry(
                document_id=document.document_id,
                sha256=document.sha256,
                issuer_agency=issuer,
                event_type=merkle.LogEventType(status),
                status=status,
                timestamp_ms=_ms(change.changed_at),
                related_document_id=change.superseded_by,
                reason=reason,
                details_sha256=merkle.text_sha256(change.reason_text),
            )
        try:
            entry.encode()  # a date before 1970 or an oversized field: no leaf holds it
        except ValueError as exc:
            raise LogVerificationError(f"the document cannot be in the log: {exc}") from None
        entries.append((change.leaf_index, entry))
    if not entries:
        raise LogVerificationError("the document has no history")
    if document.status != document.history[-1].status:
        raise LogVerificationError("the document's status is not its last status change")
    replaced_by = next(
        (c.superseded_by for c in document.history if c.status == pb.DOCUMENT_STATUS_SUPERSEDED),
        "",
    )
    if document.superseded_by != replaced_by:
        raise LogVerificationError("superseded_by differs from the logged supersession")
    return entries


_EVENT_TYPES = {
    pb.LOG_EVENT_TYPE_REGISTERED: merkle.LogEventType.REGISTERED,
    pb.LOG_EVENT_TYPE_REVOKED: merkle.LogEventType.REVOKED,
    pb.LOG_EVENT_TYPE_SUPERSEDED: merkle.LogEventType.SUPERSEDED,
}


def _check_labels(entry: pb.LogEntry) -> None:
    """``entry``'s document id and event type are what its leaf records."""
    try:
        leaf = merkle.LogEntry.decode(entry.leaf_data)
    except ValueError as exc:
        raise LogVerificationError(f"leaf {entry.leaf_index} is no log entry: {exc}") from None
    event = _EVENT_TYPES.get(entry.event_type)
    if (entry.document_id, event) != (leaf.document_id, leaf.event_type):
        raise LogVerificationError(
            f"leaf {entry.leaf_index} is labelled with what it does not record"
        )


#: A client's own connection: its own subchannel, and messages as large as the registry sends
#: (a batch of 500 registrations or a page of 500 documents with full metadata is over gRPC's
#: default 4 MiB; the registry's limit is ServiceSettings.max_message_bytes).
_OWN_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", ServiceSettings.model_fields["max_message_bytes"].default),
    ("grpc.max_send_message_length", ServiceSettings.model_fields["max_message_bytes"].default),
]


class RegistryClient:
    """Registry calls with deadlines, safe retries and client-side log verification.

    ``channel``: a ``grpc.Channel`` (``egov_common.channels.open_channel``) or ``host:port``
    (plaintext, development; the client then has a connection of its own, so several clients
    are spread over the worker processes of a registry with ``EGOV_REGISTRY_PROCESSES`` > 1).
    ``log_key``: the registry's tree-head public key (PEM, DER or key object), pinned out of
    band; when None, the key from ``GetLogInfo`` is trusted on first use (development only).
    ``token``: bearer token for issuer calls. ``deadline``: seconds per call.
    ``max_head_age``: seconds; a document's status is proven only against a tree head signed
    at most this long ago, so that a stale head replayed from before a revocation is refused
    (None: no limit). ``clock_skew``: seconds the registry's clock may be ahead of ours, or
    a later head's behind an earlier one's. ``clock``: now, in seconds since the epoch.
    """

    def __init__(
        self,
        channel: grpc.Channel | str,
        *,
        log_key: ec.EllipticCurvePublicKey | bytes | None = None,
        token: str | None = None,
        deadline: float = 10.0,
        max_attempts: int = 6,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        max_head_age: float | None = 300.0,
        clock_skew: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_head_age_ms = None if max_head_age is None else int(max_head_age * 1000)
        self._skew_ms = int(clock_skew * 1000)
        self._clock = clock
        self._owns_channel = isinstance(channel, str)
        self._channel = (
            grpc.insecure_channel(channel, options=_OWN_CHANNEL_OPTIONS)
            if isinstance(channel, str)
            else channel
        )
        self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep
        self._log_key = _load_key(log_key) if log_key is not None else None
        self._trusted_head: merkle.TreeHead | None = None
        self._head_lock = threading.Lock()

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def trusted_tree_head(self) -> merkle.TreeHead | None:
        """The newest tree head this client verified (signature and consistency)."""
        return self._trusted_head

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, method: Callable[..., T], request: Any, *, retry: bool = False) -> T:
        """``method(request)`` with this client's deadline, cut to what is left of the deadline
        of the call being served (if any); retried (``retry``) while that deadline allows."""
        attempt = 0
        while True:
            attempt += 1
            left = remaining()
            if left is not None and left <= 0:
                raise DeadlineExceeded(
                    "DEADLINE_EXCEEDED", "no time left for a registry call before the deadline"
                )
            timeout = self._deadline if left is None else min(self._deadline, left)
            try:
                return method(request, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as err:
                error = from_rpc_error(err)
                if not retry or error.code not in _RETRYABLE or attempt >= self._max_attempts:
                    raise error from None
            pause = self._backoff * 2 ** (attempt - 1) * (0.5 + secrets.randbelow(1000) / 1000)
            left = remaining()
            if left is not None and pause >= left:
                raise error from None  # the next attempt would start after the deadline
            self._sleep(pause)

    # -- documents --------------------------------------------------------------------------

    def reserve_document_id(
        self, issuer: str, document_type: str, idempotency_key: str = ""
    ) -> pb.ReserveDocumentIdResponse:
        """A document id to print before signing. With the idempotency key the registration
        will carry, ALREADY_EXISTS (ALREADY_REGISTERED, metadata ``document_id``) when it is
        registered already: a retry of a signing whose answer was lost."""
        reply: pb.ReserveDocumentIdResponse = self._call(
            self._stub.ReserveDocumentId,
            pb.ReserveDocumentIdRequest(
                issuer=party(issuer), document_type=document_type, idempotency_key=idempotency_key
            ),
            retry=True,  # a lost answer only leaves an unused reservation behind
        )
        return reply

    @staticmethod
    def registration(
        *,
        sha256: bytes,
        issuer: str,
        document_type: str,
        subject: str = "",
        idempotency_key: str = "",
        document_id: str = "",
        signer_certificate_sha256: Sequence[bytes] = (),
        valid_from_ms: int | None = None,
        valid_until_ms: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> pb.RegisterDocumentRequest:
        """A RegisterDocumentRequest; a fresh random idempotency key when none is given."""
        request = pb.RegisterDocumentRequest(
            idempotency_key=idempotency_key or secrets.token_urlsafe(24),
            document_id=document_id,
            sha256=sha256,
            issuer=party(issuer),
            document_type=document_type,
            signer_certificate_sha256=list(signer_certificate_sha256),
            metadata=dict(metadata or {}),
        )
        if subject:
            request.subject.CopyFrom(party(subject))
        if valid_from_ms is not None:
            request.valid_from.FromMilliseconds(valid_from_ms)
        if valid_until_ms is not None:
            request.valid_until.FromMilliseconds(valid_until_ms)
        return request

    def register(self, **fields: Any) -> pb.Document:
        """Register one document (fields as :meth:`registration`); retried with the same key."""
        request = fields.pop("request", None) or self.registration(**fields)
        response: pb.RegisterDocumentResponse = self._call(
            self._stub.RegisterDocument, request, retry=True
        )
        return response.document

    def register_request(self, request: pb.RegisterDocumentRequest) -> pb.RegisterDocumentResponse:
        """Send a prepared request (keeps its idempotency key across retries)."""
        reply: pb.RegisterDocumentResponse = self._call(
            self._stub.RegisterDocument, request, retry=True
        )
        return reply

    def register_many(
        self, requests: Sequence[pb.RegisterDocumentRequest]
    ) -> list[pb.RegisterDocumentResponse | EgovError]:
        """Register in batches of at most 500; one response or error per request, in order.

        The whole batch is retried on UNAVAILABLE with the same keys, so entries that were
        committed before the failure come back as replays.
        """
        results: list[pb.RegisterDocumentResponse | EgovError] = []
        for start in range(0, len(requests), 500):
            chunk = list(requests[start : start + 500])
            reply: pb.RegisterDocumentsResponse = self._call(
                self._stub.RegisterDocuments,
                pb.RegisterDocumentsRequest(requests=chunk),
                retry=True,
            )
            for result in reply.results:
                if result.HasField("response"):
                    results.append(result.response)
                else:
                    code = Code.__members__.get(result.error.code, Code.UNKNOWN)
                    results.append(error_for_code(code)(result.error.reason, result.error.message))
        return results

    def get_document(self, document_id: str) -> pb.Document:
        """The document with this id. :class:`LogVerificationError` when the registry answers
        with another one (what it answers is proven by :meth:`verify_document`, which proves
        the document shown, whichever it is)."""
        reply: pb.GetDocumentResponse = self._call(
            self._stub.GetDocument, pb.GetDocumentRequest(document_id=document_id), retry=True
        )
        if reply.document.document_id != document_id:
            raise LogVerificationError("the registry answered with another document")
        return reply.document

    def lookup_by_hash(self, sha256: bytes) -> list[pb.Document]:
        """The documents registered with this digest, one per issuer.
        :class:`LogVerificationError` when the registry answers with a document of another
        digest (each document's leaves commit to its own digest, so proving it would not
        catch that)."""
        reply: pb.LookupByHashResponse = self._call(
            self._stub.LookupByHash, pb.LookupByHashRequest(sha256=sha256), retry=True
        )
        if any(document.sha256 != sha256 for document in reply.documents):
            raise LogVerificationError("the registry answered with a document of another digest")
        return list(reply.documents)

    def list_documents(self, request: pb.ListDocumentsRequest) -> pb.ListDocumentsResponse:
        reply: pb.ListDocumentsResponse = self._call(self._stub.ListDocuments, request, retry=True)
        return reply

    def revoke(
        self, document_id: str, reason: pb.RevocationReason, reason_text: str = ""
    ) -> pb.Document:
        """Revoke; a retry of the same revocation is answered with the revoked document."""
        reply: pb.RevokeDocumentResponse = self._call(
            self._stub.RevokeDocument,
            pb.RevokeDocumentRequest(
                document_id=document_id, reason=reason, reason_text=reason_text
            ),
            retry=True,
        )
        return reply.document

    def supersede(
        self, document_id: str, new_document_id: str, reason_text: str = ""
    ) -> pb.SupersedeDocumentResponse:
        reply: pb.SupersedeDocumentResponse = self._call(
            self._stub.SupersedeDocument,
            pb.SupersedeDocumentRequest(
                document_id=document_id, new_document_id=new_document_id, reason_text=reason_text
            ),
            retry=True,
        )
        return reply

    # -- the log, verified --------------------------------------------------------------------

    def _key(self) -> ec.EllipticCurvePublicKey:
        if self._log_key is None:
            info: pb.GetLogInfoResponse = self._call(
                self._stub.GetLogInfo, pb.GetLogInfoRequest(), retry=True
            )
            self._log_key = _load_key(info.public_key_der)
        return self._log_key

    def _checked_head(self, head: pb.SignedTreeHead) -> merkle.TreeHead:
        """Signature by the pinned key, and consistency with the last head this client saw."""
        tree_head = tree_head_from_proto(head)
        if tree_head.tree_size == 0 and tree_head.root_hash != merkle.empty_root():
            raise LogVerificationError("an empty tree's root must be SHA-256 of nothing")
        if tree_head.timestamp_ms > self._now_ms() + self._skew_ms:
            raise LogVerificationError("the tree head is dated in the future")
        key = self._key()
        if head.log_id and head.log_id != merkle.log_id(key):
            raise LogVerificationError("the tree head names another log")
        try:
            merkle.verify_tree_head_signature(tree_head, key)
        except merkle.MerkleProofError as exc:
            raise LogVerificationError(str(exc)) from None
        self._advance(tree_head)
        return tree_head

    def _advance(self, head: merkle.TreeHead) -> None:
        """Check ``head`` against the newest head seen so far; keep the newer one.

        Thread-safe: the lock guards the remembered head only, never a call to the server. A
        head another call trusted meanwhile is checked against ``head`` too: otherwise two forks
        that each extend the old head would both pass (a split view).
        """
        while True:
            with self._head_lock:
                trusted = self._trusted_head
                if trusted is None:
                    self._trusted_head = head
                    return
            if head.tree_size == trusted.tree_size:
                if head.root_hash != trusted.root_hash:
                    raise LogVerificationError("two signed roots for one tree size: the log forked")
            else:
                old, new = sorted((trusted, head), key=lambda h: h.tree_size)
                # RFC 6962 3.5: a larger tree is never older (the registry signs a head of an
                # earlier size with the time that size was reached).
                if old.timestamp_ms > new.timestamp_ms + self._skew_ms:
                    raise LogVerificationError("a larger tree head is dated before a smaller one")
                if old.tree_size > 0:
                    self._check_consistency(old, new)
            with self._head_lock:
                if self._trusted_head is not trusted:
                    continue
                if head.tree_size > trusted.tree_size:
                    self._trusted_head = head
                return

    def _check_consistency(self, old: merkle.TreeHead, new: merkle.TreeHead) -> None:
        reply: pb.GetConsistencyProofResponse = self._call(
            self._stub.GetConsistencyProof,
            pb.GetConsistencyProofRequest(
                first_tree_size=old.tree_size, second_tree_size=new.tree_size
            ),
            retry=True,
        )
        try:
            merkle.verify_consistency(
                old.tree_size, new.tree_size, old.root_hash, new.root_hash, list(reply.proof)
            )
        except merkle.MerkleProofError as exc:
            raise LogVerificationError(f"the log was rewritten: {exc}") from None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def get_signed_tree_head(self) -> merkle.TreeHead:
        """The latest tree head, verified (signature; consistent with earlier heads seen)."""
        reply: pb.GetSignedTreeHeadResponse = self._call(
            self._stub.GetSignedTreeHead, pb.GetSignedTreeHeadRequest(), retry=True
        )
        return self._checked_head(reply.tree_head)

    def current_tree_head(self) -> merkle.TreeHead:
        """The tree head to prove a status against: the latest, verified and no older than
        ``max_head_age``, or the larger head this client trusted already (a registry that
        answers with a head from before one it showed earlier hides nothing that way)."""
        head = self.get_signed_tree_head()
        age_ms = self._now_ms() - head.timestamp_ms
        if self._max_head_age_ms is not None and age_ms > self._max_head_age_ms:
            raise LogVerificationError(
                f"the registry's latest tree head is {age_ms // 1000} s old: a stale head "
                "may be from before a revocation (or this machine's clock is wrong)"
            )
        with self._head_lock:
            trusted = self._trusted_head
        return trusted if trusted is not None and trusted.tree_size > head.tree_size else head

    def verify_consistency(self, old: merkle.TreeHead, new: merkle.TreeHead) -> None:
        """Check that ``new`` extends ``old`` (both must carry valid signatures)."""
        key = self._key()
        for head in (old, new):
            try:
                merkle.verify_tree_head_signature(head, key)
            except merkle.MerkleProofError as exc:
                raise LogVerificationError(str(exc)) from None
        if old.tree_size > 0:
            self._check_consistency(old, new)

    def verify_leaf(self, leaf_index: int, leaf_data: bytes, tree_size: int = 0) -> merkle.TreeHead:
        """Prove ``leaf_data`` is leaf ``leaf_index`` of a signed tree; returns that head."""
        reply: pb.GetInclusionProofResponse = self._call(
            self._stub.GetInclusionProof,
            pb.GetInclusionProofRequest(leaf_index=leaf_index, tree_size=tree_size),
            retry=True,
        )
        head = self._checked_head(reply.tree_head)
        # The registry shows a leaf's data only to auditors (anyone else gets its hash); either
        # must be of what the document says. The proof below is checked against our own hash.
        shown = reply.entry.leaf_data or leaf_data
        if (
            reply.entry.leaf_index != leaf_index
            or shown != leaf_data
            or (reply.entry.leaf_hash and reply.entry.leaf_hash != merkle.leaf_hash(leaf_data))
        ):
            raise LogVerificationError(f"leaf {leaf_index} is not what the document says")
        try:
            merkle.verify_inclusion(
                merkle.leaf_hash(leaf_data),
                leaf_index,
                head.tree_size,
                list(reply.audit_path),
                head.root_hash,
            )
        except merkle.MerkleProofError as exc:
            raise LogVerificationError(str(exc)) from None
        return head

    def log_entries(self, start: int, end: int) -> list[pb.LogEntry]:
        """Log entries ``[start, end)``, fetched 1,000 per call."""
        entries: list[pb.LogEntry] = []
        for first in range(start, end, 1000):
            reply: pb.GetLogEntriesResponse = self._call(
                self._stub.GetLogEntries,
                pb.GetLogEntriesRequest(start=first, end=min(end, first + 1000)),
                retry=True,
            )
            entries.extend(reply.entries)
        return entries

    def audit_log(self) -> tuple[merkle.TreeHead, list[pb.LogEntry]]:
        """What an auditor does: download every entry and recompute the signed root.

        With a token of scope ``registry:audit`` the entries carry their leaves' data, which
        is what is hashed; without one, only their leaf hashes (enough to recompute the root).
        Raises :class:`LogVerificationError` when the entries do not hash to the signed head,
        when an index is missing or repeated, when an entry is labelled with another document
        or event than its leaf records (or its leaf is no log entry), or (as every head does)
        when the head is not consistent with the newest head this client verified before.
        """
        head = self.get_signed_tree_head()
        entries = self.log_entries(0, head.tree_size)
        if [e.leaf_index for e in entries] != list(range(head.tree_size)):
            raise LogVerificationError("the log's entries are not numbered 0..size-1")
        nodes: dict[merkle.NodeKey, bytes] = {}
        for entry in entries:
            if entry.leaf_data:
                _check_labels(entry)
                hashed = merkle.leaf_hash(entry.leaf_data)
            elif len(entry.leaf_hash) == merkle.HASH_SIZE:
                hashed = entry.leaf_hash
            else:
                raise LogVerificationError(f"leaf {entry.leaf_index} has neither data nor hash")
            nodes.update(merkle.append_nodes(entry.leaf_index, hashed, nodes))
        root = merkle.range_hash(0, head.tree_size, nodes) if entries else merkle.empty_root()
        if root != head.root_hash:
            raise LogVerificationError("the log's entries do not hash to the signed root")
        return head, entries

    def verify_document(self, document: str | pb.Document) -> VerifiedDocument:
        """Fetch (if given an id) and prove every status change of a document.

        Raises :class:`LogVerificationError` when any leaf, proof, signature, consistency or
        freshness check fails (:meth:`current_tree_head`), and ``EgovError`` (e.g. NOT_FOUND
        DOCUMENT_NOT_FOUND) from the server.
        """
        shown = self.get_document(document) if isinstance(document, str) else document
        entries = document_log_entries(shown)
        head = self.current_tree_head()
        for leaf_index, entry in entries:
            if not 0 <= leaf_index < head.tree_size:
                raise LogVerificationError(f"leaf {leaf_index} is beyond the signed tree")
            self.verify_leaf(leaf_index, entry.encode(), head.tree_size)
        return VerifiedDocument(shown, head)


def demo(address: str, *, token: str, issuer: str) -> dict[str, Any]:
    """What ``make demo`` shows for the registry: reserve, register, verify, revoke, verify.

    Returns a small summary (document id, tree sizes, statuses) for the demo to print.
    """
    import hashlib

    with RegistryClient(address, token=token) as client:
        reservation = client.reserve_document_id(issuer, "demo-certificate")
        document = client.register(
            sha256=hashlib.sha256(reservation.document_id.encode()).digest(),
            issuer=issuer,
            document_type="demo-certificate",
            document_id=reservation.document_id,
            metadata={"title": "demo"},
        )
        first = client.verify_document(document.document_id)
        client.revoke(document.document_id, pb.REVOCATION_REASON_ISSUED_IN_ERROR, "demo")
        second = client.verify_document(document.document_id)
        return {
            "document_id": document.document_id,
            "verification_url": reservation.verification_url,
            "registered_tree_size": first.tree_head.tree_size,
            "status_after_revocation": pb.DocumentStatus.Name(second.document.status),
            "tree_size": second.tree_head.tree_size,
        }
