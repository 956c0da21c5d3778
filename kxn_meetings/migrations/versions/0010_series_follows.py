"""series in the interface: a description, members following a series with a standing answer, the unfollow link
of series emails; every meeting without a series joins the network's default one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 23:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

STANDING = ('invite', 'going')


def _assign_meetings_to_a_series():
    connection = op.get_bind()
    orphans = connection.execute(sa.text('SELECT count(*) FROM meetings WHERE series_id IS NULL')).scalar()
    if not orphans:
        return
    series_id = connection.execute(sa.text('SELECT min(id) FROM meeting_series')).scalar()
    if series_id is None:
        connection.execute(
            sa.text(
                "INSERT INTO meeting_series (name, slug, description, created_at, updated_at) "
                "VALUES ('Knowledge Exchange Network', 'kxn', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        series_id = connection.execute(sa.text('SELECT min(id) FROM meeting_series')).scalar()
    connection.execute(sa.text('UPDATE meetings SET series_id = :id WHERE series_id IS NULL'), {'id': series_id})


def upgrade():
    op.add_column('meeting_series', sa.Column('description', sa.Text(), server_default='', nullable=False))
    op.add_column('outbox_messages', sa.Column('list_unsubscribe', sa.String(length=1000), server_default='', nullable=False))
    op.create_table(
        'series_follows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('series_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('standing', sa.Enum(*STANDING, name='standing_answer', native_enum=False, length=20), nullable=False),
        sa.Column('in_feed', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_series_follows_member_id_members'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['series_id'], ['meeting_series.id'], name=op.f('fk_series_follows_series_id_meeting_series'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_series_follows')),
        sa.UniqueConstraint('series_id', 'member_id', name=op.f('uq_series_follows_series_id_member_id')),
    )
    op.create_index(op.f('ix_series_follows_member_id'), 'series_follows', ['member_id'], unique=False)
    op.create_index(op.f('ix_series_follows_series_id'), 'series_follows', ['series_id'], unique=False)
    _assign_meetings_to_a_series()


def downgrade():
    op.drop_index(op.f('ix_series_follows_series_id'), table_name='series_follows')
    op.drop_index(op.f('ix_series_follows_member_id'), table_name='series_follows')
    op.drop_table('series_follows')
    op.drop_column('outbox_messages', 'list_unsubscribe')
    op.drop_column('meeting_series', 'description')
