"""Identity storage: SQLAlchemy Core tables, Alembic migrations."""
