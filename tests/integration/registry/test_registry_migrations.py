"""`alembic upgrade head` creates the registry database; downgrade/upgrade round-trips."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric import ec
from egov_common.clock import SystemClock
from egov_common.db import make_engine, migrations_dir, upgrade_to_head
from egov_common.errors import AlreadyExists
from egov_pki import merkle
from egov_registry.domain.model import Actor, Registration, RevocationReason
from egov_registry.storage.models import Base
from egov_registry.storage.schema import MIGRATIONS
from egov_registry.storage.store import RegistryStore

TABLES = {
    "documents",
    "idempotency_keys",
    "log_head",
    "log_leaves",
    "log_nodes",
    "reservations",
    "status_changes",
}


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_and_matches_the_models(database_url: str) -> None:
    command.upgrade(_config(database_url), "head")

    assert _tables(database_url) == TABLES
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT tree_size FROM log_head")).scalar_one() == 0
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("documents")}
    finally:
        engine.dispose()
    assert differences == []
    assert {
        "ix_documents_registered",
        "ix_documents_issuer_registered",
        "ix_documents_type_registered",
        "ix_documents_subject_registered",
        "ix_documents_status_registered",
    } <= indexes


AGENCY = "TH-JUR:0994000000014"
ISSUER = Actor("back-office", frozenset({"registry:issue"}), AGENCY)

#: The B-trees of each table a registration writes to (SQLite: tables and indexes alike).
SQLITE_BTREES = {
    # the rows, the primary key, the digest/issuer key and five listing indexes
    "documents": 8,
    "status_changes": 2,  # the history by (document, seq), and leaf_index's uniqueness
    "idempotency_keys": 1,
    "log_leaves": 1,
    "log_nodes": 1,
    "log_head": 1,
}


def test_a_registration_writes_to_no_more_b_trees_than_its_lookups_need(tmp_path: Path) -> None:
    """Every B-tree a registration touches is a page written at commit, in the write turn."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    command.upgrade(_config(url), "head")
    with sqlite3.connect(tmp_path / "registry.db") as db:
        btrees = dict(
            db.execute(
                "SELECT tbl_name, count(*) FROM sqlite_master"
                " WHERE type IN ('table', 'index') AND rootpage > 0 GROUP BY tbl_name"
            ).fetchall()
        )
    assert {table: btrees[table] for table in SQLITE_BTREES} == SQLITE_BTREES


def _registration(n: int) -> Registration:
    return Registration(
        idempotency_key=f"key-{n}",
        document_id="",
        sha256=hashlib.sha256(f"document {n}".encode()).digest(),
        issuer=AGENCY,
        document_type="permit",
        subject="TH-CIT:ref-7",
        signer_certificate_sha256=(bytes(32),),
        valid_from_ms=None,
        valid_until_ms=None,
        metadata={"n": str(n)},
    )


def test_upgrade_from_0002_keeps_every_document_and_the_log(database_url: str) -> None:
    command.upgrade(_config(database_url), "0002")
    key = ec.generate_private_key(ec.SECP256R1())
    store = RegistryStore(database_url, clock=SystemClock(), log_key=key)
    try:
        outcomes = store.register(ISSUER, [_registration(n) for n in range(40)])
        ids = [o.document.document_id for o in outcomes]  # type: ignore[union-attr]
        store.revoke(ISSUER, ids[3], RevocationReason.ISSUED_IN_ERROR, "typo")
        store.supersede(ISSUER, ids[5], ids[6], "corrected")
        before = {i: store.get(i) for i in ids}
        head = store.signed_tree_head()
    finally:
        store.close()

    upgrade_to_head(database_url, MIGRATIONS)

    store = RegistryStore(database_url, clock=SystemClock(), log_key=key)
    try:
        assert {i: store.get(i) for i in ids} == before
        assert store.signed_tree_head().root_hash == head.root_hash
        assert store.lookup_by_hash(_registration(9).sha256) == [before[ids[9]]]
        for document_id in (ids[0], ids[3], ids[5]):  # the latest leaf of each
            entry, path, proven = store.inclusion_proof(document_id=document_id)
            merkle.verify_inclusion(
                merkle.leaf_hash(entry.leaf_data),
                entry.leaf_index,
                proven.tree_size,
                path,
                proven.root_hash,
            )
        # The keys and constraints work in their new order: a retry, a second registration
        # of a digest, and one that is new.
        (replayed, duplicate, fresh) = store.register(
            ISSUER,
            [
                _registration(7),
                replace(_registration(8), idempotency_key="other"),
                _registration(40),
            ],
        )
        assert replayed.replayed and replayed.document == before[ids[7]]  # type: ignore[union-attr]
        assert isinstance(duplicate, AlreadyExists)
        assert not fresh.replayed  # type: ignore[union-attr]
        assert store.tree_size() == head.tree_size + 1
    finally:
        store.close()


def test_an_upgrade_that_would_leave_a_dangling_reference_changes_nothing(
    tmp_path: Path,
) -> None:
    """SQLite: the tables are built anew with foreign keys off; the check at the end fails the
    whole upgrade, which rolls back."""
    database = tmp_path / "registry.db"
    url = f"sqlite:///{database}"
    command.upgrade(_config(url), "0002")
    with sqlite3.connect(database) as db:  # foreign keys are off in a plain connection
        db.execute(
            "INSERT INTO idempotency_keys VALUES (?, 'k', ?, 'DOC-NOSUCHDOCUMENT')",
            (AGENCY, bytes(32)),
        )
    schema_before = _schema(database)

    with pytest.raises(sa.exc.IntegrityError, match="idempotency_keys"):
        upgrade_to_head(url, MIGRATIONS)

    assert _schema(database) == schema_before
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]


def _schema(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    config = _config(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert _tables(database_url) == set()
    command.upgrade(config, "head")
    assert _tables(database_url) == TABLES


def test_replicas_migrating_one_postgresql_together_take_turns(postgres_url: str) -> None:
    """Two replicas (or the migration Job and a pod) starting at once: both finish, one schema."""
    import subprocess
    import sys

    script = "import sys; from egov_registry.storage.schema import migrate; migrate(sys.argv[1])"
    runs = [
        subprocess.Popen([sys.executable, "-c", script, postgres_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [run.communicate(timeout=120)[1].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], errors
    assert _tables(postgres_url) == TABLES
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM log_head")).scalar_one() == 1
    finally:
        engine.dispose()
