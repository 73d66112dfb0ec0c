"""Create or upgrade the registry database: ``alembic upgrade head`` run programmatically."""

from __future__ import annotations

from egov_common.db import upgrade_to_head

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = "egov_registry.storage.migrations"


def migrate(database_url: str) -> None:
    """Upgrade the database at ``database_url`` to the latest schema (creating it if empty).

    Replicas starting together on one PostgreSQL take turns (``upgrade_to_head`` locks)."""
    upgrade_to_head(database_url, MIGRATIONS)
