"""an evidence item carries the applicant's short note for the assessor (empty for earlier ones)

Revision ID: 0008_i16_evidence_note
Revises: 0007_i15_score_notes
Create Date: 2026-12-03 09:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008_i16_evidence_note'
down_revision = '0007_i15_score_notes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidenceitem") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("evidenceitem") as batch:
        batch.drop_column("note")
