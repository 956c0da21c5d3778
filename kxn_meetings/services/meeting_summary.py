"""What an email about a meeting says of it beyond the time: the description, the agenda with its speakers, the
answer-by date and the places left. Built once per notice and shared by every recipient's text and HTML parts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .. import timefmt
from ..models import AgendaItem, Meeting
from ..rendering import plain_text_summary
from .rsvps import counts_for

DESCRIPTION_LIMIT = 400


@dataclass(frozen=True)
class AgendaLine:
    time: str
    title: str
    speaker: str


@dataclass(frozen=True)
class MeetingSummary:
    description: str
    agenda: list[AgendaLine]
    agenda_zone: str
    answer_by: str
    places_left: int | None

    @property
    def description_cut(self) -> bool:
        """Whether the description was cut to DESCRIPTION_LIMIT: the email then says the meeting page has the rest."""
        return self.description.endswith("\u2026")

    @property
    def places(self) -> str:
        """'12 places left', '1 place left', 'Full: answering Going puts you on the waiting list', or ''."""
        if self.places_left is None:
            return ""
        if self.places_left == 0:
            return "Full: answering Going puts you on the waiting list"
        return f"{self.places_left} place{'' if self.places_left == 1 else 's'} left"


def speaker(item: AgendaItem) -> str:
    """'Imran Hussain, Partnerships manager, West Yorkshire VRU', or '' when the item has no speaker."""
    if not item.speaker_name:
        return ""
    return ", ".join(part for part in (item.speaker_name, item.speaker_role, item.speaker_organisation) if part)


def _zone_label(start: dt.datetime, zone: str) -> str:
    """'GMT (London time)': the zone's name on the meeting's day, and the place people know it by."""
    abbreviation, place = timefmt.zone_abbreviation(start), timefmt.zone_place(zone)
    return abbreviation if place == abbreviation else f"{abbreviation} ({place})"


def summary(meeting: Meeting, *, now: dt.datetime | None = None) -> MeetingSummary:
    """One query (the answers' counts) when the meeting has a capacity, none otherwise."""
    zone = ZoneInfo(meeting.timezone)
    start = meeting.starts_at.astimezone(zone)
    now = now or dt.datetime.now(dt.UTC)
    deadline = meeting.rsvp_deadline
    places_left = None
    if meeting.capacity is not None and meeting.id is not None:
        places_left = counts_for([meeting.id])[meeting.id].places_left(meeting.capacity)
    return MeetingSummary(
        description=plain_text_summary(meeting.description, DESCRIPTION_LIMIT, addresses=True),
        agenda=[
            AgendaLine(
                time=item.start_time.strftime("%H:%M") if item.start_time else "",
                title=item.title,
                speaker=speaker(item),
            )
            for item in meeting.agenda_items
        ],
        agenda_zone=_zone_label(start, meeting.timezone),
        answer_by=timefmt.instant(deadline, zone) if deadline is not None and deadline > now else "",
        places_left=places_left,
    )
