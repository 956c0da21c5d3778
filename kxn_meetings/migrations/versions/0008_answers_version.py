"""a version of each meeting's answers, moved by every change to them, so counts can be kept per version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# A plain ADD COLUMN, not batch mode, as in 0005: SQLite's batch copy would lose the expression index on members.
def upgrade():
    op.add_column('meetings', sa.Column('answers_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('meetings', 'answers_version')
