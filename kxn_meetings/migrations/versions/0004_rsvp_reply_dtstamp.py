"""the DTSTAMP of the last calendar reply applied to each RSVP

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rsvps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_dtstamp', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('rsvps', schema=None) as batch_op:
        batch_op.drop_column('reply_dtstamp')
