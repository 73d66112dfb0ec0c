"""persons.totp_bound: a confirmed TOTP authenticator is bound

Once a person has confirmed a TOTP authenticator, binding another (EnrolTotp, ConfirmTotp) needs
an AAL2 login (NIST SP 800-63B 6.1.2.1); ``totp_confirmed`` alone cannot say so while a
replacement waits for its first code. Persons with a confirmed authenticator start bound.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_bound", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    persons = sa.table("persons", sa.column("totp_bound", sa.Boolean),
                       sa.column("totp_confirmed", sa.Boolean))
    op.execute(persons.update().where(persons.c.totp_confirmed).values(totp_bound=True))


def downgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_column("totp_bound")
