"""one revision per number within a set of notes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:30:00

"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('note_revisions', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_note_revisions_notes_id_number'), ['notes_id', 'number'])


def downgrade():
    with op.batch_alter_table('note_revisions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_note_revisions_notes_id_number'), type_='unique')
