"""Alembic migrations of the keys database (run by ``egov_common.db.upgrade_to_head``)."""
