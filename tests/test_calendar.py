"""Calendar files as calendar programs read them: every check is made with three independent parsers, vobject
(Python; its VTIMEZONE handling is dateutil's), ical.js (Thunderbird's parser, tests/js/parse_ics.mjs) and
ts-ics (web calendar apps, tests/js/parse_ics_ts.mjs).

The dates are those of the network's 2027 programme while they are still ahead; later the same days of a later
year are used (the feed drops meetings older than six months and the form refuses meetings in the past).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import vobject
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from icalendar import Event, vCalAddress, vText

from kxn_meetings import ical
from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, MeetingStatus, Rsvp, Visibility

from .dates import YEAR
from .invitation_checks import icaljs as icaljs_calendars
from .invitation_checks import tsics as tsics_calendars
from .invitation_checks import utc
from .meeting_helpers import meeting_form, only_meeting

JOIN = "https://meet.example.org/kxn-secret-room"
NETWORK = "Knowledge Exchange Network"


def last_sunday(year: int, month: int) -> dt.date:
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    day = first_of_next - dt.timedelta(days=1)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def local(day: dt.date, hour: int, zone: str) -> dt.datetime:
    """A wall-clock time in a zone as the UTC instant the app stores."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


# (label, zone, local day, local hour, the UTC instant it must be)
TIME_CASES = [
    ("London winter", "Europe/London", dt.date(YEAR, 3, 9), 15, dt.datetime(YEAR, 3, 9, 15, 0, tzinfo=dt.UTC)),
    ("London summer", "Europe/London", dt.date(YEAR, 6, 9), 15, dt.datetime(YEAR, 6, 9, 14, 0, tzinfo=dt.UTC)),
    (
        "London clocks go forward",
        "Europe/London",
        last_sunday(YEAR, 3),
        10,
        dt.datetime.combine(last_sunday(YEAR, 3), dt.time(9, 0), tzinfo=dt.UTC),
    ),
    (
        "London clocks go back",
        "Europe/London",
        last_sunday(YEAR, 10),
        10,
        dt.datetime.combine(last_sunday(YEAR, 10), dt.time(10, 0), tzinfo=dt.UTC),
    ),
    (
        "New York in US summer time, London not yet",
        "America/New_York",
        dt.date(YEAR, 3, 20),
        10,
        dt.datetime(YEAR, 3, 20, 14, 0, tzinfo=dt.UTC),
    ),
    (
        "Sydney summer (southern hemisphere)",
        "Australia/Sydney",
        dt.date(YEAR, 3, 9),
        15,
        dt.datetime(YEAR, 3, 9, 4, 0, tzinfo=dt.UTC),
    ),
    ("Sydney winter", "Australia/Sydney", dt.date(YEAR, 6, 9), 15, dt.datetime(YEAR, 6, 9, 5, 0, tzinfo=dt.UTC)),
    (
        "Kolkata (no clock changes)",
        "Asia/Kolkata",
        dt.date(YEAR, 6, 9),
        15,
        dt.datetime(YEAR, 6, 9, 9, 30, tzinfo=dt.UTC),
    ),
    (
        "London, the next year",
        "Europe/London",
        dt.date(YEAR + 1, 1, 12),
        15,
        dt.datetime(YEAR + 1, 1, 12, 15, 0, tzinfo=dt.UTC),
    ),
]


# Reading calendars -----------------------------------------------------------------------------------


def read_with_vobject(ics: bytes) -> dict:
    """The calendar as vobject reads it, with times worked out from the file's own VTIMEZONEs.

    vobject keeps the first VTIMEZONE it meets for a TZID in a process-wide table, and treats a definition
    that matches UTC from 2000 to 2020 (such as Europe/London starting in 2026) as UTC and swaps in pytz's
    zone. Either would hide a wrong VTIMEZONE, so each time is converted with the file's own definition,
    which vobject parses (with dateutil) into a tzinfo."""
    getattr(vobject.icalendar, "__tzidMap").clear()
    cal = vobject.readOne(ics.decode("utf-8"))
    zones = {tz.tzid.value: tz.gettzinfo() for tz in cal.contents.get("vtimezone", [])}

    def value(component, name):
        found = component.contents.get(name)
        return found[0].value if found else None

    def instant(prop) -> tuple[dt.datetime, str | None]:
        tzid = (prop.params.get("X-VOBJ-ORIGINAL-TZID") or prop.params.get("TZID") or [None])[0]
        if tzid is None:
            return prop.value.astimezone(dt.UTC), None
        assert tzid in zones, f"TZID {tzid} has no VTIMEZONE in the file"
        return prop.value.replace(tzinfo=None).replace(tzinfo=zones[tzid]).astimezone(dt.UTC), tzid

    events = []
    for event in cal.contents.get("vevent", []):
        start, start_tzid = instant(event.dtstart)
        end, end_tzid = instant(event.dtend)
        organizer = event.contents.get("organizer", [None])[0]
        events.append(
            {
                "uid": value(event, "uid"),
                "summary": value(event, "summary"),
                "description": value(event, "description"),
                "location": value(event, "location"),
                "url": value(event, "url"),
                "status": value(event, "status"),
                "sequence": int(value(event, "sequence")),
                "dtstamp": value(event, "dtstamp"),
                "attendees": [
                    {"value": a.value, "cn": a.params.get("CN", [None])[0]} for a in event.contents.get("attendee", [])
                ],
                "organizer": organizer and {"value": organizer.value, "cn": organizer.params.get("CN", [None])[0]},
                "start": start,
                "end": end,
                "start_tzid": start_tzid,
                "end_tzid": end_tzid,
            }
        )
    refresh = cal.contents.get("refresh-interval", [None])[0]
    return {
        "method": value(cal, "method"),
        "name": value(cal, "name"),
        "x_wr_calname": value(cal, "x-wr-calname"),
        "refresh_interval": refresh and (refresh.value, refresh.params.get("VALUE")),
        "x_published_ttl": value(cal, "x-published-ttl"),
        "timezones": sorted(zones),
        "events": events,
    }


def _utc_instants(calendar: dict, parser: str) -> dict:
    for event in calendar["events"]:
        # A TZID the parser found no definition for is read as floating time or with the system's zone data:
        # never acceptable here. Without a TZID the time must be UTC (Z form).
        for end in ("start", "end"):
            tzid = event[f"{end}_tzid"]
            assert event[f"{end}_zone"] == (tzid if tzid is not None or parser == "ts-ics" else "UTC"), (parser, event)
            event[end] = utc(event[end])
    return calendar


def read_with_icaljs(ics: bytes) -> dict:
    [calendar] = icaljs_calendars([ics])
    return _utc_instants(calendar, "ical.js")


def read_with_tsics(ics: bytes) -> dict:
    [calendar] = tsics_calendars([ics])
    return _utc_instants(calendar, "ts-ics")


@pytest.fixture
def icaljs():
    """ical.js on one calendar file: its VEVENTs as dicts (fails under CI=true without node, skips otherwise)."""
    return lambda ics: read_with_icaljs(ics)["events"]


def read_all(ics: bytes) -> list[tuple[str, dict]]:
    return [("vobject", read_with_vobject(ics)), ("ical.js", read_with_icaljs(ics)), ("ts-ics", read_with_tsics(ics))]


