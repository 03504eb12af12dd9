"""an organisation's own charter: revisions (pillars), priorities and the pledges delivering them

Revision ID: 0015_i17_org_charter
Revises: 0014_i18_invoices
Create Date: 2026-12-03 15:00:00
"""

import sqlalchemy as sa
from alembic import op

from svqm.db import UtcDateTime

revision = '0015_i17_org_charter'
down_revision = '0014_i18_invoices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_charter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organisation_id"),
    )
    op.create_table(
        "charter_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charter_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("pillars", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("published_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["charter_id"], ["org_charter.id"]),
        sa.ForeignKeyConstraint(["updated_by_id"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["published_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charter_id", "revision"),
    )
    op.create_index("ix_charter_revision_charter_id", "charter_revision", ["charter_id"])
    op.create_table(
        "charter_priority",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["revision_id"], ["charter_revision.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_charter_priority_revision_id", "charter_priority", ["revision_id"])
    op.create_table(
        "charter_priority_pledge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("priority_id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["priority_id"], ["charter_priority.id"]),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledge.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("priority_id", "pledge_id"),
    )
    op.create_index(
        "ix_charter_priority_pledge_priority_id", "charter_priority_pledge", ["priority_id"]
    )
    op.create_index(
        "ix_charter_priority_pledge_pledge_id", "charter_priority_pledge", ["pledge_id"]
    )


def downgrade() -> None:
    op.drop_table("charter_priority_pledge")
    op.drop_table("charter_priority")
    op.drop_table("charter_revision")
    op.drop_table("org_charter")
