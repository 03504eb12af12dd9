"""progress against pledges: a report's figures per pledge, and the report's review

Revision ID: 0005_i14_progress
Revises: 0006_i17_group_applications
Create Date: 2026-12-03 00:45:00

Reports filed before this are document filings: their review is "filed" (nothing to review).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0005_i14_progress'
down_revision = '0006_i17_group_applications'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pledge_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('actual', sa.Float(), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_pledge_progress_pledge_id_pledge')),
    sa.ForeignKeyConstraint(['report_id'], ['annual_report.id'], name=op.f('fk_pledge_progress_report_id_annual_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledge_progress'))
    )
    op.create_index(op.f('ix_pledge_progress_pledge_id'), 'pledge_progress', ['pledge_id'], unique=False)
    op.create_index(op.f('ix_pledge_progress_report_id'), 'pledge_progress', ['report_id'], unique=False)
    # Plain ADD COLUMN (no rebuild of a table other rows point at).
    op.add_column('annual_report', sa.Column('review', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='filed'))
    op.add_column('annual_report', sa.Column('review_comment', sa.Text(), nullable=False, server_default=''))
    op.add_column('annual_report', sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
    op.add_column('annual_report', sa.Column('reviewed_at', svqm.db.UtcDateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(op.f('fk_annual_report_reviewed_by_id_user_account'), 'annual_report', 'user_account', ['reviewed_by_id'], ['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('fk_annual_report_reviewed_by_id_user_account'), 'annual_report', type_='foreignkey')
    for name in ('reviewed_at', 'reviewed_by_id', 'review_comment', 'review'):
        op.drop_column('annual_report', name)
    op.drop_index(op.f('ix_pledge_progress_report_id'), table_name='pledge_progress')
    op.drop_index(op.f('ix_pledge_progress_pledge_id'), table_name='pledge_progress')
    op.drop_table('pledge_progress')
