"""audit booking (proposed start dates, the confirmed start) and stakeholder consultation

Revision ID: 0010_i18_audit_booking
Revises: 0009_i18_moderation
Create Date: 2026-12-03 08:40:00
"""

import sqlalchemy as sa
from alembic import op

from svqm.db import UtcDateTime

revision = '0010_i18_audit_booking'
down_revision = '0009_i18_moderation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.add_column(sa.Column("audit_starts_at", UtcDateTime(timezone=True), nullable=True))
    op.create_table(
        "audit_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("dates", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_day", sa.Date(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_proposal_application_id", "audit_proposal", ["application_id"])
    op.create_table(
        "consultation_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("group", sa.String(length=20), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("opens_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("reminded", sa.String(length=200), nullable=False),
        sa.Column("remind_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["invited_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_consultation_invite_application_id", "consultation_invite", ["application_id"]
    )
    op.create_index("ix_consultation_invite_remind", "consultation_invite", ["remind_at"])
    op.create_table(
        "consultation_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invite_id"], ["consultation_invite.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_consultation_token_invite_id", "consultation_token", ["invite_id"])
    op.create_table(
        "consultation_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("submitted_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invite_id"], ["consultation_invite.id"]),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invite_id"),
    )
    op.create_index(
        "ix_consultation_response_application_id", "consultation_response", ["application_id"]
    )


def downgrade() -> None:
    op.drop_table("consultation_response")
    op.drop_table("consultation_token")
    op.drop_table("consultation_invite")
    op.drop_table("audit_proposal")
    with op.batch_alter_table("application") as batch:
        batch.drop_column("audit_starts_at")
