"""answer notices queued by the request and written by the outbox worker just before they are sent

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 11:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


# A plain ADD COLUMN, not batch mode, as in 0005: SQLite's batch copy would lose the expression index on members.
def upgrade():
    op.add_column(
        'outbox_messages', sa.Column('to_render', sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade():
    op.drop_column('outbox_messages', 'to_render')
