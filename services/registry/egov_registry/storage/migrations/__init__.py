"""Alembic migrations of the registry database (``egov_registry.storage.migrations``)."""
