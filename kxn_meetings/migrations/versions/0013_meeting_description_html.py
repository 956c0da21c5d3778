"""meeting descriptions stored as the meeting page shows them, rendered when they are written

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 23:50:00

"""
from alembic import op
import sqlalchemy as sa

from kxn_meetings.rendering import render_markdown


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


# A plain ADD COLUMN, not batch mode, as in 0005: SQLite's batch copy would lose the expression index on members.
def upgrade():
    op.add_column('meetings', sa.Column('description_html', sa.Text(), server_default='', nullable=False))
    meetings = sa.table('meetings', sa.column('id', sa.Integer), sa.column('description', sa.Text),
                        sa.column('description_html', sa.Text))
    bind = op.get_bind()
    rows = bind.execute(sa.select(meetings.c.id, meetings.c.description).where(meetings.c.description != '')).all()
    for meeting_id, description in rows:
        bind.execute(
            meetings.update().where(meetings.c.id == meeting_id).values(description_html=render_markdown(description))
        )


def downgrade():
    op.drop_column('meetings', 'description_html')
