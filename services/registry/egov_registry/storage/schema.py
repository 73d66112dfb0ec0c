"""Create or upgrade the registry database: ``alembic upgrade head`` run programmatically."""

from __future__ import annotations

import sqlalchemy as sa
from egov_common.db import upgrade_to_head

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = "egov_registry.storage.migrations"

# Any constant; replicas starting together on one PostgreSQL take turns migrating.
_PG_MIGRATION_LOCK = 0x5245_4749  # "REGI"


def migrate(database_url: str) -> None:
    """Upgrade the database at ``database_url`` to the latest schema (creating it if empty)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "postgresql":
        upgrade_to_head(database_url, MIGRATIONS)
        return
    engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            try:
                upgrade_to_head(database_url, MIGRATIONS)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
    finally:
        engine.dispose()
