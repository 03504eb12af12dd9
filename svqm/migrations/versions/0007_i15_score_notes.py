"""scores carry the assessor's note on each question, for the applicant or (by default) staff only

Revision ID: 0007_i15_score_notes
Revises: 0005_i14_progress
Create Date: 2026-12-03 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007_i15_score_notes'
down_revision = '0005_i14_progress'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("score") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        # A note is the assessors' and the panel's unless its author says the applicant may read it.
        batch.add_column(
            sa.Column("visibility", sa.String(length=10), nullable=False, server_default="internal")
        )


def downgrade() -> None:
    with op.batch_alter_table("score") as batch:
        batch.drop_column("visibility")
        batch.drop_column("note")
