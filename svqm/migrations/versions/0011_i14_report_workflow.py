"""reports follow the scheme's report workflow; several supporting files; the deadline answered

Revision ID: 0011_i14_report_workflow
Revises: 0010_i18_audit_booking
Create Date: 2026-12-03 09:20:00

A report becomes a subject of its own: it copies its award's organisation, scheme, level and
policy, and carries a state, a version and the time it entered its state. Its review word maps
onto the real schemes' report workflow (awaiting_review -> submitted, accepted, more_information)
and a document filing stays "filed". The one file of a report with figures becomes its first
supporting file (report_file). `deadline_id` names the occurrence a filing answers; reports
filed before this leave it empty.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import svqm.db

revision = '0011_i14_report_workflow'
down_revision = '0010_i18_audit_booking'
branch_labels = None
depends_on = None

_COPIED = ('organisation_id', 'scheme', 'level', 'policy_digest')
_STATE = (
    "CASE review WHEN 'awaiting_review' THEN 'submitted' WHEN 'accepted' THEN 'accepted' "
    "WHEN 'more_information' THEN 'more_information' ELSE 'filed' END"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table('report_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', svqm.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['annual_report.id'], name=op.f('fk_report_file_report_id_annual_report')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], name=op.f('fk_report_file_uploaded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_file'))
    )
    op.create_index(op.f('ix_report_file_report_id'), 'report_file', ['report_id'], unique=False)
    # Plain ADD COLUMN (no rebuild of a table other rows point at), filled from the award.
    op.add_column('annual_report', sa.Column('organisation_id', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('annual_report', sa.Column('scheme', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
    op.add_column('annual_report', sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
    op.add_column('annual_report', sa.Column('policy_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
    op.add_column('annual_report', sa.Column('deadline_id', sa.Integer(), nullable=True))
    op.add_column('annual_report', sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default='filed'))
    op.add_column('annual_report', sa.Column('published', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('annual_report', sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('annual_report', sa.Column('state_changed_at', svqm.db.UtcDateTime(timezone=True), nullable=True))
    op.add_column('annual_report', sa.Column('assessor_id', sa.Integer(), nullable=True))
    for name in _COPIED:
        op.execute(
            f"UPDATE annual_report SET {name} = "
            f"(SELECT award.{name} FROM award WHERE award.id = annual_report.award_id)"
        )
    op.execute(
        f"UPDATE annual_report SET state = {_STATE}, published = (review = 'accepted'), "
        "state_changed_at = COALESCE(reviewed_at, submitted_at)"
    )
    op.execute(
        "UPDATE annual_report SET assessor_id = (SELECT application.assessor_id FROM award "
        "JOIN application ON application.id = award.application_id "
        "WHERE award.id = annual_report.award_id)"
    )
    # A report with figures keeps its file as its first supporting file.
    op.execute(
        "INSERT INTO report_file (report_id, filename, sha256, size, content_type, "
        "uploaded_by_id, uploaded_at) SELECT id, filename, sha256, size, content_type, "
        "submitted_by_id, submitted_at FROM annual_report WHERE review <> 'filed' AND sha256 <> ''"
    )
    op.execute(
        "UPDATE annual_report SET filename = '', sha256 = '', size = 0, content_type = '' "
        "WHERE review <> 'filed'"
    )
    op.create_index(op.f('ix_annual_report_state'), 'annual_report', ['state'], unique=False)
    op.create_index(op.f('ix_annual_report_organisation_id'), 'annual_report', ['organisation_id'], unique=False)
    op.create_index(op.f('ix_annual_report_deadline_id'), 'annual_report', ['deadline_id'], unique=False)
    if sqlite:
        # SQLite 3.35+ drops a plain column in place.
        op.execute("ALTER TABLE annual_report DROP COLUMN review")
        return
    op.drop_column('annual_report', 'review')
    op.alter_column('annual_report', 'state_changed_at', nullable=False)
    for name, table, column in (
        ('organisation_id', 'organisation', 'id'),
        ('policy_digest', 'policysnapshot', 'digest'),
        ('deadline_id', 'deadline', 'id'),
        ('assessor_id', 'user_account', 'id'),
    ):
        op.create_foreign_key(op.f(f'fk_annual_report_{name}_{table}'), 'annual_report', table, [name], [column])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column('annual_report', sa.Column('review', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='filed'))
    op.execute(
        "UPDATE annual_report SET review = CASE WHEN state = 'filed' THEN 'filed' "
        "WHEN published THEN 'accepted' WHEN state = 'more_information' THEN 'more_information' "
        "ELSE 'awaiting_review' END"
    )
    op.execute(
        "UPDATE annual_report SET filename = f.filename, sha256 = f.sha256, size = f.size, "
        "content_type = f.content_type FROM (SELECT report_id, MIN(id) AS id FROM report_file "
        "GROUP BY report_id) first JOIN report_file f ON f.id = first.id "
        "WHERE f.report_id = annual_report.id"
    )
    if not sqlite:
        for name, table in (
            ('organisation_id', 'organisation'),
            ('policy_digest', 'policysnapshot'),
            ('deadline_id', 'deadline'),
            ('assessor_id', 'user_account'),
        ):
            op.drop_constraint(op.f(f'fk_annual_report_{name}_{table}'), 'annual_report', type_='foreignkey')
    for name in ('ix_annual_report_deadline_id', 'ix_annual_report_organisation_id', 'ix_annual_report_state'):
        op.drop_index(op.f(name), table_name='annual_report')
    for name in ('assessor_id', 'state_changed_at', 'version', 'published', 'state', 'deadline_id', *_COPIED):
        if sqlite:
            op.execute(f"ALTER TABLE annual_report DROP COLUMN {name}")
        else:
            op.drop_column('annual_report', name)
    op.drop_index(op.f('ix_report_file_report_id'), table_name='report_file')
    op.drop_table('report_file')
