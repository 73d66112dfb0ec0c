"""Persistence of the keys service: SQLAlchemy Core tables, one repository, Alembic migrations."""

from egov_keys.storage.repository import KeysRepository, migrate

__all__ = ["KeysRepository", "migrate"]
