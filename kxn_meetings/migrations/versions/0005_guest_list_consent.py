"""a member's consent to show her name to others going to the same meeting

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


# A plain ADD COLUMN, not batch mode: SQLite's batch copy rebuilds the table from what it can reflect and would drop
# the unique index on lower(email), an expression it cannot read back.
def upgrade():
    op.add_column(
        'members', sa.Column('show_name_to_attendees', sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade():
    op.drop_column('members', 'show_name_to_attendees')
