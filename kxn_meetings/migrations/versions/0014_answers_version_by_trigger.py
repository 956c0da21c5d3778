"""each meeting's answers_version moved by the database itself, with every change to its answers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:30:00

"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


# What an answer count reads (models.rsvps._COUNTED): a change to any other column leaves the counts as they were.
COUNTED = ('meeting_id', 'answer', 'waitlist_position', 'source', 'attended')
MOVED = 'UPDATE meetings SET answers_version = answers_version + 1 WHERE id = {row}.meeting_id'

# SQLite has row triggers only. A later migration that copies rsvps or meetings (batch mode) drops them: create them
# again after it, as here.
SQLITE = [
    f"CREATE TRIGGER rsvps_answers_moved_insert AFTER INSERT ON rsvps BEGIN {MOVED.format(row='NEW')}; END",
    f"CREATE TRIGGER rsvps_answers_moved_delete AFTER DELETE ON rsvps BEGIN {MOVED.format(row='OLD')}; END",
    "CREATE TRIGGER rsvps_answers_moved_update AFTER UPDATE ON rsvps WHEN "
    + " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in COUNTED)
    + f" BEGIN {MOVED.format(row='OLD')}; "
    + f"UPDATE meetings SET answers_version = answers_version + 1 WHERE id = NEW.meeting_id "
    + "AND NEW.meeting_id IS NOT OLD.meeting_id; END",
]

# PostgreSQL: one UPDATE of the meetings a statement changed the answers of, however many rows it changed.
POSTGRESQL = [
    """CREATE FUNCTION rsvps_answers_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE meetings SET answers_version = answers_version + 1
        WHERE id IN (SELECT meeting_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE meetings SET answers_version = answers_version + 1
        WHERE id IN (SELECT meeting_id FROM old_rows);
    ELSE
        UPDATE meetings SET answers_version = answers_version + 1
        WHERE id IN (
            SELECT m.id FROM old_rows o JOIN new_rows n ON n.id = o.id, LATERAL (VALUES (o.meeting_id), (n.meeting_id)) AS m(id)
            WHERE """ + " OR ".join(f"o.{name} IS DISTINCT FROM n.{name}" for name in COUNTED) + """
        );
    END IF;
    RETURN NULL;
END
$$""",
    "CREATE TRIGGER rsvps_answers_moved_insert AFTER INSERT ON rsvps REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION rsvps_answers_moved()",
    "CREATE TRIGGER rsvps_answers_moved_delete AFTER DELETE ON rsvps REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION rsvps_answers_moved()",
    "CREATE TRIGGER rsvps_answers_moved_update AFTER UPDATE ON rsvps REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rsvps_answers_moved()",
]


def upgrade():
    for statement in POSTGRESQL if op.get_bind().dialect.name == 'postgresql' else SQLITE:
        op.execute(statement)


def downgrade():
    for name in ('insert', 'delete', 'update'):
        op.execute(f'DROP TRIGGER IF EXISTS rsvps_answers_moved_{name}' + (
            ' ON rsvps' if op.get_bind().dialect.name == 'postgresql' else ''))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS rsvps_answers_moved()')
