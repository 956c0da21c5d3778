"""meetings indexed by series and start, so the previous and next meeting of a series are found without a sort

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00

"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_meetings_series_id_starts_at', 'meetings', ['series_id', 'starts_at'], unique=False)
    op.drop_index('ix_meetings_series_id', table_name='meetings')


def downgrade():
    op.create_index('ix_meetings_series_id', 'meetings', ['series_id'], unique=False)
    op.drop_index('ix_meetings_series_id_starts_at', table_name='meetings')
