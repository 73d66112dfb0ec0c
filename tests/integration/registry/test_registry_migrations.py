"""`alembic upgrade head` creates the registry database; downgrade/upgrade round-trips."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from egov_common.db import make_engine, migrations_dir
from egov_registry.storage.models import Base
from egov_registry.storage.schema import MIGRATIONS

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
        "ix_documents_sha256",
        "ix_documents_issuer_registered",
        "ix_documents_type_registered",
        "ix_documents_subject_registered",
        "ix_documents_status_registered",
    } <= indexes


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

    script = (
        "import sys; from egov_registry.storage.schema import migrate; migrate(sys.argv[1])"
    )
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
