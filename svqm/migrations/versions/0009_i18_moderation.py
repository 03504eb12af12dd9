"""double marking, moderation, the score history and decisions that need several members

Revision ID: 0009_i18_moderation
Revises: 0008_i16_evidence_note
Create Date: 2026-12-03 08:30:00

A double-marked level's second assessor (`application.second_assessor_id`), each assessor's own
blind scores (`assessor_score`), the moderator of an agreed score (`score.moderated_by_id`),
every score change (`score_change`), and each member's decision on a step that needs several of
them to agree (`decision_vote`).
"""

import sqlalchemy as sa
from alembic import op

import svqm.db

revision = '0009_i18_moderation'
down_revision = '0008_i16_evidence_note'
branch_labels = None
depends_on = None


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ['user_account.id'], name=f'fk_{table}_{column}_user_account'
    )


def upgrade() -> None:
    with op.batch_alter_table('application') as batch:
        batch.add_column(sa.Column('second_assessor_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'fk_application_second_assessor_id_user_account',
            'user_account',
            ['second_assessor_id'],
            ['id'],
        )
        batch.create_index('ix_application_second_assessor_id', ['second_assessor_id'])
    with op.batch_alter_table('score') as batch:
        batch.add_column(sa.Column('moderated_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'fk_score_moderated_by_id_user_account', 'user_account', ['moderated_by_id'], ['id']
        )
    op.create_table(
        'assessor_score',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('assessor_id', sa.Integer(), nullable=False),
        sa.Column('standard', sa.String(length=64), nullable=False),
        sa.Column('question', sa.String(length=64), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['application_id'], ['application.id'],
            name='fk_assessor_score_application_id_application',
        ),
        _user_fk('assessor_score', 'assessor_id'),
        sa.PrimaryKeyConstraint('id', name='pk_assessor_score'),
        sa.UniqueConstraint(
            'application_id', 'assessor_id', 'standard', 'question',
            name='uq_assessor_score_application_id_assessor_id_standard_question',
        ),
    )
    op.create_index('ix_assessor_score_application_id', 'assessor_score', ['application_id'])
    op.create_table(
        'score_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=False),
        sa.Column('standard', sa.String(length=64), nullable=False),
        sa.Column('question', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('assessor_id', sa.Integer(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('old', sa.Integer(), nullable=True),
        sa.Column('new', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['application_id'], ['application.id'],
            name='fk_score_change_application_id_application',
        ),
        _user_fk('score_change', 'assessor_id'),
        _user_fk('score_change', 'actor_id'),
        sa.PrimaryKeyConstraint('id', name='pk_score_change'),
    )
    op.create_index('ix_score_change_application_id', 'score_change', ['application_id'])
    op.create_table(
        'decision_vote',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_kind', sa.String(length=20), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('trigger', sa.String(length=64), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False, server_default=''),
        sa.Column('at', svqm.db.UtcDateTime(timezone=True), nullable=False),
        _user_fk('decision_vote', 'member_id'),
        sa.PrimaryKeyConstraint('id', name='pk_decision_vote'),
        sa.UniqueConstraint(
            'subject_kind', 'subject_id', 'round', 'member_id',
            name='uq_decision_vote_subject_kind_subject_id_round_member_id',
        ),
    )
    op.create_index('ix_decision_vote_subject_id', 'decision_vote', ['subject_id'])


def downgrade() -> None:
    op.drop_index('ix_decision_vote_subject_id', table_name='decision_vote')
    op.drop_table('decision_vote')
    op.drop_index('ix_score_change_application_id', table_name='score_change')
    op.drop_table('score_change')
    op.drop_index('ix_assessor_score_application_id', table_name='assessor_score')
    op.drop_table('assessor_score')
    with op.batch_alter_table('score') as batch:
        batch.drop_constraint('fk_score_moderated_by_id_user_account', type_='foreignkey')
        batch.drop_column('moderated_by_id')
    with op.batch_alter_table('application') as batch:
        batch.drop_index('ix_application_second_assessor_id')
        batch.drop_constraint(
            'fk_application_second_assessor_id_user_account', type_='foreignkey'
        )
        batch.drop_column('second_assessor_id')
