"""Alembic environment of the identity database (egov_common.db.run_alembic_env)."""

from __future__ import annotations

from egov_common.db import run_alembic_env

from egov_identity.storage.tables import metadata

run_alembic_env(metadata, "egov_identity.storage.migrations", render_as_batch=True)
