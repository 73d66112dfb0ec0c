"""Merkle tree hashing, proofs and signed tree heads for the registry's transparency log.

Hashing follows RFC 9162 (Certificate Transparency v2) section 2.1: a leaf hash is
``SHA-256(0x00 || leaf)``, an interior node ``SHA-256(0x01 || left || right)``, and the tree over
``n`` leaves splits at ``k``, the largest power of two smaller than ``n``.

The server stores the hash of every *complete* subtree, keyed by ``NodeKey(level, index)``: the
node at ``level`` L and ``index`` i covers leaves ``[i * 2**L, (i + 1) * 2**L)``. Appending leaf
``n`` writes at most ``log2(n) + 1`` nodes (:func:`append_nodes`), and every hash a proof needs is
a range of leaves that decomposes into at most ``log2(n)`` complete subtrees
(:func:`range_nodes`), so a proof reads O(log n) stored nodes. The functions here are pure: the
caller fetches the keys a plan names and hands the hashes back.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`,
:func:`verify_tree_head_signature`) trusts nothing but its arguments; the registry client uses it
to check the server's answers on its own.

The registry's leaf encoding (:class:`LogEntry`) lives here too because the server that appends
leaves and the client that recomputes them must agree byte for byte.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "HASH_SIZE",
    "ConsistencyProof",
    "InclusionProof",
    "LogEntry",
    "LogEventType",
    "MerkleProofError",
    "NodeKey",
    "TreeHead",
    "append_nodes",
    "append_siblings",
    "consistency_proof",
    "consistency_ranges",
    "document_details_sha256",
    "empty_root",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "log_id",
    "node_hash",
    "range_hash",
    "range_nodes",
    "root_nodes",
    "sign_tree_head",
    "text_sha256",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head_signature",
]

HASH_SIZE = 32


class MerkleProofError(ValueError):
    """A proof, root or signature does not verify (or is malformed)."""


@dataclass(frozen=True, slots=True, order=True)
class NodeKey:
    """A complete subtree: leaves ``[index * 2**level, (index + 1) * 2**level)``."""

    level: int
    index: int

    @property
    def first_leaf(self) -> int:
        return self.index << self.level

    @property
    def size(self) -> int:
        return 1 << self.level


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 section 2.1.1: ``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """Root of the empty tree: ``SHA-256()`` of nothing (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(b"").digest()


def _largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 9162: largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------------------------
# Storage plans: which complete subtrees to read or write.


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """Complete subtrees whose right fold is ``MTH(D[start:end])``, left to right.

    ``start`` must sit on a boundary of the RFC 9162 split (true for every range a proof names
    and for ``start == 0``): the range is cut into decreasing powers of two, each aligned.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative leaf range [{start}, {end})")
    keys: list[NodeKey] = []
    position, remaining = start, end - start
    while remaining:
        level = remaining.bit_length() - 1
        if position % (1 << level):
            raise ValueError(f"leaf range [{start}, {end}) is not aligned to the tree's splits")
        keys.append(NodeKey(level, position >> level))
        position += 1 << level
        remaining -= 1 << level
    return keys


def range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """``MTH(D[start:end])`` from stored complete-subtree hashes (keys of :func:`range_nodes`).

    Raises ``KeyError`` when a needed node is missing from ``nodes``.
    """
    keys = range_nodes(start, end)
    digest = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        digest = node_hash(nodes[key], digest)
    return digest


def root_nodes(size: int) -> list[NodeKey]:
    """Nodes needed for the root of a tree of ``size`` leaves (none for the empty tree)."""
    return range_nodes(0, size) if size else []


def append_siblings(index: int) -> list[NodeKey]:
    """Existing nodes needed to append leaf ``index``: the left siblings on its way up."""
    keys: list[NodeKey] = []
    level, position = 0, index
    while position & 1:
        keys.append(NodeKey(level, position - 1))
        level += 1
        position >>= 1
    return keys


def append_nodes(
    index: int, leaf: bytes, siblings: Mapping[NodeKey, bytes]
) -> list[tuple[NodeKey, bytes]]:
    """Nodes to store when appending ``leaf`` (the *hash* of the entry) as leaf number ``index``.

    ``siblings`` must hold the hashes named by :func:`append_siblings`. Returns the leaf node
    and every subtree the append completes (at most ``log2(index) + 1`` rows).
    """
    written = [(NodeKey(0, index), leaf)]
    digest, level, position = leaf, 0, index
    while position & 1:
        digest = node_hash(siblings[NodeKey(level, position - 1)], digest)
        level += 1
        position >>= 1
        written.append((NodeKey(level, position), digest))
    return written


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the audit path of leaf ``index`` (RFC 9162 2.1.3.1).

    Ordered from the leaf upwards, as the proof is.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the consistency proof (RFC 9162 2.1.4.1, SUBPROOF).

    Empty when ``old_size`` is 0 or equals ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is not within [0, {new_size}]")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def _plan(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    return {key for start, end in ranges for key in range_nodes(start, end)}


def inclusion_proof(
    index: int, size: int, fetch: Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``size``; ``fetch`` reads stored nodes."""
    ranges = inclusion_ranges(index, size)
    nodes = fetch(_plan(ranges))
    return [range_hash(start, end, nodes) for start, end in ranges]


def consistency_proof(
    old_size: int, new_size: int, fetch: Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """Consistency proof between two tree sizes; ``fetch`` reads stored nodes."""
    ranges = consistency_ranges(old_size, new_size)
    nodes = fetch(_plan(ranges))
    return [range_hash(start, end, nodes) for start, end in ranges]


# --------------------------------------------------------------------------------------------
# Verification: trusts nothing but the arguments.


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    path: tuple[bytes, ...]


def _check_hashes(path: Sequence[bytes]) -> None:
    for element in path:
        if len(element) != HASH_SIZE:
            raise MerkleProofError("proof element is not a SHA-256 hash")


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (the leaf *hash*) is leaf ``index`` of the tree with ``root``.

    RFC 9162 section 2.1.3.2. Raises :class:`MerkleProofError` when it is not.
    """
    _check_hashes([leaf, root, *path])
    if not 0 <= index < size:
        raise MerkleProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    digest = leaf
    for element in path:
        if sn == 0:
            raise MerkleProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            digest = node_hash(element, digest)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError("inclusion proof is shorter than the tree is deep")
    if digest != root:
        raise MerkleProofError("inclusion proof does not lead to the tree head's root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> None:
    """Check that the tree ``old_root`` of ``old_size`` is a prefix of ``new_root``.

    RFC 9162 section 2.1.4.2. Raises :class:`MerkleProofError` when it is not.
    """
    _check_hashes([old_root, new_root, *path])
    if not 0 <= old_size <= new_size:
        raise MerkleProofError(f"old size {old_size} is not within [0, {new_size}]")
    if old_size == new_size:
        if path:
            raise MerkleProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise MerkleProofError("same tree size, different roots: the log was rewritten")
        return
    if old_size == 0:
        if path:
            raise MerkleProofError("consistency proof from the empty tree must be empty")
        return
    proof = list(path)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        proof.insert(0, old_root)
    if not proof:
        raise MerkleProofError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for element in proof[1:]:
        if sn == 0:
            raise MerkleProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError("consistency proof is too short")
    if fr != old_root:
        raise MerkleProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise MerkleProofError("consistency proof does not lead to the new root")


# --------------------------------------------------------------------------------------------
# Signed tree heads.

_TREE_HEAD_CONTEXT = b"egov-registry-tree-head-v1\x00"


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree head: ``tree_size`` leaves hash to ``root_hash`` at ``timestamp_ms`` (Unix ms).

    ``signature`` is ECDSA P-256 / SHA-256 (DER) over :meth:`signed_bytes`.
    """

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """Context string || uint64 size || uint64 timestamp || root (big endian).

        Raises ``ValueError`` when the size or timestamp does not fit a uint64.
        """
        size, timestamp = _uint64(self.tree_size), _uint64(self.timestamp_ms)
        return _TREE_HEAD_CONTEXT + size + timestamp + self.root_hash


def log_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the log key's SubjectPublicKeyInfo (DER), as in RFC 9162 section 4.4."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def sign_tree_head(head: TreeHead, key: ec.EllipticCurvePrivateKey) -> TreeHead:
    """The same head with a signature by the log's key."""
    signature = key.sign(head.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    return TreeHead(head.tree_size, head.root_hash, head.timestamp_ms, signature)


def verify_tree_head_signature(head: TreeHead, public_key: ec.EllipticCurvePublicKey) -> None:
    """Raise :class:`MerkleProofError` unless the log's key signed ``head``."""
    if len(head.root_hash) != HASH_SIZE:
        raise MerkleProofError("tree head root is not a SHA-256 hash")
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise MerkleProofError("the log key must be ECDSA P-256")
    try:
        signed = head.signed_bytes()
    except ValueError as exc:  # a negative size or date: no log signs such a head
        raise MerkleProofError(f"tree head is malformed: {exc}") from None
    try:
        public_key.verify(head.signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise MerkleProofError("tree head signature does not verify with the log key") from exc


# --------------------------------------------------------------------------------------------
# The registry's log entries.


class LogEventType(enum.StrEnum):
    """What a log leaf records."""

    REGISTERED = "REGISTERED"
    REVOKED = "REVOKED"
    SUPERSEDED = "SUPERSEDED"


_ENTRY_VERSION = b"\x01"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf of the registry log: an event in a document's life.

    The encoding commits to every field, so a relying party that recomputes it from the
    document it was shown and finds it in a signed tree has proof of that event.
    ``related_document_id`` is the replacement (SUPERSEDED), empty otherwise: a new version's
    REGISTERED leaf does not name the document it replaces, whose SUPERSEDED leaf proves the
    link; ``reason`` is the revocation reason code.
    """

    document_id: str
    sha256: bytes
    issuer_agency: str
    event_type: LogEventType
    status: str
    timestamp_ms: int
    related_document_id: str = ""
    reason: str = ""
    details_sha256: bytes = b""

    def encode(self) -> bytes:
        """Version byte, then length-prefixed (uint16) fields and a uint64 timestamp.

        ``details_sha256`` is :func:`document_details_sha256` for a registration and the
        SHA-256 of the reason text for a status change. Raises ``ValueError`` when a field does
        not fit its encoding (a text over 65535 bytes, a timestamp before 1970).
        """
        parts = [_ENTRY_VERSION]
        for text in (self.document_id, self.issuer_agency, self.event_type.value, self.status):
            parts.append(_text(text))
        parts.append(_bytes(self.sha256))
        parts.append(_uint64(self.timestamp_ms))
        parts.append(_text(self.related_document_id))
        parts.append(_text(self.reason))
        parts.append(_bytes(self.details_sha256))
        return b"".join(parts)

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> LogEntry:
        """The entry :meth:`encode` made ``data`` of. ``ValueError`` for anything else: another
        version, a field cut short, an unknown event type, text that is not UTF-8, or bytes
        left over (each leaf has exactly one reading)."""
        reader = _Reader(data)
        if reader.take(1) != _ENTRY_VERSION:
            raise ValueError("not a version 1 log entry")
        document_id, issuer, event_type, status = (reader.text() for _ in range(4))
        sha256 = reader.field()
        (timestamp_ms,) = struct.unpack(">Q", reader.take(8))
        related, reason = reader.text(), reader.text()
        details = reader.field()
        if not reader.done():
            raise ValueError("bytes after the log entry")
        entry = cls(document_id, sha256, issuer, LogEventType(event_type), status, timestamp_ms,
                    related, reason, details)
        if entry.encode() != data:  # pragma: no cover - the layout has one reading
            raise ValueError("the log entry does not encode back to itself")
        return entry


class _Reader:
    """Reads :meth:`LogEntry.encode`'s layout, refusing to read beyond its end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._data):
            raise ValueError("the log entry is cut short")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def field(self) -> bytes:
        (length,) = struct.unpack(">H", self.take(2))
        return self.take(length)

    def text(self) -> str:
        return self.field().decode("utf-8")  # UnicodeDecodeError is a ValueError

    def done(self) -> bool:
        return self._at == len(self._data)


def document_details_sha256(
    *,
    document_type: str,
    subject: str,
    signer_certificate_sha256: Sequence[bytes],
    valid_from_ms: int,
    valid_until_ms: int | None,
    metadata: Mapping[str, str],
) -> bytes:
    """SHA-256 over the registered fields a leaf does not carry itself, in a fixed layout.

    ``subject`` is the namespaced string form (``TH-PID:...``) or empty; metadata is sorted by
    key; a missing ``valid_until_ms`` is encoded as -1. Raises ``ValueError`` when a field does
    not fit its encoding (over 65535 items or bytes, a date beyond an int64 of milliseconds).
    """
    parts = [_ENTRY_VERSION, _text(document_type), _text(subject)]
    parts.append(_uint16(len(signer_certificate_sha256)))
    parts.extend(_bytes(fp) for fp in signer_certificate_sha256)
    until = -1 if valid_until_ms is None else valid_until_ms  # registration_rules.NO_TIME_MS
    parts.append(_int64(valid_from_ms) + _int64(until))
    parts.append(_uint16(len(metadata)))
    for key in sorted(metadata):
        parts.append(_text(key) + _text(metadata[key]))
    return hashlib.sha256(b"".join(parts)).digest()


def text_sha256(text: str) -> bytes:
    """SHA-256 of UTF-8 text (the ``details_sha256`` of a status change: its reason text)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _packed(layout: str, value: int, what: str) -> bytes:
    try:
        return struct.pack(layout, value)
    except struct.error:  # struct.error is no ValueError: callers expect one for bad input
        raise ValueError(f"{what} {value} is out of range") from None


def _uint16(value: int) -> bytes:
    return _packed(">H", value, "count")


def _uint64(value: int) -> bytes:
    return _packed(">Q", value, "size or timestamp")


def _int64(value: int) -> bytes:
    return _packed(">q", value, "timestamp")


def _bytes(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("log entry field is longer than 65535 bytes")
    return _uint16(len(value)) + value


def _text(value: str) -> bytes:
    return _bytes(value.encode("utf-8"))
