"""Registry storage: SQLAlchemy models, the transactional store, Alembic migrations."""
