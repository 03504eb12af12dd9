"""messages on a case (with files and read markers); staff may choose a daily email digest

Revision ID: 0012_i15_messages
Revises: 0011_i14_report_workflow
Create Date: 2026-12-03 11:50:00

A case (an application or an award) carries a thread of messages between its applicant and
staff; a message may have a file kept in the evidence store; each person's read marker per
thread gives their unread counts. A person's `email_digest` holds their event emails for one
email a day.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0012_i15_messages'
down_revision = '0011_i14_report_workflow'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('author_role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('at', svqm.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_case_message_author_id_user_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_case_message_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_message'))
    )
    op.create_index('ix_case_message_thread', 'case_message', ['subject_kind', 'subject_id', 'id'], unique=False)
    op.create_index(op.f('ix_case_message_organisation_id'), 'case_message', ['organisation_id'], unique=False)
    op.create_table('message_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['case_message.id'], name=op.f('fk_message_file_message_id_case_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_file'))
    )
    op.create_index(op.f('ix_message_file_message_id'), 'message_file', ['message_id'], unique=False)
    op.create_table('message_read',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('subject_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('last_read_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_message_read_user_id_user_account')),
    sa.PrimaryKeyConstraint('user_id', 'subject_kind', 'subject_id', name=op.f('pk_message_read'))
    )
    # Plain ADD COLUMN (no rebuild of a table every other table points at).
    op.add_column('user_account', sa.Column('email_digest', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE user_account DROP COLUMN email_digest")
    else:
        op.drop_column('user_account', 'email_digest')
    op.drop_table('message_read')
    op.drop_index(op.f('ix_message_file_message_id'), table_name='message_file')
    op.drop_table('message_file')
    op.drop_index(op.f('ix_case_message_organisation_id'), table_name='case_message')
    op.drop_index('ix_case_message_thread', table_name='case_message')
    op.drop_table('case_message')
