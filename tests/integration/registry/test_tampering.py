"""Edits made directly in the database are caught by the client's own verification."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from egov.registry.v1 import registry_pb2 as pb
from egov_clients.registry import LogVerificationError, RegistryClient, document_log_entries
from egov_common.db import make_engine
from egov_pki import merkle
from egov_testing.processes import ServiceProcess
from registry_testenv import AGENCY, digest


@pytest.fixture
def documents(clients: dict[str, RegistryClient]) -> list[pb.Document]:
    return [
        clients["issuer"].register(
            sha256=digest(f"tamper {i}"),
            issuer=AGENCY,
            document_type="permit",
            metadata={"holder": f"holder {i}"},
        )
        for i in range(4)
    ]


def _execute(database_url: str, statement: str, **params: object) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_edited_document_row_fails_verification(
    clients: dict[str, RegistryClient], documents: list[pb.Document], database_url: str
) -> None:
    reader = clients["reader"]
    reader.verify_document(documents[0].document_id)

    _execute(
        database_url,
        "UPDATE documents SET metadata_json = :m WHERE document_id = :d",
        m=json.dumps({"holder": "someone else"}),
        d=documents[0].document_id,
    )
    _execute(
        database_url,
        "UPDATE documents SET sha256 = :h WHERE document_id = :d",
        h=digest("another pdf"),
        d=documents[1].document_id,
    )
    _execute(
        database_url,
        "UPDATE status_changes SET changed_at_ms = changed_at_ms - 86400000 WHERE document_id = :d",
        d=documents[2].document_id,
    )

    for document in documents[:3]:
        with pytest.raises(LogVerificationError):
            reader.verify_document(document.document_id)
    reader.verify_document(documents[3].document_id)


def test_edited_status_fails_verification(
    clients: dict[str, RegistryClient], documents: list[pb.Document], database_url: str
) -> None:
    issuer, reader = clients["issuer"], clients["reader"]
    issuer.revoke(documents[0].document_id, pb.REVOCATION_REASON_FRAUD, "forged")
    # Someone quietly "un-revokes" it: the history row and the status are rewritten.
    _execute(
        database_url,
        "UPDATE status_changes SET status = 'REGISTERED', reason = '' "
        "WHERE document_id = :d AND seq = 1",
        d=documents[0].document_id,
    )
    _execute(
        database_url,
        "UPDATE documents SET status = 'REGISTERED' WHERE document_id = :d",
        d=documents[0].document_id,
    )
    with pytest.raises(LogVerificationError):
        reader.verify_document(documents[0].document_id)


def test_edited_leaf_hash_is_caught_by_its_neighbours_proof(
    clients: dict[str, RegistryClient], documents: list[pb.Document], database_url: str
) -> None:
    _execute(
        database_url,
        "UPDATE log_nodes SET hash = :h WHERE level = 0 AND idx = 1",
        h=digest("forged leaf"),
    )
    with pytest.raises(LogVerificationError):
        clients["reader"].verify_document(documents[0].document_id)


def test_rewritten_log_is_caught_by_a_client_that_saw_an_earlier_head(
    clients: dict[str, RegistryClient],
    documents: list[pb.Document],
    database_url: str,
    registry: ServiceProcess,
    log_key: bytes,
) -> None:
    auditor = RegistryClient(registry.grpc_address, log_key=log_key)
    auditor.verify_document(documents[3].document_id)  # remembers the head of size 4
    assert auditor.trusted_tree_head is not None
    clients["issuer"].register(sha256=digest("later"), issuer=AGENCY, document_type="permit")

    # A thorough forger rewrites document 0 and recomputes its leaf and every node hash, so
    # the server serves a self-consistent tree with a new root.
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE documents SET metadata_json = :m WHERE document_id = :d"),
                {"m": json.dumps({"holder": "forger"}), "d": documents[0].document_id},
            )
            rows = conn.execute(
                sa.text("SELECT leaf_index, leaf_data FROM log_leaves ORDER BY leaf_index")
            ).all()
            forged = pb.Document()
            forged.CopyFrom(documents[0])
            forged.metadata.clear()
            forged.metadata["holder"] = "forger"
            ((_, entry),) = document_log_entries(forged)
            leaves = [bytes(data) for _, data in rows]
            leaves[0] = entry.encode()
            nodes: dict[merkle.NodeKey, bytes] = {}
            for index, data in enumerate(leaves):
                nodes.update(merkle.append_nodes(index, merkle.leaf_hash(data), nodes))
            conn.execute(sa.text("DELETE FROM log_nodes"))
            conn.execute(
                sa.text("INSERT INTO log_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                [{"l": k.level, "i": k.index, "h": h} for k, h in nodes.items()],
            )
            conn.execute(
                sa.text("UPDATE log_leaves SET leaf_data = :d WHERE leaf_index = 0"),
                {"d": leaves[0]},
            )
    finally:
        engine.dispose()

    # A first-time visitor is fooled (that is what gossip of heads is for) ...
    RegistryClient(registry.grpc_address, log_key=log_key).verify_document(documents[0].document_id)
    # ... but a client that kept an earlier signed head is not.
    with pytest.raises(LogVerificationError, match="rewritten"):
        auditor.get_signed_tree_head()
    auditor.close()


def test_edited_log_entry_is_caught_by_an_audit(
    clients: dict[str, RegistryClient], documents: list[pb.Document], database_url: str
) -> None:
    reader = clients["reader"]
    head, entries = reader.audit_log()
    assert head.tree_size == len(entries) == len(documents)

    _execute(
        database_url,
        "UPDATE log_leaves SET leaf_data = :d WHERE leaf_index = 2",
        d=b"\x01 a leaf that was never appended",
    )
    with pytest.raises(LogVerificationError, match="signed root"):
        reader.audit_log()
