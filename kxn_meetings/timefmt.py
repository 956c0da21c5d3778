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


def day(value: dt.date) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def short_day(value: dt.date) -> str:
    return f"{value:%a} {value.day} {value:%b %Y}"


def time_range(start: dt.datetime, end: dt.datetime) -> str:
    """'3–5pm', '11am–12:30pm', '9:30–11am'. Both in the same zone already."""
    same_half = (start.hour < 12) == (end.hour < 12)
    return f"{_clock(start, with_suffix=not same_half)}\u2013{_clock(end)}"


def zone_abbreviation(value: dt.datetime) -> str:
    return value.tzname() or str(value.tzinfo)


def _in_zone(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """`value` on the zone's clock; left in its own (UTC, as stored) at the very ends of what a datetime holds, where
    the zone's offset would take it past year 1 or 9999."""
    try:
        return value.astimezone(tz)
    except OverflowError:
        return value


def when(starts_at: dt.datetime, ends_at: dt.datetime, zone: str | ZoneInfo) -> str:
    """'Tuesday 9 March 2027, 3–5pm GMT'."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    start, end = _in_zone(starts_at, tz), _in_zone(ends_at, tz)
    # Named at both ends when they differ, as on the night the clocks go back: 1:30am BST - 1:45am GMT.
    if start.date() == end.date() and zone_abbreviation(start) == zone_abbreviation(end):
        return f"{day(start)}, {time_range(start, end)} {zone_abbreviation(start)}"
    ends = f"{day(end)}, {_clock(end)} {zone_abbreviation(end)}"
    return f"{day(start)}, {_clock(start)} {zone_abbreviation(start)} \u2013 {ends}"


def instant(value: dt.datetime | None, zone: str | ZoneInfo = "Europe/London") -> str:
    """'9 Mar 2027, 3:05pm GMT' for timestamps shown to people."""
    if value is None:
        return ""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    local = _in_zone(value, tz)
    return f"{local.day} {local:%b %Y}, {_clock(local)} {zone_abbreviation(local)}"


def zone_place(zone: str) -> str:
    """'London time', 'New York time', 'UTC': a zone named as people say it."""
    if "/" not in zone:
        return zone
    return f"{zone.rsplit('/', 1)[1].replace('_', ' ')} time"


def clock_in_zone(value: dt.datetime, zone: str) -> str:
    """'14:05 (London time)', with the day in front when it is not today there: 'Wed 10 Mar 2027, 00:05 (London
    time)'."""
    tz = ZoneInfo(zone)
    local = _in_zone(value, tz)
    today = dt.datetime.now(dt.UTC).astimezone(tz).date()
    prefix = "" if local.date() == today else f"{short_day(local)}, "
    return f"{prefix}{local:%H:%M} ({zone_place(zone)})"


def utc_offset(value: dt.datetime) -> str:
    """'UTC+1', 'UTC+0', 'UTC+5:30', 'UTC-3'."""
    minutes = int((value.utcoffset() or dt.timedelta(0)).total_seconds()) // 60
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours}{f':{rest:02d}' if rest else ''}"


def repeated_times(day: dt.date, clock: dt.time, zone: ZoneInfo) -> list[tuple[int, str]]:
    """When the clocks go back, a wall-clock time happens twice: each as (fold, '01:30 BST (UTC+1, first)').
    Empty for a time that happens once."""
    first, second = (dt.datetime.combine(day, clock, tzinfo=zone).replace(fold=fold) for fold in (0, 1))
    # Offsets differ in a gap too (the clocks going forward), where the time does not happen at all.
    try:
        exists = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == first.replace(tzinfo=None)
    except OverflowError:  # the first or last days of the calendar, far from UTC: for the caller to refuse
        return []
    if first.utcoffset() == second.utcoffset() or not exists:
        return []
    return [
        (fold, f"{value:%H:%M} {zone_abbreviation(value)} ({utc_offset(value)}, {order})")
        for fold, value, order in ((0, first, "first"), (1, second, "second"))
    ]


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
