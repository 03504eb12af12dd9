"""group applications: one application covering several member organisations, an award each

Revision ID: 0006_i17_group_applications
Revises: 0005_i15_comment_visibility
Create Date: 2026-12-03 00:40:00

An application made by a group may cover several of its member organisations
(`application_member`); when it is awarded each of them gets an award of its own, held on a
record of the member's (an awarded application naming the group's, `group_application_id`).
"""

import sqlalchemy as sa
from alembic import op

revision = '0006_i17_group_applications'
down_revision = '0005_i15_comment_visibility'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'application_member',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_application_member_application_id_application')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_application_member_organisation_id_organisation')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_application_member')),
        sa.UniqueConstraint('application_id', 'organisation_id', name=op.f('uq_application_member_application_id_organisation_id')),
    )
    with op.batch_alter_table('application_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_member_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_application_member_organisation_id'), ['organisation_id'], unique=False)
    # Each member's award hangs on a record of its own (an application in the awarded state that
    # names the group's application), so an award keeps exactly one application.
    op.add_column('application', sa.Column('group_application_id', sa.Integer(), nullable=True))
    op.create_index('ix_application_group_application_id', 'application', ['group_application_id'], unique=False)
    if op.get_bind().dialect.name != 'sqlite':
        op.create_foreign_key('fk_application_group_application_id_application', 'application', 'application', ['group_application_id'], ['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_application_group_application_id_application', 'application', type_='foreignkey')
    op.drop_index('ix_application_group_application_id', table_name='application')
    op.drop_column('application', 'group_application_id')
    with op.batch_alter_table('application_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_member_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_application_member_application_id'))
    op.drop_table('application_member')
