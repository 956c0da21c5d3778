"""Workshop rooms: who sits in which room, the scribe of each room and what the rooms wrote.

Every function adds and flushes; the caller commits. One module per concern:
- assignment: the pure rule sharing members among rooms (no database);
- plan: placing the members going (automatically or by hand), preferences, locking, a member's own room;
- scribes: naming scribes, their personal scribe links, what they write;
- answers: what the organisers read of it: progress, the answers for the notes, changes not yet taken in.

Callers import the package (`from ..services import rooms`); the names below are what they use.
"""

from .answers import QuestionAnswers, RoomProgress, answers_by_question, changes, export_rows, progress, take_in
from .assignment import Person, assign
from .plan import (
    MyRoom,
    RoomsError,
    Seat,
    assign_automatically,
    assign_by_hand,
    going_members,
    is_locked,
    lock,
    plan_of,
    room_choice,
    room_names,
    room_of,
    rooms_by_member,
    seats,
    set_instructions,
    set_preference,
    unlock,
    why_not_changeable,
)
from .scribes import (
    answers_in_room,
    name_scribe,
    remove_scribe,
    save_answers,
    scribe_by_token,
    scribe_url,
    scribes_of,
    send_link_again,
    why_not_writable,
)
