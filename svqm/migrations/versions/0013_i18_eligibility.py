"""eligibility answers of an application; organisations' sectors spelt one way

Revision ID: 0013_i18_eligibility
Revises: 0012_i15_messages
Create Date: 2026-12-03 12:00:00
"""

from collections import Counter, defaultdict

import sqlalchemy as sa
from alembic import op

from svqm.db import UtcDateTime

revision = '0013_i18_eligibility'
down_revision = '0012_i15_messages'
branch_labels = None
depends_on = None


def _spelling(counts: Counter[str]) -> str:
    """The spelling a group of sectors equal but for case keeps: the most used, then one that
    starts with a capital ("Health" over "health"), then the first in order."""
    return sorted(counts, key=lambda s: (-counts[s], not s[:1].isupper(), s))[0]


def normalise_sectors(conn: sa.engine.Connection) -> None:
    """'Health', 'health' and ' health ' become one sector, as the directory lists it."""
    rows = conn.execute(sa.text("SELECT id, sector FROM organisation")).all()
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for _, sector in rows:
        plain = " ".join((sector or "").split())
        if plain:
            groups[plain.casefold()][plain] += 1
    for org_id, sector in rows:
        plain = " ".join((sector or "").split())
        want = _spelling(groups[plain.casefold()]) if plain else ""
        if want != sector:
            conn.execute(
                sa.text("UPDATE organisation SET sector = :s WHERE id = :i"),
                {"s": want, "i": org_id},
            )


def upgrade() -> None:
    op.create_table(
        "application_eligibility",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("turnover_band", sa.String(length=64), nullable=False),
        sa.Column("industries", sa.Text(), nullable=False),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["answered_by_id"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["decided_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id"),
    )
    normalise_sectors(op.get_bind())


def downgrade() -> None:
    # The sectors stay spelt one way: the old spellings were the same sector.
    op.drop_table("application_eligibility")
