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

# PostgreSQL: the same row triggers, the condition of the one on UPDATE checked before the function is called.
POSTGRESQL = [
    f"""CREATE FUNCTION rsvps_answers_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {MOVED.format(row='OLD')};
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.meeting_id IS DISTINCT FROM OLD.meeting_id) THEN
        {MOVED.format(row='NEW')};
    END IF;
    RETURN NULL;
END
$$""",
    "CREATE TRIGGER rsvps_answers_moved_insert AFTER INSERT ON rsvps FOR EACH ROW EXECUTE FUNCTION rsvps_answers_moved()",
    "CREATE TRIGGER rsvps_answers_moved_delete AFTER DELETE ON rsvps FOR EACH ROW EXECUTE FUNCTION rsvps_answers_moved()",
    "CREATE TRIGGER rsvps_answers_moved_update AFTER UPDATE ON rsvps FOR EACH ROW WHEN ("
    + " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in COUNTED)
    + ") EXECUTE FUNCTION rsvps_answers_moved()",
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
