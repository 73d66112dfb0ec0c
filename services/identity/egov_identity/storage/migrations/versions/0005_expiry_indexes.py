"""indexes on expires_at of the single-use records

The purge deletes expired codes, refresh tokens, login sessions, CIBA requests, revoked access
token ids and used assertion ids in bounded batches by ``expires_at``; without an index each batch
scanned the table (millions of rows at a thousand grants a second).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (
    "used_jtis",
    "authorization_codes",
    "refresh_tokens",
    "login_sessions",
    "ciba_requests",
    "revoked_access_tokens",
)


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_expires_at", table, ["expires_at"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_expires_at", table_name=table)
