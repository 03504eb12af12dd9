"""sign-in hardening: TOTP replay guard, throttling by source, enrolment links

Revision ID: 0005_i12_signin
Revises: 0005_i18_reapply
Create Date: 2026-12-02 23:59:00

`user_account.totp_last_step` is the last 30-second step a code was accepted for (a code is good
once). `login_attempt` now records the source address (hashed) and what happened (a failure, a
success, a sign-up), so throttling slows an account and address together rather than locking the
account. `enrolment_link` holds admin-issued, single-use links to set up a second factor.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0005_i12_signin'
down_revision = '0005_i18_reapply'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'source_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
            server_default=''))
        batch_op.add_column(sa.Column(
            'kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
            server_default='failure'))
        batch_op.create_index('ix_login_attempt_source', ['source_key', 'kind', 'at'], unique=False)
    op.create_table('enrolment_link',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('used_at', svqm.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_enrolment_link_user_id_user_account')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_enrolment_link_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_enrolment_link'))
    )
    with op.batch_alter_table('enrolment_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_link_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('enrolment_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolment_link_user_id'))
    op.drop_table('enrolment_link')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_source')
        batch_op.drop_column('kind')
        batch_op.drop_column('source_key')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
