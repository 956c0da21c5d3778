"""workshop rooms: who sits in which room, the rooms' scribes and what they wrote

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 00:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'room_plans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('breakout_instructions', sa.Text(), nullable=False),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_room_plans_meeting_id_meetings'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_room_plans')),
        sa.UniqueConstraint('meeting_id', name=op.f('uq_room_plans_meeting_id')),
    )
    op.create_table(
        'room_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=True),
        sa.Column('preferred_room_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_room_members_meeting_id_meetings'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_room_members_member_id_members'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['room_id'], ['workshop_rooms.id'], name=op.f('fk_room_members_room_id_workshop_rooms'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['preferred_room_id'], ['workshop_rooms.id'], name=op.f('fk_room_members_preferred_room_id_workshop_rooms'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_room_members')),
        sa.UniqueConstraint('meeting_id', 'member_id', name=op.f('uq_room_members_meeting_id_member_id')),
    )
    op.create_index(op.f('ix_room_members_meeting_id'), 'room_members', ['meeting_id'], unique=False)
    op.create_index(op.f('ix_room_members_member_id'), 'room_members', ['member_id'], unique=False)
    op.create_index(op.f('ix_room_members_room_id'), 'room_members', ['room_id'], unique=False)
    op.create_table(
        'room_scribes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['room_id'], ['workshop_rooms.id'], name=op.f('fk_room_scribes_room_id_workshop_rooms'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_room_scribes_member_id_members'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_room_scribes')),
        sa.UniqueConstraint('room_id', 'member_id', name=op.f('uq_room_scribes_room_id_member_id')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_room_scribes_token_hash')),
    )
    op.create_index(op.f('ix_room_scribes_room_id'), 'room_scribes', ['room_id'], unique=False)
    op.create_index(op.f('ix_room_scribes_member_id'), 'room_scribes', ['member_id'], unique=False)
    op.create_table(
        'scribe_answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scribe_id', sa.Integer(), nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('taken_in', sa.Text(), nullable=False),
        sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['scribe_id'], ['room_scribes.id'], name=op.f('fk_scribe_answers_scribe_id_room_scribes'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['question_id'], ['workshop_questions.id'], name=op.f('fk_scribe_answers_question_id_workshop_questions'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scribe_answers')),
        sa.UniqueConstraint('scribe_id', 'question_id', name=op.f('uq_scribe_answers_scribe_id_question_id')),
    )
    op.create_index(op.f('ix_scribe_answers_scribe_id'), 'scribe_answers', ['scribe_id'], unique=False)
    op.create_index(op.f('ix_scribe_answers_question_id'), 'scribe_answers', ['question_id'], unique=False)


def downgrade():
    op.drop_table('scribe_answers')
    op.drop_table('room_scribes')
    op.drop_table('room_members')
    op.drop_table('room_plans')
