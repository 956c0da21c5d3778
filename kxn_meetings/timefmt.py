"""Dates and times as people read them, always in the meeting's own zone with the zone named."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def _clock(value: dt.datetime, *, with_suffix: bool = True) -> str:
    hour = value.hour % 12 or 12
    text = f"{hour}" if value.minute == 0 else f"{hour}:{value.minute:02d}"
    if with_suffix:
        text += "am" if value.hour < 12 else "pm"
    return text


def day(value: dt.datetime) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def short_day(value: dt.datetime) -> str:
    return f"{value:%a} {value.day} {value:%b %Y}"


def time_range(start: dt.datetime, end: dt.datetime) -> str:
    """'3–5pm', '11am–12:30pm', '9:30–11am'. Both in the same zone already."""
    same_half = (start.hour < 12) == (end.hour < 12)
    return f"{_clock(start, with_suffix=not same_half)}\u2013{_clock(end)}"


def zone_abbreviation(value: dt.datetime) -> str:
    return value.tzname() or str(value.tzinfo)


def when(starts_at: dt.datetime, ends_at: dt.datetime, zone: str | ZoneInfo) -> str:
    """'Tuesday 9 March 2027, 3–5pm GMT'."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    if start.date() == end.date():
        return f"{day(start)}, {time_range(start, end)} {zone_abbreviation(start)}"
    return f"{day(start)}, {_clock(start)} {zone_abbreviation(start)} \u2013 {day(end)}, {_clock(end)} {zone_abbreviation(end)}"


def instant(value: dt.datetime | None, zone: str | ZoneInfo = "Europe/London") -> str:
    """'9 Mar 2027, 3:05pm GMT' for timestamps shown to people."""
    if value is None:
        return ""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    local = value.astimezone(tz)
    return f"{local.day} {local:%b %Y}, {_clock(local)} {zone_abbreviation(local)}"


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
