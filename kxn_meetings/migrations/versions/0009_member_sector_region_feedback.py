"""members' sector and region, for the network's reach, and members' feedback on the meetings they came to

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SECTORS = (
    'police', 'health', 'local_authority', 'violence_reduction_unit', 'youth_justice', 'education', 'third_sector',
    'academia', 'government', 'other',
)
REGIONS = (
    'north_east', 'north_west', 'yorkshire_and_the_humber', 'east_midlands', 'west_midlands', 'east_of_england',
    'london', 'south_east', 'south_west', 'wales', 'scotland', 'northern_ireland', 'national', 'outside_uk',
)


# Plain ADD COLUMN, not batch mode: SQLite's batch copy would drop the unique index on lower(email) (see 0005).
def upgrade():
    op.add_column(
        'members', sa.Column('sector', sa.Enum(*SECTORS, name='member_sector', native_enum=False, length=30), nullable=True)
    )
    op.add_column(
        'members', sa.Column('region', sa.Enum(*REGIONS, name='member_region', native_enum=False, length=30), nullable=True)
    )
    op.add_column('meetings', sa.Column('feedback_asked_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'meeting_feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=True),
        sa.Column('score', sa.SmallInteger(), nullable=False),
        sa.Column('do_differently', sa.Text(), nullable=False),
        sa.Column('future_topics', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_meeting_feedback_score_from_1_to_5')),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_meeting_feedback_meeting_id_meetings'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_meeting_feedback_member_id_members'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_feedback')),
        sa.UniqueConstraint('meeting_id', 'member_id', name=op.f('uq_meeting_feedback_meeting_id_member_id')),
    )
    op.create_index(op.f('ix_meeting_feedback_meeting_id'), 'meeting_feedback', ['meeting_id'], unique=False)
    op.create_index(op.f('ix_meeting_feedback_member_id'), 'meeting_feedback', ['member_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_meeting_feedback_member_id'), table_name='meeting_feedback')
    op.drop_index(op.f('ix_meeting_feedback_meeting_id'), table_name='meeting_feedback')
    op.drop_table('meeting_feedback')
    op.drop_column('meetings', 'feedback_asked_at')
    op.drop_column('members', 'region')
    op.drop_column('members', 'sector')
