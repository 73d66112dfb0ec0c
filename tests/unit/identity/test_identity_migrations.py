"""The Alembic migrations build exactly the schema the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from egov_common.db import make_engine, upgrade_to_head
from egov_identity.storage.tables import metadata


def test_migrations_match_the_tables_and_rerun_is_a_no_op(sqlite_url: str) -> None:
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")  # idempotent at head
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
