"""an evidence item may be one member's: a group's application asks some items once per member

Revision ID: 0016_i17_member_evidence
Revises: 0015_i17_org_charter
Create Date: 2026-12-03 15:10:00

A requirement with `per_member: true` asks a group's application for one upload for each member
organisation it covers; the item names the member (`member_organisation_id`, none for every item
uploaded before and for items of the whole application).
"""

import sqlalchemy as sa
from alembic import op

revision = '0016_i17_member_evidence'
down_revision = '0015_i17_org_charter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidenceitem") as batch:
        batch.add_column(sa.Column("member_organisation_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_evidenceitem_member_organisation_id_organisation",
            "organisation",
            ["member_organisation_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("evidenceitem") as batch:
        batch.drop_constraint("fk_evidenceitem_member_organisation_id_organisation", type_="foreignkey")
        batch.drop_column("member_organisation_id")
