"""Alembic environment of the registry database (egov_common.db.run_alembic_env)."""

from __future__ import annotations

from egov_common.db import run_alembic_env

from egov_registry.storage.models import Base
from egov_registry.storage.schema import MIGRATIONS

run_alembic_env(Base.metadata, MIGRATIONS)