def read_many(files: list[bytes]) -> list[list[tuple[str, dict]]]:
    """Several files, each read by the three parsers: one node run per Node parser for all of them."""
    by_icaljs = [_utc_instants(c, "ical.js") for c in icaljs_calendars(files)]
    by_tsics = [_utc_instants(c, "ts-ics") for c in tsics_calendars(files)]
    return [
        [("vobject", read_with_vobject(ics)), ("ical.js", a), ("ts-ics", b)]
        for ics, a, b in zip(files, by_icaljs, by_tsics, strict=True)
    ]


def by_uid(calendar: dict) -> dict[str, dict]:
    events = {e["uid"]: e for e in calendar["events"]}
    assert len(events) == len(calendar["events"]), "a UID appears twice"
    return events


def unfolded(ics: bytes) -> bytes:
    """Content lines joined again (RFC 5545 3.1), so a search for words is not defeated by where a line was folded."""
    return ics.replace(b"\r\n ", b"")


def assert_raw_form(ics: bytes) -> list[bytes]:
    """RFC 5545 layout checked on the bytes: CRLF line ends, at most 75 octets a line, no UTF-8 character
    split by folding; every TZID used has a VTIMEZONE; no RDATE (most parsers read only its first date)."""
    assert ics.endswith(b"\r\n")
    lines = ics[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, line
        assert len(line) <= 75, line
        line.decode("utf-8")  # raises if folding cut a character in two
    unfolded = re.sub(rb"\r\n[ \t]", b"", ics)
    used = set(re.findall(rb";TZID=([^:;]+)[:;]", unfolded))
    defined = set(re.findall(rb"\r\nTZID:([^\r]+)\r\n", unfolded))
    assert used <= defined, (used, defined)
    assert b"RDATE" not in ics
    return unfolded.split(b"\r\n")


def make_rsvp(meeting: Meeting, member, answer: Answer, *, waiting: int | None = None) -> None:
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=member.id, answer=answer, waitlist_position=waiting))
    db.session.commit()


@pytest.fixture
def programme(make_meeting):
    """One public meeting per time case, with its stored instants."""
    meetings = []
    for n, (label, zone, day, hour, _) in enumerate(TIME_CASES):
        start = local(day, hour, zone)
        meetings.append(make_meeting(title=label, slug=f"programme-{n}", timezone=zone, start=start, join_url=JOIN))
    return meetings


def written_zone(meeting, zone: str) -> str | None:
    """The TZID a meeting's times carry: its zone, or none (UTC) within a day and a half of a change of offset,
    where parsers read wall-clock times differently."""
    tz = ZoneInfo(zone)
    near = dt.timedelta(hours=36)
    offsets = {(t + d).astimezone(tz).utcoffset() for t in (meeting.starts_at, meeting.ends_at) for d in (-near, near)}
    return zone if len(offsets) == 1 else None


def assert_times(calendar: dict, meetings: list[Meeting], parser: str, source: str) -> None:
    events = by_uid(calendar)
    for meeting, (label, zone, _, _, expected) in zip(meetings, TIME_CASES, strict=True):
        event = events[meeting.uid]
        assert meeting.starts_at == expected, label
        assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), (parser, source, label)
        assert event["start_tzid"] == event["end_tzid"] == written_zone(meeting, zone), (parser, source, label)


# Times, read back by both parsers, in every kind of file ------------------------------------------------


def test_every_file_gives_the_stored_instants_in_every_zone_and_across_clock_changes(
    app, client, programme, member, sign_in, icaljs
):
    downloads = []
    for meeting in programme:
        response = client.get(f"/meetings/{meeting.slug}/calendar.ics")
        assert response.status_code == 200
        downloads.append(response.data)
    for meeting, ics in zip(programme, downloads, strict=True):
        assert_raw_form(ics)
        calendar = read_with_vobject(ics)
        [event] = calendar["events"]
        assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), meeting.title
        assert calendar["timezones"] == [meeting.timezone]
    for meeting, parsed in zip(programme, read_many(downloads), strict=True):  # one node run a parser for all
        for parser, calendar in parsed:
            [event] = calendar["events"]
            assert event["start_tzid"] == written_zone(meeting, meeting.timezone), (parser, meeting.title)
            assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), (parser, meeting.title)
    assert icaljs(downloads[0])[0]["start"] == dt.datetime(YEAR, 3, 9, 15, 0, tzinfo=dt.UTC)

    # The public feed: two years and four zones in one file, one VTIMEZONE each.
    feed = client.get("/calendar.ics").data
    assert_raw_form(feed)
    for parser, calendar in read_all(feed):
        assert calendar["timezones"] == ["America/New_York", "Asia/Kolkata", "Australia/Sydney", "Europe/London"]
        assert_times(calendar, programme, parser, "public feed")

    # The member's own feed, with every meeting answered "Going".
    for meeting in programme:
        make_rsvp(meeting, member, Answer.GOING)
    sign_in(client, member)
    client.post("/profile/calendar")
    db.session.refresh(member)
    personal = client.get(f"/calendar/{member.calendar_token}.ics").data
    assert_raw_form(personal)
    for parser, calendar in read_all(personal):
        assert_times(calendar, programme, parser, "personal feed")


# One meeting's download ---------------------------------------------------------------------------------

YOUTH_TITLE = "Youth engagement, including the new children and young adult strategy"


