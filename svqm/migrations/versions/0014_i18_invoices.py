"""invoices and credit notes, and the counter that numbers them

Revision ID: 0014_i18_invoices
Revises: 0013_i18_eligibility
Create Date: 2026-12-03 13:00:00
"""

import sqlalchemy as sa
from alembic import op

from svqm.db import UtcDateTime

revision = '0014_i18_invoices'
down_revision = '0013_i18_eligibility'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_counter",
        sa.Column("series", sa.String(length=10), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series"),
    )
    op.create_table(
        "invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("award_id", sa.Integer(), nullable=True),
        sa.Column("credits_id", sa.Integer(), nullable=True),
        sa.Column("scheme", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=64), nullable=False),
        sa.Column("turnover_band", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount_pence", sa.Integer(), nullable=False),
        sa.Column("vat_pence", sa.Integer(), nullable=False),
        sa.Column("vat_percent", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("issued_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("paid_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("paid_by_id", sa.Integer(), nullable=True),
        sa.Column("payment_method", sa.String(length=20), nullable=False),
        sa.Column("payment_reference", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["award_id"], ["award.id"]),
        sa.ForeignKeyConstraint(["credits_id"], ["invoice.id"]),
        sa.ForeignKeyConstraint(["paid_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_invoice_organisation_id", "invoice", ["organisation_id"])
    op.create_index("ix_invoice_application_id", "invoice", ["application_id"])
    op.create_index("ix_invoice_award_id", "invoice", ["award_id"])
    op.create_index("ix_invoice_status", "invoice", ["status"])


def downgrade() -> None:
    op.drop_table("invoice")
    op.drop_table("invoice_counter")
