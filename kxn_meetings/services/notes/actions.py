"""The actions agreed at a meeting; those still open are carried to the next meeting of the series until done."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select

from ...extensions import db
from ...models import ActionItem, ActionStatus, Meeting, MeetingNotes, MeetingStatus


def actions_of(meeting: Meeting) -> list[ActionItem]:
    return list(
        db.session.scalars(select(ActionItem).where(ActionItem.meeting_id == meeting.id).order_by(ActionItem.id))
    )


def _in_series(meeting: Meeting, *columns) -> Select:
    return select(*(columns or (Meeting,))).where(
        Meeting.series_id == meeting.series_id, Meeting.id != meeting.id, Meeting.status != MeetingStatus.DRAFT
    )


def _previous_id(meeting: Meeting) -> int | None:
    if meeting.series_id is None:
        return None
    return db.session.scalar(
        _in_series(meeting, Meeting.id)
        .where(Meeting.starts_at < meeting.starts_at)
        .order_by(Meeting.starts_at.desc())
        .limit(1)
    )


def next_meeting(meeting: Meeting) -> Meeting | None:
    """The next scheduled (not cancelled) meeting of the same series."""
    if meeting.series_id is None:
        return None
    return db.session.scalar(
        _in_series(meeting)
        .where(Meeting.starts_at > meeting.starts_at, Meeting.status == MeetingStatus.SCHEDULED)
        .order_by(Meeting.starts_at)
        .limit(1)
    )


@dataclass
class CarriedActions:
    """Open actions agreed at the previous meeting of the series, shown at the next one until done."""

    meeting: Meeting
    notes: MeetingNotes | None
    actions: list[ActionItem]


def carried_actions(meeting: Meeting) -> CarriedActions | None:
    """Asked on every meeting page: the previous meeting itself is loaded only when it left actions open."""
    previous_id = _previous_id(meeting)
    if previous_id is None:
        return None
    actions = list(
        db.session.scalars(
            select(ActionItem)
            .where(ActionItem.meeting_id == previous_id, ActionItem.status == ActionStatus.OPEN)
            .order_by(ActionItem.id)
        )
    )
    if not actions:
        return None
    previous = db.session.get(Meeting, previous_id)
    assert previous is not None
    notes = db.session.scalar(select(MeetingNotes).where(MeetingNotes.meeting_id == previous_id))
    return CarriedActions(meeting=previous, notes=notes, actions=actions)


def set_action_status(action: ActionItem, status: ActionStatus) -> bool:
    """Mark an action done or open again; False when it already was."""
    if action.status == status:
        return False
    action.status = status
    db.session.flush()
    return True
