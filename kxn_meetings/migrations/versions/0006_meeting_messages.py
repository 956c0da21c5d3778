"""organisers' messages to a group of a meeting's members, and the send each outbox message belongs to

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'meeting_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('sent_by_id', sa.Integer(), nullable=True),
        sa.Column(
            'audience',
            sa.Enum('going', 'maybe', 'waiting', 'not_replied', 'attended', name='message_audience', native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('recipient_count', sa.Integer(), nullable=False),
        sa.Column('send_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_meeting_messages_meeting_id_meetings'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sent_by_id'], ['members.id'], name=op.f('fk_meeting_messages_sent_by_id_members'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_messages')),
        sa.UniqueConstraint('send_key', name=op.f('uq_meeting_messages_send_key')),
    )
    op.create_index(op.f('ix_meeting_messages_meeting_id'), 'meeting_messages', ['meeting_id'], unique=False)
    op.add_column('outbox_messages', sa.Column('send_id', sa.String(length=32), nullable=True))
    op.create_index(op.f('ix_outbox_messages_send_id'), 'outbox_messages', ['send_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_outbox_messages_send_id'), table_name='outbox_messages')
    op.drop_column('outbox_messages', 'send_id')
    op.drop_table('meeting_messages')
