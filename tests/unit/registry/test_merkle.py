"""Merkle proofs from stored subtree hashes agree with a naive RFC 9162 reference and verify."""

from __future__ import annotations

import hashlib

import pytest
from egov_pki import merkle
from egov_pki.merkle import MerkleProofError, NodeKey
from hypothesis import given, settings
from hypothesis import strategies as st


# -- naive reference: RFC 9162 section 2.1, written straight from the text ---------------------
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    if m == 0 or m == len(leaves):
        return []
    return ref_subproof(m, leaves, True)


# -- a tree the way the registry stores it: complete subtrees keyed by (level, index) ---------
class StoredTree:
    def __init__(self) -> None:
        self.nodes: dict[NodeKey, bytes] = {}
        self.size = 0
        self.writes_per_append: list[int] = []

    def append(self, leaf: bytes) -> None:
        siblings = {k: self.nodes[k] for k in merkle.append_siblings(self.size)}
        written = merkle.append_nodes(self.size, merkle.leaf_hash(leaf), siblings)
        self.writes_per_append.append(len(written))
        self.nodes.update(written)
        self.size += 1

    def fetch(self, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        return {k: self.nodes[k] for k in keys}

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == 0:
            return merkle.empty_root()
        return merkle.range_hash(0, size, self.fetch(set(merkle.root_nodes(size))))


def _tree(leaves: list[bytes]) -> StoredTree:
    tree = StoredTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_inclusion_proof_matches_reference_and_verifies(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = _tree(leaves)
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, tree.fetch)
    assert tree.root(size) == ref_mth(leaves[:size])
    assert proof == ref_path(index, leaves[:size])
    merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, tree.root(size))


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_consistency_proof_matches_reference_and_verifies(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = _tree(leaves)
    new = data.draw(st.integers(1, len(leaves)))
    old = data.draw(st.integers(0, new))
    proof = merkle.consistency_proof(old, new, tree.fetch)
    assert proof == ref_consistency(old, leaves[:new])
    merkle.verify_consistency(old, new, tree.root(old), tree.root(new), proof)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=4), min_size=2, max_size=40), data=st.data())
def test_tampered_inclusion_proof_is_rejected(leaves: list[bytes], data: st.DataObject) -> None:
    tree = _tree(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_proof(index, len(leaves), tree.fetch)
    leaf = merkle.leaf_hash(leaves[index])
    root = tree.root()
    choice = data.draw(st.sampled_from(["flip", "index", "drop", "extra", "leaf"]))
    args: tuple[bytes, int, int, list[bytes], bytes] = (leaf, index, len(leaves), proof, root)
    if choice == "flip" and proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = bytearray(proof[at])
        bad[0] ^= 1
        args = (leaf, index, len(leaves), [*proof[:at], bytes(bad), *proof[at + 1 :]], root)
    elif choice == "index":
        other = data.draw(st.integers(0, len(leaves) - 1).filter(lambda i: i != index))
        if leaves[other] == leaves[index]:
            return
        args = (leaf, other, len(leaves), proof, root)
    elif choice == "drop" and proof:
        args = (leaf, index, len(leaves), proof[:-1], root)
    elif choice == "extra":
        args = (leaf, index, len(leaves), [*proof, root], root)
    else:
        args = (merkle.leaf_hash(b"not in the tree"), index, len(leaves), proof, root)
    with pytest.raises(MerkleProofError):
        merkle.verify_inclusion(*args)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=4), min_size=3, max_size=40), data=st.data())
def test_rewritten_history_fails_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    new = len(leaves)
    old = data.draw(st.integers(1, new - 1))
    at = data.draw(st.integers(0, old - 1))
    rewritten = [*leaves[:at], leaves[at] + b"!", *leaves[at + 1 :]]
    honest, forged = _tree(leaves), _tree(rewritten)
    proof = merkle.consistency_proof(old, new, forged.fetch)
    with pytest.raises(MerkleProofError):
        merkle.verify_consistency(old, new, honest.root(old), forged.root(new), proof)


def test_append_writes_at_most_log_n_nodes() -> None:
    tree = _tree([i.to_bytes(4, "big") for i in range(1024)])
    assert max(tree.writes_per_append) == 11  # leaf 1023 completes 10 subtrees above itself
    assert len(tree.nodes) == 2047


def test_proof_reads_at_most_log_n_nodes() -> None:
    requested: list[int] = []
    tree = _tree([i.to_bytes(4, "big") for i in range(1000)])

    def fetch(keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        requested.append(len(keys))
        return tree.fetch(keys)

    for index in (0, 511, 512, 999):
        merkle.inclusion_proof(index, 1000, fetch)
    merkle.consistency_proof(300, 1000, fetch)
    assert max(requested) <= 2 * 10


def test_tree_head_signature_verifies_and_detects_changes() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    head = merkle.sign_tree_head(merkle.TreeHead(5, b"\x07" * 32, 1_700_000_000_000), key)
    merkle.verify_tree_head_signature(head, key.public_key())
    for forged in (
        merkle.TreeHead(6, head.root_hash, head.timestamp_ms, head.signature),
        merkle.TreeHead(5, b"\x08" * 32, head.timestamp_ms, head.signature),
        merkle.TreeHead(5, head.root_hash, head.timestamp_ms + 1, head.signature),
    ):
        with pytest.raises(MerkleProofError):
            merkle.verify_tree_head_signature(forged, key.public_key())
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(MerkleProofError):
        merkle.verify_tree_head_signature(head, other.public_key())


def test_log_entry_encoding_commits_to_every_field() -> None:
    base = merkle.LogEntry(
        "DOC-1",
        b"\x01" * 32,
        "TH-JUR:0994000000000",
        merkle.LogEventType.REGISTERED,
        "ACTIVE",
        1,
        "",
        "",
    )
    E = merkle.LogEntry
    variants = [
        merkle.LogEntry("DOC-2", base.sha256, base.issuer_agency, base.event_type, base.status, 1),
        merkle.LogEntry("DOC-1", b"\x02" * 32, base.issuer_agency, base.event_type, base.status, 1),
        merkle.LogEntry("DOC-1", base.sha256, "TH-JUR:X", base.event_type, base.status, 1),
        merkle.LogEntry(
            "DOC-1", base.sha256, base.issuer_agency, merkle.LogEventType.REVOKED, base.status, 1
        ),
        E("DOC-1", base.sha256, base.issuer_agency, base.event_type, "REVOKED", 1),
        E("DOC-1", base.sha256, base.issuer_agency, base.event_type, base.status, 2),
        merkle.LogEntry(
            "DOC-1", base.sha256, base.issuer_agency, base.event_type, base.status, 1, "DOC-0"
        ),
        merkle.LogEntry(
            "DOC-1", base.sha256, base.issuer_agency, base.event_type, base.status, 1, "", "R"
        ),
        # length prefixes keep field boundaries: moving a character across fields changes the leaf
        merkle.LogEntry(
            "DOC-1", base.sha256, base.issuer_agency, base.event_type, base.status, 1, "A", ""
        ),
        merkle.LogEntry(
            "DOC-1", base.sha256, base.issuer_agency, base.event_type, base.status, 1, "", "A"
        ),
    ]
    encodings = {v.encode() for v in variants} | {base.encode()}
    assert len(encodings) == len(variants) + 1
