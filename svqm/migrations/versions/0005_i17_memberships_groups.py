"""memberships (a person acts for several organisations), invitations, groups and regions

Revision ID: 0005_i17_memberships_groups
Revises: 0004_i13_policy_language
Create Date: 2026-12-02 23:45:00

A person used to belong to exactly one organisation (`user_account.organisation_id`). Now they
may act for several, each with a role there: every existing user keeps their organisation as a
membership, as its lead (until now each of its people could do everything for it). A session
remembers which organisation it acts for. Organisations gain a parent (their group) and a region.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0005_i17_memberships_groups'
down_revision = '0004_i13_policy_language'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'membership',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('created_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_membership_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_membership_user_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
        sa.UniqueConstraint('user_id', 'organisation_id', name=op.f('uq_membership_user_id_organisation_id')),
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_user_id'), ['user_id'], unique=False)

    op.create_table(
        'invitation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', svqm.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column('accepted_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['accepted_by_id'], ['user_account.id'], name=op.f('fk_invitation_accepted_by_id_user_account')),
        sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_invitation_invited_by_id_user_account')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_invitation_organisation_id_organisation')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_invitation_token_hash')),
    )
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitation_organisation_id'), ['organisation_id'], unique=False)

    # Plain ADD COLUMN, not a batch copy of the table: SQLite cannot drop `organisation` while
    # every other table refers to it. SQLite gets the columns without their foreign keys (it
    # cannot add a constraint to an existing table); PostgreSQL gets them too.
    op.add_column('organisation', sa.Column('parent_id', sa.Integer(), nullable=True))
    op.add_column('organisation', sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=''))
    op.create_index(op.f('ix_organisation_parent_id'), 'organisation', ['parent_id'], unique=False)
    op.create_index(op.f('ix_organisation_region'), 'organisation', ['region'], unique=False)
    op.add_column('user_session', sa.Column('organisation_id', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name != 'sqlite':
        op.create_foreign_key(op.f('fk_organisation_parent_id_organisation'), 'organisation', 'organisation', ['parent_id'], ['id'])
        op.create_foreign_key(op.f('fk_user_session_organisation_id_organisation'), 'user_session', 'organisation', ['organisation_id'], ['id'])

    # Every user keeps the organisation they belonged to, as its lead.
    op.execute(
        "INSERT INTO membership (user_id, organisation_id, role, created_at) "
        "SELECT id, organisation_id, 'lead', created_at FROM user_account "
        "WHERE organisation_id IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_user_session_organisation_id_organisation'), 'user_session', type_='foreignkey')
        op.drop_constraint(op.f('fk_organisation_parent_id_organisation'), 'organisation', type_='foreignkey')
    op.drop_column('user_session', 'organisation_id')
    op.drop_index(op.f('ix_organisation_region'), table_name='organisation')
    op.drop_index(op.f('ix_organisation_parent_id'), table_name='organisation')
    op.drop_column('organisation', 'region')
    op.drop_column('organisation', 'parent_id')

    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitation_organisation_id'))
    op.drop_table('invitation')

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_user_id'))
        batch_op.drop_index(batch_op.f('ix_membership_organisation_id'))
    op.drop_table('membership')
