"""Alembic environment: runs on the connection egov_common.db hands over, or on the URL."""

from __future__ import annotations

from alembic import context
from egov_common.db import make_engine, migration_transaction

from egov_registry.storage.models import Base
from egov_registry.storage.schema import MIGRATIONS

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:  # as upgrade_to_head runs them (SQLite: one transaction, foreign keys checked at its end)
        with migration_transaction(engine, MIGRATIONS) as conn:
            context.configure(connection=conn, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
