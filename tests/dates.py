"""The network's sample dates, always ahead of the day the suite runs.

Meetings on 9 March (London on GMT) and 9 June (London on BST) of the first year from 2027 whose 9 March is
more than a week away, with the words people read for them ("Tuesday 9 March 2027").
"""

from __future__ import annotations

import datetime as dt


def programme_year(today: dt.date | None = None) -> int:
    today = today or dt.date.today()
    year = 2027
    while dt.date(year, 3, 9) <= today + dt.timedelta(days=7):
        year += 1
    return year


YEAR = programme_year()
GMT_START = dt.datetime(YEAR, 3, 9, 15, 0, tzinfo=dt.UTC)  # 15:00 in London, GMT
BST_START = dt.datetime(YEAR, 6, 9, 14, 0, tzinfo=dt.UTC)  # 15:00 in London, BST


def long_day(day: dt.date) -> str:
    """'Tuesday 9 March 2027'."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_day(day: dt.date) -> str:
    """'Tue 9 Mar 2027'."""
    return f"{day:%a} {day.day} {day:%b %Y}"


MARCH_DAY = long_day(GMT_START.date())
JUNE_DAY = long_day(BST_START.date())