def test_download_of_a_meeting_created_with_the_form(app, organiser_client, client, icaljs):
    form = meeting_form(
        title=YOUTH_TITLE, date=f"{YEAR}-03-09", theme="Hearing from young adults themselves", join_url=JOIN
    )
    assert organiser_client.post("/meetings/new", data=form).status_code == 302
    meeting = only_meeting()
    assert organiser_client.post(f"/meetings/{meeting.slug}/publish").status_code == 302

    response = client.get(f"/meetings/{meeting.slug}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="kxn-{YEAR}-03-09-youth-engagement.ics"'
    ics = response.data
    lines = assert_raw_form(ics)
    assert b"METHOD:PUBLISH" in lines
    assert lines.count(b"BEGIN:VEVENT") == 1
    assert not [line for line in lines if line.startswith((b"ATTENDEE", b"RDATE"))]
    assert JOIN.encode() not in unfolded(ics)
    assert re.search(rb"\r\nDTSTAMP:\d{8}T\d{6}Z\r\n", ics)
    page = f"https://kxn.test/meetings/{meeting.slug}"
    for parser, calendar in read_all(ics):
        assert calendar["method"] == "PUBLISH", parser
        [event] = calendar["events"]
        assert event["uid"] == meeting.uid
        assert event["sequence"] == meeting.sequence == 0
        assert event["summary"] == YOUTH_TITLE
        assert event["start"] == dt.datetime(YEAR, 3, 9, 15, 0, tzinfo=dt.UTC)
        assert event["end"] == dt.datetime(YEAR, 3, 9, 17, 0, tzinfo=dt.UTC)
        assert event["start_tzid"] == "Europe/London"
        assert event["location"] == "Online"
        assert event["url"] == page
        assert event["status"] == "CONFIRMED"
        assert event["attendees"] == []
        assert event["organizer"]["value"].lower() == "mailto:calendar@kxn.test"
        assert event["organizer"]["cn"] == NETWORK
        description = event["description"]
        assert "Theme: Hearing from young adults themselves" in description
        assert "- 15:00 Welcome and introductions" in description
        assert "- 15:15 Lessons from the Manchester pilot (Dr Asha Patel, University of Salford)" in description
        assert f"Meeting page: {page}" in description
        assert "<" not in description and "**" not in description  # plain text
    [vobject_event] = read_with_vobject(ics)["events"]
    assert vobject_event["dtstamp"].utcoffset() == dt.timedelta(0)

    # Same file name and UID on the next request and after an edit; the edit raises SEQUENCE.
    assert client.get(f"/meetings/{meeting.slug}/calendar.ics").data.count(meeting.uid.encode()) == 1
    edited = meeting_form(
        title=YOUTH_TITLE + " (moved)", date=f"{YEAR}-03-09", start_time="16:00", end_time="18:00", join_url=JOIN
    )
    assert organiser_client.post(f"/meetings/{meeting.slug}/edit", data=edited).status_code == 302
    meeting = only_meeting()
    assert meeting.sequence == 1
    after = client.get(f"/meetings/{meeting.slug}/calendar.ics")
    assert after.headers["Content-Disposition"] == f'attachment; filename="kxn-{YEAR}-03-09-youth-engagement.ics"'
    for parser, calendar in read_all(after.data):
        [event] = calendar["events"]
        assert (event["uid"], event["sequence"], event["summary"]) == (meeting.uid, 1, YOUTH_TITLE + " (moved)")
        assert event["start"] == dt.datetime(YEAR, 3, 9, 16, 0, tzinfo=dt.UTC), parser

    # Cancelled: the same UID, a higher SEQUENCE and STATUS:CANCELLED.
    response = organiser_client.post(f"/meetings/{meeting.slug}/cancel", data={"reason": "The speakers are unwell."})
    assert response.status_code == 302
    meeting = only_meeting()
    cancelled = client.get(f"/meetings/{meeting.slug}/calendar.ics").data
    assert JOIN.encode() not in unfolded(cancelled)
    for parser, calendar in read_all(cancelled):
        [event] = calendar["events"]
        assert (event["uid"], event["sequence"], event["status"]) == (meeting.uid, 2, "CANCELLED"), parser
        assert "The speakers are unwell." in event["description"]
    assert icaljs(cancelled)[0]["status"] == "CANCELLED"


def test_download_of_an_in_person_meeting_names_the_address(client, make_meeting):
    meeting = make_meeting(location="The Police Foundation, 1 Glass Wharf, Bristol", join_url="")
    ics = client.get(f"/meetings/{meeting.slug}/calendar.ics").data
    for parser, calendar in read_all(ics):
        assert calendar["events"][0]["location"] == "The Police Foundation, 1 Glass Wharf, Bristol", parser
    both = make_meeting(location="Police Foundation, London", join_url=JOIN)
    ics = client.get(f"/meetings/{both.slug}/calendar.ics").data
    assert JOIN.encode() not in unfolded(ics)
    for parser, calendar in read_all(ics):
        assert calendar["events"][0]["location"] == "Police Foundation, London and online", parser


def test_download_follows_who_may_see_the_meeting(app, client, make_meeting, member, sign_in):
    draft = make_meeting(status=MeetingStatus.DRAFT)
    members_only = make_meeting(visibility=Visibility.MEMBERS, join_url=JOIN)
    assert client.get(f"/meetings/{draft.slug}/calendar.ics").status_code == 404
    assert client.get("/meetings/no-such-meeting/calendar.ics").status_code == 404
    response = client.get(f"/meetings/{members_only.slug}/calendar.ics")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    sign_in(client, member)
    response = client.get(f"/meetings/{members_only.slug}/calendar.ics")
    assert response.status_code == 200
    assert "private" in response.headers["Cache-Control"]
    assert JOIN.encode() not in unfolded(response.data)  # a member's download may be shared with a whole team
    assert client.get(f"/meetings/{draft.slug}/calendar.ics").status_code == 404


def test_a_hostile_title_stays_one_summary_of_one_event(client, make_meeting, icaljs):
    title = (
        "A\r\nATTENDEE:mailto:x@evil\r\nEND:VEVENT, semicolons; commas, back\\slashes \\n "
        + "é" * 30
        + " 😀" * 12
        + " end"
    )
    meeting = make_meeting(title=title)  # straight into the model: the form refuses line breaks
    expected = title.replace("\r\n", "\n")  # CR LF escapes as \n and reads back as one newline
    for ics in (client.get(f"/meetings/{meeting.slug}/calendar.ics").data, client.get("/calendar.ics").data):
        lines = assert_raw_form(ics)
        assert lines.count(b"BEGIN:VEVENT") == 1
        assert lines.count(b"END:VEVENT") == 1
        assert not [line for line in lines if line.upper().startswith(b"ATTENDEE")]
        # Not ts-ics: it splits a file into components by searching the text for "END:VEVENT", wherever it is.
        for parser, calendar in (("vobject", read_with_vobject(ics)), ("ical.js", read_with_icaljs(ics))):
            [event] = calendar["events"]
            assert event["summary"] == expected, parser
            assert event["attendees"] == [], parser
        assert icaljs(ics)[0]["summary"] == expected


# The public feed -----------------------------------------------------------------------------------


@pytest.fixture
def feed_meetings(make_meeting):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hour_ago = now - dt.timedelta(hours=1)
    return SimpleNamespace(
        upcoming=make_meeting(title="Upcoming", join_url=JOIN + "-upcoming", updated_at=hour_ago),
        cancelled=make_meeting(title="Cancelled one", status=MeetingStatus.CANCELLED, sequence=1, updated_at=hour_ago),
        recent=make_meeting(title="Three months ago", start=now - dt.timedelta(days=90), updated_at=hour_ago),
        old=make_meeting(title="Seven months ago", start=now - dt.timedelta(days=213), updated_at=hour_ago),
        draft=make_meeting(
            title="Draft one", status=MeetingStatus.DRAFT, join_url=JOIN + "-draft", updated_at=hour_ago
        ),
        members_only=make_meeting(
            title="Members only", visibility=Visibility.MEMBERS, join_url=JOIN + "-members", updated_at=hour_ago
        ),
    )


def test_the_feed_holds_public_meetings_of_the_last_six_months_on(client, feed_meetings):
    m = feed_meetings
    response = client.get("/calendar.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    ics = response.data
    lines = assert_raw_form(ics)
    assert f"X-WR-CALNAME:{NETWORK}".encode() in lines
    assert f"NAME:{NETWORK}".encode() in lines
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in lines
    assert b"X-PUBLISHED-TTL:PT1H" in lines
    assert b"https://meet.example.org" not in unfolded(ics)  # no join link of any meeting, public or not
    vobject_calendar, icaljs_calendar, tsics_calendar = (calendar for _, calendar in read_all(ics))
    assert tsics_calendar["name"] == NETWORK and tsics_calendar["method"] == "PUBLISH"
    assert {e["uid"] for e in tsics_calendar["events"]} == {m.upcoming.uid, m.cancelled.uid, m.recent.uid}
    assert vobject_calendar["refresh_interval"] == ("PT1H", ["DURATION"])
    assert icaljs_calendar["refresh_interval"] == "PT1H"
    assert icaljs_calendar["refresh_interval_type"] == "duration"
    for parser, calendar in (("vobject", vobject_calendar), ("ical.js", icaljs_calendar)):
        assert (calendar["name"], calendar["x_wr_calname"], calendar["method"]) == (NETWORK, NETWORK, "PUBLISH")
        assert calendar["x_published_ttl"] in ("PT1H", dt.timedelta(hours=1)), parser
        events = by_uid(calendar)
        assert set(events) == {m.upcoming.uid, m.cancelled.uid, m.recent.uid}, parser
        assert events[m.cancelled.uid]["status"] == "CANCELLED"
        assert events[m.cancelled.uid]["sequence"] == 1
        assert events[m.upcoming.uid]["status"] == "CONFIRMED"
        assert all(e["attendees"] == [] for e in events.values())


def _feed_etag(client) -> str:
    response = client.get("/calendar.ics")
    assert response.status_code == 200
    return response.headers["ETag"]


def test_feed_polls_are_answered_304_until_something_in_it_changes(
    app, client, organiser_client, feed_meetings, make_meeting
):
    m = feed_meetings
    first = client.get("/calendar.ics")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag and last_modified
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/calendar.ics", headers={"If-Modified-Since": last_modified}).status_code == 304
    stale = client.get("/calendar.ics", headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.data == first.data

    # One query answers a poll: the meetings themselves are not loaded.
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "count" in selects[0].lower(), statements

    def changed(before: str, present: str | None = None, absent: str | None = None) -> str:
        response = client.get("/calendar.ics", headers={"If-None-Match": before})
        assert response.status_code == 200, "a changed feed was answered 304"
        assert response.headers["ETag"] != before
        if present:
            assert present.encode() in unfolded(response.data)
        if absent:
            assert absent.encode() not in unfolded(response.data)
        return response.headers["ETag"]

    slug = m.upcoming.slug
    edit = meeting_form(
        title="Upcoming, renamed",
        date=m.upcoming.local_start.date().isoformat(),
        start_time=m.upcoming.local_start.strftime("%H:%M"),
        end_time=m.upcoming.local_end.strftime("%H:%M"),
        end_date=m.upcoming.local_end.date().isoformat(),
        join_url=JOIN,
    )
    assert organiser_client.post(f"/meetings/{slug}/edit", data=edit).status_code == 302
    etag = changed(etag, present="SUMMARY:Upcoming\\, renamed")

    db.session.refresh(m.upcoming)
    row_changed_at = m.upcoming.updated_at
    assert b"Manchester pilot" in unfolded(client.get(f"/meetings/{slug}/calendar.ics").data)
    edit["agenda-1-title"] = "Lessons from the Lancashire pilot"
    assert organiser_client.post(f"/meetings/{slug}/edit", data=edit).status_code == 302
    db.session.refresh(m.upcoming)
    assert m.upcoming.updated_at > row_changed_at  # the agenda lives in its own rows; the meeting records the edit
    etag = changed(etag, present="Lancashire pilot", absent="Manchester pilot")
    download = unfolded(client.get(f"/meetings/{slug}/calendar.ics").data)
    assert b"Lancashire pilot" in download and b"Manchester pilot" not in download

    assert organiser_client.post(f"/meetings/{slug}/cancel", data={"reason": "Unwell"}).status_code == 302
    etag = changed(etag)
    for parser, calendar in read_all(client.get("/calendar.ics").data):
        assert by_uid(calendar)[m.upcoming.uid]["status"] == "CANCELLED", parser

    assert organiser_client.post(f"/meetings/{m.draft.slug}/publish").status_code == 302
    etag = changed(etag, present="SUMMARY:Draft one")

    db.session.delete(db.session.get(Meeting, m.recent.id))
    db.session.commit()
    etag = changed(etag, absent="SUMMARY:Three months ago")
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304


def test_public_calendar_files_are_the_same_for_everyone(client, organiser_client, feed_meetings, member, sign_in):
    """Shared caches may keep them: no cookie is set or read, so no `Vary: Cookie` either."""
    for path in (f"/meetings/{feed_meetings.upcoming.slug}/calendar.ics", "/calendar.ics"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert "Cookie" not in response.headers.get("Vary", "") and "Set-Cookie" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304 and "Cookie" not in again.headers.get("Vary", "")
    draft = f"/meetings/{feed_meetings.draft.slug}/calendar.ics"
    assert client.get(draft).status_code == 404
    assert organiser_client.get(draft).status_code == 200
    sign_in(client, member)
    page = client.get("/profile")
    assert page.headers["Cache-Control"] == "private, no-store" and "Cookie" in page.headers["Vary"]
    members_only = client.get(f"/meetings/{feed_meetings.members_only.slug}/calendar.ics")
    assert members_only.status_code == 200 and members_only.headers["Cache-Control"] == "private, max-age=300"


def test_if_none_match_wins_over_if_modified_since(client, feed_meetings):
    first = client.get("/calendar.ics")
    response = client.get(
        "/calendar.ics", headers={"If-None-Match": '"old"', "If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert response.status_code == 200


# Each member's own feed ----------------------------------------------------------------------------


def test_personal_feed_shows_the_members_own_meetings_and_the_join_link_only_where_going(
    app, client, make_meeting, make_member, member, sign_in, icaljs
):
    going = make_meeting(title="Going to this", join_url=JOIN + "-going")
    maybe = make_meeting(title="Maybe this", visibility=Visibility.MEMBERS, join_url=JOIN + "-maybe")
    waiting = make_meeting(title="On the waiting list", join_url=JOIN + "-waiting", capacity=1)
    declined = make_meeting(title="Declined this", join_url=JOIN + "-declined")
    others = make_meeting(title="Someone else's", join_url=JOIN + "-others", visibility=Visibility.MEMBERS)
    make_rsvp(going, member, Answer.GOING)
    make_rsvp(maybe, member, Answer.MAYBE)
    make_rsvp(waiting, member, Answer.GOING, waiting=1)
    make_rsvp(declined, member, Answer.DECLINED)
    make_rsvp(others, make_member(), Answer.GOING)

    sign_in(client, member)
    page = client.get("/profile/calendar").get_data(as_text=True)
    assert "Create my calendar address" in page
    response = client.post("/profile/calendar", follow_redirects=True)
    assert "Your personal calendar address is ready." in response.get_data(as_text=True)
    db.session.refresh(member)
    token = member.calendar_token
    feed_url = f"https://kxn.test/calendar/{token}.ics"
    page = response.get_data(as_text=True)
    assert f'value="{feed_url}"' in page
    assert f'href="webcal://kxn.test/calendar/{token}.ics"' in page
    assert 'href="webcal://kxn.test/calendar.ics"' in page
    assert 'href="https://kxn.test/calendar.ics"' in page

    anonymous = app.test_client()
    response = anonymous.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "private" in response.headers["Cache-Control"]
    ics = response.data
    assert_raw_form(ics)
    assert (JOIN + "-going").encode() in unfolded(ics)
    for other_link in ("-maybe", "-waiting", "-declined", "-others"):
        assert (JOIN + other_link).encode() not in unfolded(ics)
    for parser, calendar in read_all(ics):
        events = by_uid(calendar)
        assert set(events) == {going.uid, maybe.uid, waiting.uid}, parser
        assert events[going.uid]["status"] == "CONFIRMED"
        assert events[maybe.uid]["status"] == "TENTATIVE"
        assert events[waiting.uid]["status"] == "TENTATIVE"
        assert "You are on the waiting list." in events[waiting.uid]["description"]
        assert f"Join online: {JOIN}-going" in events[going.uid]["description"]
        assert all(e["attendees"] == [] for e in events.values())
    assert {e["uid"] for e in icaljs(ics)} == {going.uid, maybe.uid, waiting.uid}

    # Resetting the address: the old one stops at once, the new one works.
    response = client.post("/profile/calendar", follow_redirects=True)
    assert "the old one no longer works" in response.get_data(as_text=True)
    db.session.refresh(member)
    assert member.calendar_token != token
    assert anonymous.get(f"/calendar/{token}.ics").status_code == 404
    assert anonymous.get(f"/calendar/{member.calendar_token}.ics").status_code == 200

    assert anonymous.get("/calendar/not-a-real-token.ics").status_code == 404
    assert anonymous.get(f"/calendar/{'x' * 300}.ics").status_code == 404
    member.active = False
    db.session.commit()
    assert anonymous.get(f"/calendar/{member.calendar_token}.ics").status_code == 404


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_resetting_the_address_needs_the_form_token(app, client, member, sign_in):
    sign_in(client, member)
    assert client.post("/profile/calendar").status_code == 400
    db.session.refresh(member)
    assert member.calendar_token is None
    assert client.get("/profile/calendar").status_code == 200


def test_the_calendar_page_needs_a_signed_in_member(client):
    response = client.get("/profile/calendar")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


# "Add to calendar" on the meeting page --------------------------------------------------------------


def test_add_to_calendar_links_carry_the_times_in_utc(client, make_meeting):
    meeting = make_meeting(
        title="Youth engagement, including strategy", start=dt.datetime(YEAR, 3, 9, 15, 0, tzinfo=dt.UTC)
    )
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    hrefs = [html.unescape(h) for h in re.findall(r'<a href="([^"]+)"', page)]
    assert f"/meetings/{meeting.slug}/calendar.ics" in hrefs

    [google] = [h for h in hrefs if h.startswith("https://calendar.google.com/")]
    query = parse_qs(urlsplit(google).query)
    assert query["action"] == ["TEMPLATE"]
    assert query["text"] == [meeting.title]
    assert query["dates"] == [f"{YEAR}0309T150000Z/{YEAR}0309T170000Z"]
    assert query["ctz"] == ["Europe/London"]
    assert "https://meet.example.org" not in google

    for host in ("outlook.live.com", "outlook.office.com"):
        [outlook] = [h for h in hrefs if urlsplit(h).netloc == host]
        parts = urlsplit(outlook)
        query = parse_qs(parts.query)
        assert parts.path == "/calendar/0/action/compose"
        assert query["rru"] == ["addevent"]
        assert query["subject"] == [meeting.title]
        assert query["startdt"] == [f"{YEAR}-03-09T15:00:00Z"]
        assert query["enddt"] == [f"{YEAR}-03-09T17:00:00Z"]
        assert "https://meet.example.org" not in outlook


# Deriving VTIMEZONEs from the zone rules --------------------------------------------------------------


def _stand_in(title: str, zone: str, start: dt.datetime) -> SimpleNamespace:
    """What ical.py reads from a meeting, for zones and years the app's own checks would refuse."""
    return SimpleNamespace(
        uid=f"{title}@test",
        sequence=0,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        timezone=zone,
        title=title,
        theme="",
        agenda_items=[],
        join_url="",
        location="Somewhere",
        is_cancelled=False,
        cancel_reason="",
        updated_at=start,
    )


STAND_IN_OPTIONS = ical.EventOptions(
    url="https://kxn.test/m", organizer_email="calendar@kxn.test", organizer_name=NETWORK
)


def zone_rules(zone: str, first_year: int, last_year: int) -> list[tuple[str, list[dict]]]:
    """The observances written for a zone in a file with meetings from first_year to last_year, as each parser
    reads them: kind, RRULE parts, offsets and how many RDATEs."""
    meetings = [
        _stand_in(str(year), zone, dt.datetime(year, 6, 1, 12, tzinfo=dt.UTC)) for year in (first_year, last_year)
    ]
    ics = ical.calendar_bytes([(m, STAND_IN_OPTIONS) for m in meetings])

    def rule(text: str | None) -> dict | None:
        return text and dict(part.split("=") for part in text.split(";"))

    getattr(vobject.icalendar, "__tzidMap").clear()
    [component] = vobject.readOne(ics.decode("utf-8")).contents["vtimezone"]
    from_vobject = [
        {
            "kind": kind.upper(),
            "rrule": rule(o.rrule.value if "rrule" in o.contents else None),
            "from": o.tzoffsetfrom.value,
            "to": o.tzoffsetto.value,
            "rdates": len(o.contents.get("rdate", [])),
        }
        for kind in ("standard", "daylight")
        for o in component.contents.get(kind, [])
    ]
    from_icaljs = [{**o, "rrule": rule(o["rrule"])} for o in read_with_icaljs(ics)["observances"][zone]]
    order = lambda o: (o["kind"], o["from"], o["to"])  # noqa: E731
    return [("vobject", sorted(from_vobject, key=order)), ("ical.js", sorted(from_icaljs, key=order))]


def test_london_has_two_yearly_rules_last_sunday_of_march_and_october():
    for parser, found in zone_rules("Europe/London", YEAR, YEAR + 1):
        assert found == [
            {
                "kind": "DAYLIGHT",
                "rrule": {"FREQ": "YEARLY", "BYMONTH": "3", "BYDAY": "-1SU"},
                "from": "+0000",
                "to": "+0100",
                "rdates": 0,
            },
            {
                "kind": "STANDARD",
                "rrule": {"FREQ": "YEARLY", "BYMONTH": "10", "BYDAY": "-1SU"},
                "from": "+0100",
                "to": "+0000",
                "rdates": 0,
            },
        ], parser


def test_us_southern_hemisphere_and_irish_rules_are_found_too():
    for parser, found in zone_rules("America/New_York", YEAR, YEAR):
        assert [(o["kind"], o["rrule"], o["to"]) for o in found] == [
            ("DAYLIGHT", {"FREQ": "YEARLY", "BYMONTH": "3", "BYDAY": "2SU"}, "-0400"),
            ("STANDARD", {"FREQ": "YEARLY", "BYMONTH": "11", "BYDAY": "1SU"}, "-0500"),
        ], parser
    for parser, found in zone_rules("Australia/Sydney", YEAR, YEAR + 1):
        assert [(o["kind"], o["rrule"], o["to"]) for o in found] == [
            ("DAYLIGHT", {"FREQ": "YEARLY", "BYMONTH": "10", "BYDAY": "1SU"}, "+1100"),
            ("STANDARD", {"FREQ": "YEARLY", "BYMONTH": "4", "BYDAY": "1SU"}, "+1000"),
        ], parser
    # Irish law makes summer time the standard and winter the exception; clients expect DAYLIGHT in summer.
    for parser, found in zone_rules("Europe/Dublin", YEAR, YEAR):
        assert [(o["kind"], o["from"], o["to"]) for o in found] == [
            ("DAYLIGHT", "+0000", "+0100"),
            ("STANDARD", "+0100", "+0000"),
        ], parser
    for parser, found in zone_rules("Asia/Kolkata", YEAR, YEAR):
        assert found == [{"kind": "STANDARD", "rrule": None, "from": "+0530", "to": "+0530", "rdates": 0}], parser


@pytest.mark.parametrize(
    ("zone", "wall_clock", "instant"),
    [
        # Morocco moves its clocks back for Ramadan: dates that follow the moon, not a weekday rule.
        ("Africa/Casablanca", dt.datetime(2027, 2, 20, 15, 0), dt.datetime(2027, 2, 20, 15, 0, tzinfo=dt.UTC)),
        ("Africa/Casablanca", dt.datetime(2027, 6, 9, 15, 0), dt.datetime(2027, 6, 9, 14, 0, tzinfo=dt.UTC)),
        ("Asia/Gaza", dt.datetime(2027, 4, 20, 15, 0), None),
        ("Asia/Gaza", dt.datetime(2027, 12, 9, 15, 0), None),
        # One change in the span (Moscow left +04 for good in October 2014): the time before it needs an offset too.
        ("Europe/Moscow", dt.datetime(2014, 3, 1, 12, 0), dt.datetime(2014, 3, 1, 8, 0, tzinfo=dt.UTC)),
        ("Europe/Moscow", dt.datetime(2014, 12, 1, 12, 0), dt.datetime(2014, 12, 1, 9, 0, tzinfo=dt.UTC)),
    ],
)
def test_irregular_zones_get_one_observance_per_change_outside_a_rule_and_still_read_right(
    app, icaljs, zone, wall_clock, instant
):
    start = wall_clock.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
    if instant is not None:
        assert start == instant
    ics = ical.calendar_bytes([(_stand_in("Meeting", zone, start), STAND_IN_OPTIONS)])
    assert_raw_form(ics)
    for parser, found in zone_rules(zone, wall_clock.year, wall_clock.year):
        assert len(found) >= 2 and all(o["rdates"] == 0 for o in found), parser
    for parser, calendar in read_all(ics):
        [event] = calendar["events"]
        assert (event["start"], event["end"]) == (start, start + dt.timedelta(hours=2)), parser
    assert icaljs(ics)[0]["start"] == start


def test_no_rdate_in_a_feed_with_many_zones(client, make_meeting):
    for n, zone in enumerate(
        [
            "Europe/London",
            "Africa/Casablanca",
            "Asia/Gaza",
            "America/Sao_Paulo",
            "Pacific/Chatham",
            "Asia/Tehran",
            "Europe/Dublin",
        ]
    ):
        make_meeting(title=f"In {zone}", timezone=zone, start=dt.datetime(YEAR, 2 + n, 9, 12, 0, tzinfo=dt.UTC))
    ics = client.get("/calendar.ics").data
    assert_raw_form(ics)
    for parser, calendar in read_all(ics):
        for event in calendar["events"]:
            meeting = db.session.scalar(sa.select(Meeting).where(Meeting.uid == event["uid"]))
            assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), (parser, meeting.timezone)


# Zones whose rules changed, and files mixing years -------------------------------------------------------


def _wall(zone: str, *fields: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold).astimezone(dt.UTC)


SPRING = last_sunday(YEAR, 3)
# (zone, start as a UTC instant, length, the UTC instant the start must be read as)
ACROSS_THE_YEARS = [
    ("Europe/London", _wall("Europe/London", YEAR, 3, 9, 15), 2, dt.datetime(YEAR, 3, 9, 15, tzinfo=dt.UTC)),
    ("Europe/London", _wall("Europe/London", YEAR, 6, 9, 15), 2, dt.datetime(YEAR, 6, 9, 14, tzinfo=dt.UTC)),
    # From 23:00 GMT on the Saturday to 03:00 BST on the Sunday the clocks go forward: three hours.
    (
        "Europe/London",
        dt.datetime.combine(SPRING - dt.timedelta(days=1), dt.time(23), tzinfo=dt.UTC),
        3,
        dt.datetime.combine(SPRING - dt.timedelta(days=1), dt.time(23), tzinfo=dt.UTC),
    ),
    ("Europe/London", _wall("Europe/London", 2012, 5, 1, 10), 2, dt.datetime(2012, 5, 1, 9, tzinfo=dt.UTC)),
    ("Europe/London", _wall("Europe/London", YEAR + 1, 1, 12, 15), 2, dt.datetime(YEAR + 1, 1, 12, 15, tzinfo=dt.UTC)),
    # Sao Paulo kept summer time until February 2019 and has had none since.
    ("America/Sao_Paulo", _wall("America/Sao_Paulo", 2018, 12, 1, 12), 2, dt.datetime(2018, 12, 1, 14, tzinfo=dt.UTC)),
    ("America/Sao_Paulo", _wall("America/Sao_Paulo", 2018, 6, 1, 12), 2, dt.datetime(2018, 6, 1, 15, tzinfo=dt.UTC)),
    ("America/Sao_Paulo", _wall("America/Sao_Paulo", 2020, 12, 1, 12), 2, dt.datetime(2020, 12, 1, 15, tzinfo=dt.UTC)),
    ("America/Sao_Paulo", _wall("America/Sao_Paulo", YEAR, 1, 9, 12), 2, dt.datetime(YEAR, 1, 9, 15, tzinfo=dt.UTC)),
    # Moscow: summer time until 2010, +04 all year from March 2011, +03 from October 2014.
    ("Europe/Moscow", _wall("Europe/Moscow", 2010, 7, 1, 12), 2, dt.datetime(2010, 7, 1, 8, tzinfo=dt.UTC)),
    ("Europe/Moscow", _wall("Europe/Moscow", 2010, 12, 1, 12), 2, dt.datetime(2010, 12, 1, 9, tzinfo=dt.UTC)),
    ("Europe/Moscow", _wall("Europe/Moscow", 2012, 1, 10, 12), 2, dt.datetime(2012, 1, 10, 8, tzinfo=dt.UTC)),
    ("Europe/Moscow", _wall("Europe/Moscow", 2012, 7, 1, 12), 2, dt.datetime(2012, 7, 1, 8, tzinfo=dt.UTC)),
    ("Europe/Moscow", _wall("Europe/Moscow", 2015, 7, 1, 12), 2, dt.datetime(2015, 7, 1, 9, tzinfo=dt.UTC)),
    ("America/New_York", _wall("America/New_York", YEAR, 3, 20, 10), 2, dt.datetime(YEAR, 3, 20, 14, tzinfo=dt.UTC)),
    ("America/New_York", _wall("America/New_York", 2006, 3, 20, 10), 2, dt.datetime(2006, 3, 20, 15, tzinfo=dt.UTC)),
    ("Australia/Sydney", _wall("Australia/Sydney", YEAR, 1, 9, 15), 2, dt.datetime(YEAR, 1, 9, 4, tzinfo=dt.UTC)),
    ("Australia/Sydney", _wall("Australia/Sydney", YEAR, 6, 9, 15), 2, dt.datetime(YEAR, 6, 9, 5, tzinfo=dt.UTC)),
    ("Asia/Kolkata", _wall("Asia/Kolkata", YEAR, 6, 9, 15), 2, dt.datetime(YEAR, 6, 9, 9, 30, tzinfo=dt.UTC)),
    ("Asia/Kolkata", _wall("Asia/Kolkata", 2012, 6, 9, 15), 2, dt.datetime(2012, 6, 9, 9, 30, tzinfo=dt.UTC)),
    ("Europe/Dublin", _wall("Europe/Dublin", YEAR, 1, 9, 15), 2, dt.datetime(YEAR, 1, 9, 15, tzinfo=dt.UTC)),
    ("Europe/Dublin", _wall("Europe/Dublin", YEAR, 7, 9, 15), 2, dt.datetime(YEAR, 7, 9, 14, tzinfo=dt.UTC)),
]


def test_zones_whose_rules_changed_read_alike_in_every_parser_alone_and_in_one_file_across_years():
    meetings = []
    for n, (zone, start, hours, expected) in enumerate(ACROSS_THE_YEARS):
        assert start == expected, (zone, start)
        meeting = _stand_in(f"m{n}", zone, start)
        meeting.ends_at = start + dt.timedelta(hours=hours)
        meetings.append(meeting)
    alone = [ical.calendar_bytes([(m, STAND_IN_OPTIONS)]) for m in meetings]
    # As the feeds are built: a name, a refresh interval, one VTIMEZONE a zone for all of its years.
    together = ical.calendar_bytes([(m, STAND_IN_OPTIONS) for m in meetings], name=NETWORK, refresh=True)
    for ics in [*alone, together]:
        assert_raw_form(ics)
    parsed = read_many([*alone, together])
    for meeting, readings in zip(meetings, parsed[:-1], strict=True):
        for parser, calendar in readings:
            [event] = calendar["events"]
            assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), (
                parser,
                meeting.timezone,
                meeting.starts_at,
            )
            assert event["start_tzid"] == written_zone(meeting, meeting.timezone), parser
    for parser, calendar in parsed[-1]:
        events = by_uid(calendar)
        for meeting in meetings:
            event = events[meeting.uid]
            assert (event["start"], event["end"]) == (meeting.starts_at, meeting.ends_at), (
                parser,
                meeting.timezone,
                meeting.starts_at,
            )
    assert together.count(b"BEGIN:VTIMEZONE") == len({m.timezone for m in meetings})


def _changes_at(tz: ZoneInfo, wall_clock: dt.datetime, before: dt.timedelta, after: dt.timedelta) -> bool:
    """Whether the zone changed from `before` to `after` at this wall-clock time (read on the clock before)."""
    instant = (wall_clock - before).replace(tzinfo=dt.UTC)
    return (instant - dt.timedelta(seconds=1)).astimezone(tz).utcoffset() == before and instant.astimezone(
        tz
    ).utcoffset() == after


def _offset_value(text: str) -> dt.timedelta:
    sign = -1 if text.startswith("-") else 1
    return sign * dt.timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


@pytest.mark.parametrize(
    ("zone", "first_year", "last_year"),
    [
        ("Europe/London", 2012, YEAR + 1),
        ("America/Sao_Paulo", 2012, YEAR),
        ("Europe/Moscow", 2009, 2016),
        ("America/New_York", 2005, YEAR),
        ("Australia/Sydney", 2006, YEAR),
        ("Europe/Dublin", YEAR, YEAR),
        ("Africa/Casablanca", 2010, YEAR),
        ("Asia/Tehran", 2020, YEAR),
        ("America/Santiago", 2010, YEAR),
    ],
)
def test_every_observance_is_a_change_the_zone_really_made(zone, first_year, last_year):
    """Each observance starts at a real change with its offsets, and an RRULE names only real changes: every
    year of its period, up to UNTIL when the rule has ended, and with no UNTIL only when it still holds."""
    from dateutil.rrule import rrulestr

    tz = ZoneInfo(zone)
    meetings = [
        _stand_in(str(year), zone, dt.datetime(year, 6, 1, 12, tzinfo=dt.UTC)) for year in (first_year, last_year)
    ]
    getattr(vobject.icalendar, "__tzidMap").clear()
    ics = ical.calendar_bytes([(m, STAND_IN_OPTIONS) for m in meetings])
    [component] = vobject.readOne(ics.decode("utf-8")).contents["vtimezone"]
    horizon = dt.datetime(last_year + 2, 1, 1)
    for kind in ("standard", "daylight"):
        for o in component.contents.get(kind, []):
            before, after = (_offset_value(o.tzoffsetfrom.value), _offset_value(o.tzoffsetto.value))
            starts = [o.dtstart.value]
            if "rrule" in o.contents:
                rule = rrulestr(o.rrule.value, dtstart=o.dtstart.value, ignoretz=True)
                starts = list(rule.between(o.dtstart.value, horizon, inc=True))
                if "UNTIL" in o.rrule.value:
                    # The rule had really ended: where it would have named a change the year after, there was none.
                    last = starts[-1]
                    assert last.year <= last_year + 1 and rule.after(last) is None, (zone, o.rrule.value)
                    unbounded = re.sub(r"UNTIL=[^;]+;?", "", o.rrule.value).rstrip(";")
                    predicted = rrulestr(unbounded, dtstart=o.dtstart.value, ignoretz=True).after(last)
                    # (Moscow's change of March 2011 had the offsets of its summer time, but became standard time.)
                    assert not (
                        _changes_at(tz, predicted, before, after)
                        and (predicted - before).replace(tzinfo=dt.UTC).astimezone(tz).tzname() == o.tzname.value
                    ), (zone, o.rrule.value)
                else:
                    assert starts[-1].year == last_year + 1, (zone, o.rrule.value)
            if o.dtstart.value.year == 1970 and before == after:
                continue  # the offset in force since 1970, where nothing changed after it until the meetings
            for start in starts:
                assert _changes_at(tz, start, before, after), (zone, start)


# Text read back as it was written ----------------------------------------------------------------------

ESCAPES = "\\N\\n\\;\\,\\\\;,:\"'^ \t\u00e9\u20ac\U0001f600"
# U+FEFF is left out: vobject drops it where it starts a line (as a byte order mark).
PIECE = (
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufeff")
    | st.sampled_from(ESCAPES)
    | st.sampled_from(["\\N", "\\n"])
)
ONE_LINE = st.lists(PIECE, max_size=60).map("".join)
LINES = st.lists(PIECE | st.sampled_from(["\r\n", "\n", "\r"]), max_size=150).map("".join)


def _visible(text: str) -> str:
    """Line endings as every parser gives them back: TEXT has one escape, \\n, for all three kinds."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Each example is one file of many meetings, read by one node run a parser. Shrinking, which would run node for
# every attempt, is left out: a failure shows the whole file's cases. As many examples as the profile asks for.
@pytest.mark.slow
@settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(
        st.tuples(ONE_LINE.filter(str.strip), ONE_LINE, ONE_LINE, LINES, ONE_LINE.filter(str.strip)),
        min_size=1,
        max_size=25,
    )
)
def test_any_text_reads_back_as_written_with_every_parser(cases):
    """Title, theme, address and a cancellation reason (DESCRIPTION holds the last three), and member names in
    the ORGANIZER's CN parameter, in one calendar file read by vobject, ical.js and ts-ics. (An invitation's ATTENDEE
    is written with the same CN quoting: test_invitations compares it with icalendar's.)"""
    # ts-ics finds components by searching the whole text for BEGIN:/END: markers, even inside a value.
    assume(not any(marker in "".join(map(str, cases)) for marker in ("BEGIN:", "END:")))
    events = []
    for n, (title, theme, location, reason, name) in enumerate(cases):
        meeting = _stand_in(title, "Europe/London", dt.datetime(YEAR, 3, 9, 15, tzinfo=dt.UTC))
        meeting.uid = f"text-{n}@test"
        meeting.theme, meeting.location = theme, location
        meeting.is_cancelled, meeting.cancel_reason = bool(reason), reason
        options = ical.EventOptions(
            url="https://kxn.test/m",
            organizer_email="calendar@kxn.test",
            organizer_name=name,
        )
        events.append((meeting, options))
    ics = ical.calendar_bytes(events, method="REQUEST", name=cases[0][0], description=cases[0][3])
    assert_raw_form(ics)
    for parser, calendar in read_many([ics])[0]:
        found = by_uid(calendar)
        if parser == "vobject":  # ical.js (NAME) and ts-ics (X-WR-CALNAME) give the value still escaped
            assert calendar["name"] == calendar["x_wr_calname"] == cases[0][0], parser
        for meeting, options in events:
            event = found[meeting.uid]
            assert event["summary"] == meeting.title, parser
            assert event["location"] == ical.location_text(meeting, include_join_link=False), parser
            assert event["description"] == _visible(
                ical.description_text(meeting, options.url, include_join_link=False)
            ), parser
            assert event["organizer"]["cn"] == ical.display_name(options.organizer_name), parser


def _icalendar_event(meeting, options: ical.EventOptions) -> bytes:
    """The VEVENT as the icalendar library writes it from its own objects: what ical.event_bytes() must equal."""
    zone = ZoneInfo(meeting.timezone)
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", options.dtstamp.astimezone(dt.UTC).replace(microsecond=0))
    event.add("dtstart", ical.event_time(meeting.starts_at, zone))
    event.add("dtend", ical.event_time(meeting.ends_at, zone))
    event.add("summary", ical.Text(meeting.title))
    description = ical.description_text(
        meeting, options.url, include_join_link=options.include_join_link, extra=options.extra_description
    )
    event.add("description", ical.Text(description))
    event.add("location", ical.Text(ical.location_text(meeting, include_join_link=options.include_join_link)))
    event.add("url", options.url)
    event.add("status", options.status or ("CANCELLED" if meeting.is_cancelled else "CONFIRMED"))
    event.add("transp", "OPAQUE")
    event.add("last-modified", meeting.updated_at.astimezone(dt.UTC).replace(microsecond=0))
    organizer = vCalAddress(f"mailto:{options.organizer_email}")
    organizer.params["CN"] = vText(ical.display_name(options.organizer_name))
    event.add("organizer", organizer)
    return event.to_ical()


@given(
    title=ONE_LINE.filter(str.strip),
    theme=ONE_LINE,
    location=ONE_LINE,
    reason=LINES,
    name=ONE_LINE | st.text(alphabet="a^\\", min_size=60, max_size=200),
    extra=LINES,
    zone=st.sampled_from(["Europe/London", "America/Argentina/Buenos_Aires", "Asia/Kolkata", "UTC"]),
    start=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2060, 1, 1), timezones=st.just(dt.UTC))
    | st.sampled_from(
        [dt.datetime(2031, 3, 30, 0, 30, tzinfo=dt.UTC), dt.datetime(2031, 10, 26, 0, 30, tzinfo=dt.UTC)]
    ),
    join=st.booleans(),
    sequence=st.integers(0, 10_000),
)
def test_each_event_is_written_as_icalendar_writes_it(
    title, theme, location, reason, name, extra, zone, start, join, sequence
):
    """event_bytes() writes the lines itself, for speed: byte for byte what icalendar's objects give, folding,
    escapes, the order of properties and UTC near a change of offset included."""
    meeting = _stand_in(title, zone, start)
    meeting.uid = "0f8b1c2e-7d4a-4c1b-9e3f-5a6b7c8d9e0f@kxn-meetings"
    meeting.theme, meeting.location, meeting.sequence = theme, location, sequence
    meeting.join_url = "https://meet.example.org/kxn?pwd=a;b,c"
    meeting.is_cancelled, meeting.cancel_reason = bool(reason.strip()), reason
    meeting.agenda_items = [
        SimpleNamespace(start_time=dt.time(15), title=title, speaker_name=name, speaker_organisation=theme)
    ]
    options = ical.EventOptions(
        url="https://kxn.test/meetings/m",
        organizer_email="calendar+abc@kxn.test",
        organizer_name=name,
        include_join_link=join,
        dtstamp=start - dt.timedelta(days=3, microseconds=5),
        extra_description=extra,
    )
    assert ical.event_bytes(meeting, options) == _icalendar_event(meeting, options)


def test_a_backslash_before_n_is_not_a_line_break(client, make_meeting):
    meeting = make_meeting(title="Files on C:\\New and \\N", location="Room \\n2; floor 3, east", join_url="")
    ics = client.get(f"/meetings/{meeting.slug}/calendar.ics").data
    assert b"SUMMARY:Files on C:\\\\New and \\\\N\r\n" in unfolded(ics)
    for parser, calendar in read_all(ics):
        [event] = calendar["events"]
        assert event["summary"] == "Files on C:\\New and \\N", parser
        assert event["location"] == "Room \\n2; floor 3, east", parser
        assert "Where: Room \\n2; floor 3, east" in event["description"], parser


# Her own copy of a meeting's file ----------------------------------------------------------------------------------


def _personal_ics(client, meeting: Meeting, member):
    from kxn_meetings.services import invitations as invitation_service

    token = invitation_service.personal_link(meeting, member).token
    db.session.commit()
    return client.get(f"/meetings/{meeting.slug}/answer/{token}/calendar.ics")


def test_a_member_going_gets_the_join_link_in_her_own_copy_of_the_file(
    client, make_meeting, make_member, member, sign_in
):
    """Her emailed invitation carries the join link, and the file from her page is the same event (same UID): a
    calendar importing it must not lose the link. Everyone else's file, and any shared cache's, never has it."""
    meeting = make_meeting(title="Youth engagement", join_url=JOIN, capacity=1)
    make_rsvp(meeting, member, Answer.GOING)
    waiting, maybe = make_member(), make_member()
    make_rsvp(meeting, waiting, Answer.GOING, waiting=1)
    make_rsvp(meeting, maybe, Answer.MAYBE)
    path = f"/meetings/{meeting.slug}/calendar.ics"
    shared = client.get(path)
    assert shared.headers["Cache-Control"] == "public, max-age=300" and JOIN.encode() not in unfolded(shared.data)
    own = _personal_ics(client, meeting, member)
    assert own.status_code == 200 and own.headers["Cache-Control"] == "private, no-cache"
    for parser, calendar in read_all(own.data):
        [event] = calendar["events"]
        assert JOIN in event["location"] and JOIN in event["description"], parser
        assert event["uid"] == meeting.uid, parser
    for someone in (waiting, maybe):
        assert JOIN.encode() not in unfolded(_personal_ics(client, meeting, someone).data)
    sign_in(client, member)
    signed_in = client.get(path)
    assert signed_in.headers["Cache-Control"] == "private, no-cache" and JOIN.encode() in unfolded(signed_in.data)
    without_link = make_meeting(title="In person only", join_url="", location="Police Foundation, London")
    make_rsvp(without_link, member, Answer.GOING)
    shared_again = client.get(f"/meetings/{without_link.slug}/calendar.ics")
    assert shared_again.headers["Cache-Control"] == "public, max-age=300", "no link: nothing of hers to keep private"
    sign_in(client, maybe)
    assert JOIN.encode() not in unfolded(client.get(path).data)
    meeting.status = MeetingStatus.CANCELLED
    db.session.commit()
    assert JOIN.encode() not in unfolded(_personal_ics(client, meeting, member).data)


def test_her_page_offers_web_calendars_the_join_link_only_when_it_shows_it(client, make_meeting, make_member, member):
    from kxn_meetings.services import invitations as invitation_service

    meeting = make_meeting(title="Youth engagement", join_url=JOIN)
    maybe = make_member()
    make_rsvp(meeting, member, Answer.GOING)
    make_rsvp(meeting, maybe, Answer.MAYBE)
    pages = {}
    for someone in (member, maybe):
        token = invitation_service.personal_link(meeting, someone).token
        db.session.commit()
        pages[someone.id] = html.unescape(client.get(f"/meetings/{meeting.slug}/answer/{token}").get_data(as_text=True))
    google = re.compile(r'href="(https://calendar\.google\.com/[^"]+)"')
    going_link = parse_qs(urlsplit(google.search(pages[member.id]).group(1)).query)
    maybe_link = parse_qs(urlsplit(google.search(pages[maybe.id]).group(1)).query)
    assert JOIN in going_link["location"][0]
    assert JOIN not in maybe_link["location"][0] and JOIN not in pages[maybe.id]
