"""The Alembic migrations build exactly the schema the code uses."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from egov_common.db import make_engine, migrations_dir, upgrade_to_head
from egov_identity.storage import tables as t
from egov_identity.storage.tables import metadata


def test_migrations_match_the_tables_and_rerun_is_a_no_op(sqlite_url: str) -> None:
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")  # idempotent at head
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_a_person_with_a_confirmed_authenticator_before_0007_starts_bound(
        sqlite_url: str) -> None:
    """Migration 0007: whoever had confirmed TOTP keeps needing AAL2 to replace it."""
    config = Config()
    config.set_main_option("script_location",
                           str(migrations_dir("egov_identity.storage.migrations")))
    config.set_main_option("sqlalchemy.url", sqlite_url)
    command.upgrade(config, "0006")
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        for person_id, confirmed in (("p-confirmed", True), ("p-pending", False)):
            conn.execute(sa.text(
                "INSERT INTO persons (person_id, identifier, given_name_th, family_name_th, "
                "given_name_en, family_name_en, birth_date, ial, verification_json, "
                "totp_confirmed, totp_last_step, created_at) VALUES (:p, :i, '', '', '', '', "
                "'', '2.3', '{}', :c, 0, 0)"),
                {"p": person_id, "i": f"TH-PID:{person_id}", "c": confirmed})
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    with engine.connect() as conn:
        bound = dict(conn.execute(sa.select(t.persons.c.person_id, t.persons.c.totp_bound)).all())
    engine.dispose()
    assert bound == {"p-confirmed": True, "p-pending": False}


def test_migration_0008_records_the_access_token_of_each_refresh_token_and_downgrades(
        sqlite_url: str) -> None:
    """Migration 0008: refresh_tokens.access_jti (indexed), the access token issued with each
    refresh token, so that revoking the family revokes those access tokens (RFC 7009 2.1).
    Refresh tokens issued before have none and keep working; downgrading drops the column and
    keeps the tokens."""
    config = Config()
    config.set_main_option("script_location",
                           str(migrations_dir("egov_identity.storage.migrations")))
    config.set_main_option("sqlalchemy.url", sqlite_url)
    command.upgrade(config, "0007")
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, person_id, scope, "
            "claims_json, aal, amr_json, auth_time, expires_at) VALUES ('h-before', "
            "'fam-1', 'portal', 'p-1', 'openid', '', 2, '[]', 0, 10)"))

    def columns() -> dict[str, list[str]]:
        inspector = sa.inspect(engine)
        return {"columns": [c["name"] for c in inspector.get_columns("refresh_tokens")],
                "indexes": [i["name"] or "" for i in inspector.get_indexes("refresh_tokens")]}

    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    after = columns()
    assert "access_jti" in after["columns"]
    assert "ix_refresh_tokens_access_jti" in after["indexes"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.refresh_tokens.c.access_jti)).scalars().all() == [None]
    command.downgrade(config, "0007")
    before = columns()
    assert "access_jti" not in before["columns"]
    assert "ix_refresh_tokens_access_jti" not in before["indexes"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT token_hash FROM refresh_tokens")
                            ).scalars().all() == ["h-before"]
    upgrade_to_head(sqlite_url, "egov_identity.storage.migrations")
    assert columns() == after
    engine.dispose()
