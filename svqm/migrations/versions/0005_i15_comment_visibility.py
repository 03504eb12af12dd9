"""comments say who may read them: the applicant, or staff only

Revision ID: 0005_i15_comment_visibility
Revises: 0005_i14_pledge_register
Create Date: 2026-12-03 00:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_i15_comment_visibility'
down_revision = '0005_i14_pledge_register'
branch_labels = None
depends_on = None


def _column() -> sa.Column:  # type: ignore[type-arg]
    # Every comment written before this was shown to the applicant: it stays so.
    return sa.Column("visibility", sa.String(length=10), nullable=False, server_default="applicant")


def upgrade() -> None:
    for table in ("auditevent", "review"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_column())


def downgrade() -> None:
    for table in ("auditevent", "review"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("visibility")
