"""iCalendar output built with the icalendar library: pure functions from meetings to bytes.

VTIMEZONE components are derived from the zone's own rules as yearly RRULEs (e.g. last Sunday of March and
October for Europe/London). icalendar's add_missing_timezones() writes one RDATE listing many dates, which
ical.js (Thunderbird), vobject and others read only the first date of, shifting meetings by an hour.
"""

from __future__ import annotations

import calendar as calmod
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vDuration, vRecur, vText

from . import timefmt

PRODID = "-//Knowledge Exchange Network//KXN Meetings//EN"
FEED_REFRESH = dt.timedelta(hours=1)


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


def transitions(zone: ZoneInfo, year: int) -> list[Transition]:
    """Every change of UTC offset in a zone during one year, to the second."""
    found: list[Transition] = []
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    step = dt.timedelta(hours=6)
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
            found.append(Transition(hi.replace(microsecond=0), before, after, after > before,
                                    hi.astimezone(zone).tzname() or ""))
            before = after
        t = nxt
    return found


def _byday(day: dt.date) -> tuple[int, str]:
    """The 'nth weekday of the month' a date is, as RRULE BYDAY: (month, '-1SU') or (month, '2SU')."""
    weekday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][day.weekday()]
    last_day = calmod.monthrange(day.year, day.month)[1]
    if day.day + 7 > last_day:
        return day.month, f"-1{weekday}"
    return day.month, f"{(day.day - 1) // 7 + 1}{weekday}"


def _rule_date(year: int, month: int, byday: str) -> dt.date:
    n, weekday = int(byday[:-2]), ["MO", "TU", "WE", "TH", "FR", "SA", "SU"].index(byday[-2:])
    days = [d for d in range(1, calmod.monthrange(year, month)[1] + 1) if dt.date(year, month, d).weekday() == weekday]
    return dt.date(year, month, days[n - 1] if n > 0 else days[n])


def _observance(t: Transition, rrule: dict | None = None):
    component = TimezoneDaylight() if t.is_dst else TimezoneStandard()
    component.add("dtstart", t.local_before)
    component.add("tzoffsetfrom", t.offset_before)
    component.add("tzoffsetto", t.offset_after)
    if t.name:
        component.add("tzname", t.name)
    if rrule:
        component.add("rrule", vRecur(rrule))
    return component


@lru_cache(maxsize=256)
def vtimezone(zone_name: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE valid for [first_year, last_year]: yearly RRULEs when the zone follows a fixed
    'nth weekday' rule in that span, one observance per change otherwise; a single STANDARD with no changes.

    Cached (working out the changes is slow): callers add the component to calendars and never alter it."""
    zone = ZoneInfo(zone_name)
    tz = Timezone()
    tz.add("tzid", zone_name)
    years = range(first_year - 1, last_year + 2)
    by_year = {year: transitions(zone, year) for year in years}
    every = [t for year in years for t in by_year[year]]
    span_start = dt.datetime(years[0], 1, 1, tzinfo=dt.UTC)
    if not every:
        offset = _offset(zone, span_start)
        local = span_start.astimezone(zone)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) - offset
        tz.add_component(_observance(Transition(epoch, offset, offset, False, local.tzname() or "")))
        return tz
    first = by_year[years[0]]
    if len(first) in (1, 2):
        rules = [(t, *_byday(t.local_before.date())) for t in first]

        def predicted(year: int) -> list[tuple]:
            return [(_rule_date(year, m, b), t.local_before.time(), t.offset_before, t.offset_after)
                    for t, m, b in rules]

        def actual(year: int) -> list[tuple]:
            return [(t.local_before.date(), t.local_before.time(), t.offset_before, t.offset_after)
                    for t in by_year[year]]

        if all(predicted(year) == actual(year) for year in years):
            for t, month, byday in rules:
                tz.add_component(_observance(t, {"FREQ": "YEARLY", "BYMONTH": month, "BYDAY": byday}))
            return tz
    # Irregular rules (e.g. Ramadan in Casablanca or Gaza): every change as its own observance, after one
    # that holds from the start of the span, so times before the first change have an offset too.
    start = every[0]
    tz.add_component(_observance(Transition(span_start, start.offset_before, start.offset_before, False,
                                            span_start.astimezone(zone).tzname() or "")))
    for t in every:
        tz.add_component(_observance(t))
    return tz


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
class Attendee:
    email: str
    name: str
    partstat: str = "NEEDS-ACTION"
    rsvp: bool = True


@dataclass(frozen=True)
class EventOptions:
    url: str
    organizer_email: str
    organizer_name: str
    include_join_link: bool = False
    attendee: Attendee | None = None
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
        lines = [f"CANCELLED: {meeting.cancel_reason}", ""] + lines
    return "\n".join(lines)


def location_text(meeting, *, include_join_link: bool) -> str:
    if meeting.location and meeting.join_url:
        return f"{meeting.location} and online"
    if meeting.location:
        return meeting.location
    return meeting.join_url if include_join_link and meeting.join_url else "Online"


def meeting_event(meeting, options: EventOptions) -> Event:
    zone = ZoneInfo(meeting.timezone)
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", (options.dtstamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0))
    event.add("dtstart", meeting.starts_at.astimezone(zone).replace(microsecond=0))
    event.add("dtend", meeting.ends_at.astimezone(zone).replace(microsecond=0))
    event.add("summary", meeting.title)
    event.add("description", description_text(meeting, options.url, include_join_link=options.include_join_link,
                                              extra=options.extra_description))
    event.add("location", location_text(meeting, include_join_link=options.include_join_link))
    event.add("url", options.url)
    event.add("status", options.status or ("CANCELLED" if meeting.is_cancelled else "CONFIRMED"))
    event.add("transp", "OPAQUE")
    event.add("last-modified", meeting.updated_at.astimezone(dt.UTC).replace(microsecond=0))
    organizer = vCalAddress(f"mailto:{options.organizer_email}")
    organizer.params["CN"] = vText(options.organizer_name)
    event.add("organizer", organizer)
    if options.attendee is not None:
        attendee = vCalAddress(f"mailto:{options.attendee.email}")
        attendee.params["CN"] = vText(options.attendee.name)
        attendee.params["ROLE"] = vText("REQ-PARTICIPANT")
        attendee.params["PARTSTAT"] = vText(options.attendee.partstat)
        attendee.params["CUTYPE"] = vText("INDIVIDUAL")
        if options.attendee.rsvp:
            attendee.params["RSVP"] = vText("TRUE")
        event.add("attendee", attendee)
    return event


def calendar_bytes(events: list[tuple[object, EventOptions]], *, method: str | None = "PUBLISH",
                   name: str | None = None, description: str | None = None, refresh: bool = False) -> bytes:
    """One calendar object holding the given meetings, with a VTIMEZONE for every zone they use."""
    cal = _new_calendar(method)
    if name:
        cal.add("name", name)
        cal.add("x-wr-calname", name)
    if description:
        cal.add("x-wr-caldesc", description)
    if refresh:
        cal.add("refresh-interval", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", vDuration(FEED_REFRESH))
    _add_timezones(cal, [meeting for meeting, _ in events])
    for meeting, options in events:
        cal.add_component(meeting_event(meeting, options))
    return cal.to_ical()
