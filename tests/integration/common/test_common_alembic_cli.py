"""Every service's migrations run the same from the ``alembic`` command line as at start-up.

An operator may run ``alembic -x ... upgrade head`` (or a migration Job may) while replicas start
and call ``upgrade_to_head``. Both ways must build the same schema and take the same lock.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from egov_common.db import make_engine, migration_transaction, migrations_dir
from egov_identity.storage.tables import metadata as identity_metadata
from egov_keys.storage.tables import metadata as keys_metadata
from egov_registry.storage.models import Base

SERVICES = {
    "identity": ("egov_identity.storage.migrations", identity_metadata),
    "keys": ("egov_keys.storage.migrations", keys_metadata),
    "registry": ("egov_registry.storage.migrations", Base.metadata),
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _cli_config(migrations: str, url: str) -> Config:
    """What ``alembic.ini`` gives the command line: a script location and a URL, no connection."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(migrations)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _schema_differences(url: str, metadata: sa.MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def _version(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            version: str | None = conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar()
            return version
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_command_line_builds_the_schema_the_code_uses_and_round_trips(
    service: str, database_url: str
) -> None:
    migrations, metadata = SERVICES[service]
    config = _cli_config(migrations, database_url)

    command.upgrade(config, "head")
    assert _schema_differences(database_url, metadata) == []
    head = _version(database_url)
    assert head is not None

    command.downgrade(config, "base")
    assert _version(database_url) is None
    command.upgrade(config, "head")
    assert _version(database_url) == head
    assert _schema_differences(database_url, metadata) == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_command_line_waits_for_a_migration_in_progress(
    service: str, database_url: str
) -> None:
    """A start-up migration (``upgrade_to_head``) holds ``migration_transaction``; the command
    line must queue behind it (PostgreSQL's advisory lock, SQLite's write lock), not interleave."""
    migrations, metadata = SERVICES[service]
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            command.upgrade(_cli_config(migrations, database_url), "head")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    engine = make_engine(database_url)
    cli = threading.Thread(target=upgrade)
    try:
        with migration_transaction(engine, migrations):
            cli.start()
            cli.join(timeout=1.0)
            assert cli.is_alive(), "the command line migrated beside a migration in progress"
            assert _version(database_url) is None
        cli.join(timeout=30)
    finally:
        engine.dispose()

    assert not cli.is_alive()
    assert errors == []
    assert _version(database_url) is not None
    assert _schema_differences(database_url, metadata) == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_command_line_writes_the_postgresql_schema_as_sql_for_review(service: str) -> None:
    """``alembic upgrade head --sql``: a DBA reads the DDL before it runs; no server needed.
    (SQLite cannot: Alembic's batch mode must read the live tables it rebuilds.)"""
    migrations, metadata = SERVICES[service]
    output = io.StringIO()
    config = _cli_config(migrations, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    config.output_buffer = output

    command.upgrade(config, "head", sql=True)

    script = output.getvalue()
    for table in metadata.tables:
        assert f"CREATE TABLE {table} " in script or f"CREATE TABLE {table}(" in script, table
    assert script.rstrip().endswith("COMMIT;")
