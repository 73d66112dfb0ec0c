"""Alembic environment of the keys database (egov_common.db.run_alembic_env)."""

from __future__ import annotations

from egov_common.db import run_alembic_env

from egov_keys.storage.repository import MIGRATIONS
from egov_keys.storage.tables import metadata

run_alembic_env(metadata, MIGRATIONS)
