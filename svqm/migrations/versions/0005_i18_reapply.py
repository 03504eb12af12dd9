"""a re-application names the refused application it follows

Revision ID: 0005_i18_reapply
Revises: 0005_i17_memberships_groups
Create Date: 2026-12-02 23:59:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_i18_reapply'
down_revision = '0005_i17_memberships_groups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.add_column(sa.Column("reapplies_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_application_reapplies_id_application", "application", ["reapplies_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.drop_constraint("fk_application_reapplies_id_application", type_="foreignkey")
        batch.drop_column("reapplies_id")
