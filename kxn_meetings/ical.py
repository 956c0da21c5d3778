"""iCalendar output, pure functions from meetings to bytes: the calendar and its VTIMEZONEs built with the icalendar
library, each event written line by line as icalendar writes it (`event_bytes`).

VTIMEZONE components are derived from the zone's own changes since 1970 as yearly RRULEs (e.g. last Sunday of
March and October for Europe/London), one per rule period. icalendar's add_missing_timezones() writes one RDATE
listing many dates, which ical.js (Thunderbird), vobject and others read only the first date of, shifting
meetings by an hour.
"""

from __future__ import annotations

import calendar as calmod
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vDuration,
    vRecur,
    vText,
)
from icalendar.parser import Parameters, dquote
from icalendar.timezone import is_utc, tzid_from_tzinfo

from . import timefmt
from .text import without_controls

PRODID = "-//Knowledge Exchange Network//KXN Meetings//EN"
FEED_REFRESH = dt.timedelta(hours=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Transition:
    at: dt.datetime  # UTC instant
    offset_before: dt.timedelta
    offset_after: dt.timedelta
    is_dst: bool
    name: str

    @property
    def local_before(self) -> dt.datetime:
        """Wall-clock time of the change, read on the clock before it (as VTIMEZONE DTSTART wants)."""
        return (self.at + self.offset_before).replace(tzinfo=None)


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    return instant.astimezone(zone).utcoffset() or dt.timedelta(0)


def _changes(zone: ZoneInfo, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[Transition]:
    """Every change of UTC offset in [start, end), to the second."""
    found: list[Transition] = []
    t = start
    before = _offset(zone, t)
    while t < end:
        nxt = min(t + step, end)
        after = _offset(zone, nxt)
        if after != before:
            lo, hi = t, nxt
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _offset(zone, mid) == before:
                    lo = mid
                else:
                    hi = mid
            # Clocks going forward is DAYLIGHT, as calendar clients expect, even where the law calls
            # winter time the exception (Europe/Dublin's negative DST).
            found.append(
                Transition(hi.replace(microsecond=0), before, after, after > before, hi.astimezone(zone).tzname() or "")
            )
            before = after
        t = nxt
    return found


@lru_cache(maxsize=64)
def _history(zone_name: str, end_year: int) -> tuple[Transition, ...]:
    """Every change since 1970 to the end of end_year. A day apart is close enough: no zone has changed its
    clocks twice in one day since then."""
    return tuple(
        _changes(ZoneInfo(zone_name), EPOCH, dt.datetime(end_year + 1, 1, 1, tzinfo=dt.UTC), dt.timedelta(days=1))
    )


def _bydays(day: dt.date) -> set[str]:
    """The RRULE BYDAY values that name a date within its month: {'2SU'}, {'-1SU'}, or both ({'4SU', '-1SU'})."""
    weekday = WEEKDAYS[day.weekday()]
    names = {f"{(day.day - 1) // 7 + 1}{weekday}"}
    if day.day + 7 > calmod.monthrange(day.year, day.month)[1]:
        names.add(f"-1{weekday}")
    return names


@dataclass
class _Period:
    """Changes of one kind on the same 'nth weekday' in consecutive years (one RRULE), or a single change."""

    changes: list[Transition]
    bydays: set[str]
    ongoing: bool = False

    @property
    def key(self) -> tuple:
        return _rule_key(self.changes[0])


def _rule_key(t: Transition) -> tuple:
    local = t.local_before
    return (t.is_dst, local.month, local.time(), t.offset_before, t.offset_after, t.name)


@lru_cache(maxsize=64)
def _periods(zone_name: str, end_year: int) -> tuple[_Period, ...]:
    """The zone's changes since 1970 grouped into rule periods: a rule that changed (Sao Paulo dropping summer
    time in 2019, Moscow in 2011 and 2014) ends one period and starts another; irregular changes (Ramadan in
    Casablanca) are periods of one change. Ordered by first change."""
    periods: list[_Period] = []
    open_periods: dict[tuple, _Period] = {}
    for t in _history(zone_name, end_year):
        day = t.local_before.date()
        key = _rule_key(t)
        current = open_periods.get(key)
        if current is not None and current.changes[-1].at.year == t.at.year - 1 and current.bydays & _bydays(day):
            current.changes.append(t)
            current.bydays &= _bydays(day)
            continue
        current = open_periods[key] = _Period([t], _bydays(day))
        periods.append(current)
    for period in periods:
        period.ongoing = len(period.changes) > 1 and period.changes[-1].at.year == end_year
    return tuple(periods)


def _observance(t: Transition, period: _Period | None = None):
    component = TimezoneDaylight() if t.is_dst else TimezoneStandard()
    component.add("dtstart", t.local_before)
    component.add("tzoffsetfrom", t.offset_before)
    component.add("tzoffsetto", t.offset_after)
    if t.name:
        component.add("tzname", t.name)
    if period is not None and len(period.changes) > 1:
        byday = min(period.bydays)  # '-1SU' before '4SU': 'last' is what a rule like that means
        rule = {"FREQ": "YEARLY", "BYMONTH": t.local_before.month, "BYDAY": byday}
        if not period.ongoing:
            # A day after the last change, long before the next would be: dateutil (vobject) compares UTC UNTIL
            # with the rule's wall-clock times, and ts-ics puts each change at midnight of the machine's zone.
            rule["UNTIL"] = period.changes[-1].at + dt.timedelta(days=1)
        component.add("rrule", vRecur(rule))
    return component


@lru_cache(maxsize=256)
def vtimezone(zone_name: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE valid for [first_year, last_year], derived from the zone's changes since 1970: one
    observance per rule period (a yearly RRULE from its first change, with UNTIL if it has ended) or per
    irregular change, taking in every period that holds in those years and the one in force before them.

    Each observance begins at a change that really happened: ts-ics takes a zone's first change from the
    RRULE, not from DTSTART, so an observance beginning a year before a meeting reads that meeting an hour off.

    Cached (working out the changes is slow): callers add the component to calendars and never alter it."""
    zone = ZoneInfo(zone_name)
    tz = Timezone()
    tz.add("tzid", zone_name)
    periods = _periods(zone_name, last_year + 1)
    window = dt.datetime(first_year - 1, 1, 1, tzinfo=dt.UTC)
    before = [p for p in periods if p.changes[0].at < window]
    in_force = max(before, key=lambda p: max(c.at for c in p.changes if c.at < window), default=None)
    chosen = [p for p in periods if p is in_force or p.changes[-1].at >= window or p.ongoing]
    if in_force is None:
        # Nothing changed between 1970 and the first year: the offset of 1970 holds until the first change.
        offset = _offset(zone, EPOCH)
        tz.add_component(
            _observance(Transition(EPOCH - offset, offset, offset, False, EPOCH.astimezone(zone).tzname() or ""))
        )
    for period in chosen:
        first = period.changes[0]
        if len(period.changes) > 1 and first.at >= window:
            # ts-ics never counts an RRULE's DTSTART as a change: the first change of a rule period that
            # meetings may fall just after is written once more on its own.
            tz.add_component(_observance(first))
        tz.add_component(_observance(first, period))
    return tz


class Text(vText):
    """A TEXT value escaped as RFC 5545 3.3.11 says and nothing more. icalendar 7.3 first turns a literal '\\N'
    into a line break, so a title like 'C:\\New' came back as two lines in every client."""

    def to_ical(self) -> bytes:
        escaped = (
            str(self)
            .replace("\\", "\\\\")
            .replace(";", "\\;")
            .replace(",", "\\,")
            .replace("\r\n", "\\n")
            .replace("\r", "\\n")
            .replace("\n", "\\n")
        )
        return escaped.encode("utf-8")


def _new_calendar(method: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    return cal


def _add_timezones(cal: Calendar, meetings: Iterable) -> None:
    spans: dict[str, list[int]] = {}
    for meeting in meetings:
        years = spans.setdefault(meeting.timezone, [meeting.starts_at.year, meeting.ends_at.year])
        years[0] = min(years[0], meeting.starts_at.year)
        years[1] = max(years[1], meeting.ends_at.year)
    for zone_name, (first, last) in sorted(spans.items()):
        cal.add_component(vtimezone(zone_name, first, last))


@dataclass(frozen=True)
class EventOptions:
    url: str
    organizer_email: str
    organizer_name: str
    include_join_link: bool = False
    dtstamp: dt.datetime | None = None
    status: str | None = None
    extra_description: str = ""


def description_text(meeting, url: str, *, include_join_link: bool, extra: str = "") -> str:
    lines: list[str] = []
    if extra:
        lines += [extra, ""]
    if meeting.theme:
        lines += [f"Theme: {meeting.theme}", ""]
    lines.append(timefmt.when(meeting.starts_at, meeting.ends_at, meeting.timezone))
    if meeting.agenda_items:
        lines += ["", "Agenda:"]
        for item in meeting.agenda_items:
            clock = f"{item.start_time:%H:%M} " if item.start_time else ""
            speaker = ", ".join(p for p in (item.speaker_name, item.speaker_organisation) if p)
            lines.append(f"- {clock}{item.title}{f' ({speaker})' if speaker else ''}")
    if include_join_link and meeting.join_url:
        lines += ["", f"Join online: {meeting.join_url}"]
    if meeting.location:
        lines += ["", f"Where: {meeting.location}"]
    lines += ["", f"Meeting page: {url}"]
    if meeting.is_cancelled and meeting.cancel_reason:
        lines = [f"CANCELLED: {meeting.cancel_reason}", "", *lines]
    return "\n".join(lines)


def location_text(meeting, *, include_join_link: bool) -> str:
    if meeting.location and meeting.join_url:
        return f"{meeting.location} and online"
    if meeting.location:
        return meeting.location
    return meeting.join_url if include_join_link and meeting.join_url else "Online"


# Parsers disagree about wall-clock times close to a change of offset: the repeated hour of autumn is the first
# for RFC 5545 and the second for ical.js (Thunderbird) and Radicale, and ts-ics puts every change of an RRULE
# at midnight of its day. Such times are written as UTC instants, which every parser reads alike.
NEAR_A_CHANGE = dt.timedelta(hours=36)


def event_time(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """DTSTART or DTEND as written: wall-clock time in the meeting's zone (TZID), or UTC near a change."""
    instant = instant.astimezone(dt.UTC).replace(microsecond=0)
    if len({_offset(zone, instant + step) for step in (-NEAR_A_CHANGE, dt.timedelta(0), NEAR_A_CHANGE)}) > 1:
        return instant
    return instant.astimezone(zone)


def folded(line: str) -> bytes:
    """A content line folded as icalendar folds it (RFC 5545 3.1): at most 74 octets before each break, never inside
    a UTF-8 character, and one fewer where the last would be a backslash or caret, so that no escape is split."""
    data = line.encode()
    if len(data) <= 74:
        return data
    parts = []
    start = 0
    while len(data) - start > 74:
        end = start + 74
        while data[end] & 0xC0 == 0x80:  # a continuation byte: the character began before the break
            end -= 1
        if end - start > 1 and data[end - 1] in b"\\^":
            end -= 1
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts)


# A parameter value has no escapes of its own in RFC 5545. RFC 6868's (^' for a double quote, ^^ for a caret, ^n for a
# line break) are read as written by vobject, ts-ics, node-ical and ics.py; ts-ics and node-ical end the value at a
# ';' even inside quotes; ical.js reads backslash escapes in it as in TEXT. Each of these characters is written as
# the nearest one that every parser reads alike.
_CN_LOOKALIKES = str.maketrans({'"': "'", ";": ",", "^": "\u02c6", "\\": "\u29f5"})


def display_name(name: str) -> str:
    """A name as the CN parameter carries it, read back alike by every calendar parser: a double quote becomes an
    apostrophe, a semicolon a comma, a caret or backslash its look-alike (U+02C6, U+29F5), a line break a space."""
    return without_controls(name, replacement=" ").translate(_CN_LOOKALIKES)


def cn_parameter(name: str) -> str:
    """`CN=<name>` as icalendar writes the parameter for display_name(name), quoted when the name needs it."""
    value = display_name(name)
    always_quote = any(c in value for c in Parameters.quote_also["CN"])
    return f"CN={dquote(value, always_quote=always_quote)}"


def _utc(instant: dt.datetime) -> str:
    return f"{instant.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


@lru_cache(maxsize=64)
def _tzid(zone: ZoneInfo) -> str | None:
    """The TZID icalendar gives a zone's wall-clock times, or None for a zone it writes as UTC (UTC, GMT, and zones
    that have kept UTC's time, such as Africa/Abidjan)."""
    return None if is_utc(zone) else tzid_from_tzinfo(zone)


def _event_time(name: str, instant: dt.datetime, zone: ZoneInfo) -> str:
    written = event_time(instant, zone)
    tzid = None if written.tzinfo is dt.UTC else _tzid(zone)
    if tzid is None:
        return f"{name}:{_utc(written)}"
    return f"{name};TZID={tzid}:{written:%Y%m%dT%H%M%S}"


def _text(value: str) -> str:
    return Text(value).to_ical().decode()


def event_bytes(meeting, options: EventOptions) -> bytes:
    """The meeting's VEVENT, written line by line as icalendar writes it (its order of properties, escapes and
    folding; tests/test_calendar.py compares the two): building icalendar's objects for every meeting of a feed
    cost several times more than the feed's queries."""
    zone = ZoneInfo(meeting.timezone)
    description = description_text(
        meeting, options.url, include_join_link=options.include_join_link, extra=options.extra_description
    )
    organizer = vCalAddress(f"mailto:{options.organizer_email}")  # refuses a line break
    lines = (
        "BEGIN:VEVENT",
        f"SUMMARY:{_text(meeting.title)}",
        _event_time("DTSTART", meeting.starts_at, zone),
        _event_time("DTEND", meeting.ends_at, zone),
        f"DTSTAMP:{_utc(options.dtstamp or dt.datetime.now(dt.UTC))}",
        f"UID:{_text(meeting.uid)}",
        f"SEQUENCE:{meeting.sequence}",
        f"DESCRIPTION:{_text(description)}",
        f"LAST-MODIFIED:{_utc(meeting.updated_at)}",
        f"LOCATION:{_text(location_text(meeting, include_join_link=options.include_join_link))}",
        f"ORGANIZER;{cn_parameter(options.organizer_name)}:{organizer}",
        f"STATUS:{options.status or ('CANCELLED' if meeting.is_cancelled else 'CONFIRMED')}",
        "TRANSP:OPAQUE",
        f"URL:{options.url}",
        "END:VEVENT",
    )
    return b"".join(folded(line) + b"\r\n" for line in lines)


def calendar_bytes(
    events: Sequence[tuple[object, EventOptions]],
    *,
    method: str | None = "PUBLISH",
    name: str | None = None,
    description: str | None = None,
    refresh: bool = False,
) -> bytes:
    """One calendar object holding the given meetings, with a VTIMEZONE for every zone they use."""
    cal = _new_calendar(method)
    if name:
        cal.add("name", Text(name))
        cal.add("x-wr-calname", Text(name))
    if description:
        cal.add("x-wr-caldesc", Text(description))
    if refresh:
        cal.add("refresh-interval", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", vDuration(FEED_REFRESH))
    _add_timezones(cal, [meeting for meeting, _ in events])
    head, end, tail = cal.to_ical().rpartition(b"END:VCALENDAR")
    return b"".join([head, *(event_bytes(meeting, options) for meeting, options in events), end, tail])
