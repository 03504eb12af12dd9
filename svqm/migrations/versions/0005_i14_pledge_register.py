"""the organisation's pledge register: pledges belong to the organisation, applications hold them

Revision ID: 0005_i14_pledge_register
Revises: 0005_i12_signin
Create Date: 2026-12-02 23:51:37.001186

Each existing pledge is carried over: it gets its application's organisation, an empty unit, no
baseline, revision 1 (as it was made) and the application that made it holds it.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0005_i14_pledge_register'
down_revision = '0005_i12_signin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('application_pledge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('disposition', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_application_pledge_application_id_application')),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_application_pledge_pledge_id_pledge')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application_pledge')),
    sa.UniqueConstraint('application_id', 'pledge_id', name=op.f('uq_application_pledge_application_id_pledge_id'))
    )
    with op.batch_alter_table('application_pledge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_pledge_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_application_pledge_pledge_id'), ['pledge_id'], unique=False)

    op.create_table('pledge_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('theme', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('indicator', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('baseline', sa.Float(), nullable=True),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', svqm.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_pledge_revision_actor_id_user_account')),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_pledge_revision_application_id_application')),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_pledge_revision_pledge_id_pledge')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledge_revision')),
    sa.UniqueConstraint('pledge_id', 'revision', name=op.f('uq_pledge_revision_pledge_id_revision'))
    )
    with op.batch_alter_table('pledge_revision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pledge_revision_pledge_id'), ['pledge_id'], unique=False)

    # Plain ALTER TABLE ... ADD COLUMN, never a rebuild: on SQLite rebuilding `pledge` would drop
    # a table that evidence rows point at, which its foreign keys refuse.
    op.add_column('pledge', sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False, server_default=''))
    op.add_column('pledge', sa.Column('baseline', sa.Float(), nullable=True))
    op.add_column('pledge', sa.Column('organisation_id', sa.Integer(), nullable=True))
    op.add_column('pledge', sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='active'))
    op.add_column('pledge', sa.Column('revision', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('pledge', sa.Column('updated_at', svqm.db.UtcDateTime(timezone=True), nullable=True))

    # Carry the existing pledges over: their organisation, the application that made them holds
    # them, and their first revision is as they were made.
    op.execute(
        "UPDATE pledge SET organisation_id = "
        "(SELECT organisation_id FROM application WHERE application.id = pledge.application_id)"
    )
    op.execute(
        "INSERT INTO application_pledge (application_id, pledge_id, disposition) "
        "SELECT application_id, id, 'made' FROM pledge ORDER BY id"
    )
    op.execute(
        "INSERT INTO pledge_revision (pledge_id, revision, application_id, change, theme, title, "
        "indicator, unit, baseline, target, due_date, actor_id, at) "
        "SELECT id, 1, application_id, 'made', theme, title, indicator, '', NULL, target, "
        "due_date, created_by_id, created_at FROM pledge ORDER BY id"
    )

    op.create_index(op.f('ix_pledge_organisation_id'), 'pledge', ['organisation_id'], unique=False)
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot add these to an existing column; every writer sets organisation_id.
        op.alter_column('pledge', 'organisation_id', existing_type=sa.Integer(), nullable=False)
        op.create_foreign_key(op.f('fk_pledge_organisation_id_organisation'), 'pledge', 'organisation', ['organisation_id'], ['id'])


def downgrade() -> None:
    # An application holds only the pledges made in it again; withdrawn ones stay with it.
    with op.batch_alter_table('pledge_revision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pledge_revision_pledge_id'))

    op.drop_table('pledge_revision')
    with op.batch_alter_table('application_pledge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_pledge_pledge_id'))
        batch_op.drop_index(batch_op.f('ix_application_pledge_application_id'))

    op.drop_table('application_pledge')

    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('fk_pledge_organisation_id_organisation'), 'pledge', type_='foreignkey')
    op.drop_index(op.f('ix_pledge_organisation_id'), table_name='pledge')
    for name in ('updated_at', 'revision', 'status', 'organisation_id', 'baseline', 'unit'):
        op.drop_column('pledge', name)
