"""Whether a page's cost grows with the data: every public page timed in process on a small database (10 meetings,
50 members, 5 published notes) and on a large one (500 meetings, 5,000 members, 3,000 RSVPs on one meeting, 250
published notes), and the network calendar feed built cold for 500 meetings.

Targets: each page within 1.5x (or 1 ms) of its small-database time; the feed's cold build <= 100 ms. Pages are
rendered every time (no visitor cache, the feed's version read each time) so that the work itself is measured, and
both databases are timed in the same rounds, alternately.
SQLite; PostgreSQL too with KXN_BENCH_DATABASES=sqlite,postgresql. Prints PASS/MISS for each and exits 1 on a
miss.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as harness

SMALL = {"meetings": 10, "members": 50, "answers": 40, "notes": 5}
LARGE = {"meetings": 500, "members": 5000, "answers": 3000, "notes": 250}
RUNS = 31
RATIO, SLACK_MS, FEED_MS = 1.5, 1.0, 100.0
DESCRIPTION = "Practitioners from **police and health** on what works with young adults."


def fill(url: str, size: dict[str, int]) -> dict[str, str]:
    """Bulk-insert the data; returns the paths to time."""
    from kxn_meetings.extensions import db
    from kxn_meetings.models.meetings import AgendaItem, Meeting, MeetingSeries, MeetingStatus, Visibility
    from kxn_meetings.models.members import Member
    from kxn_meetings.models.notes import MeetingNotes, NoteRevision, NotesStatus
    from kxn_meetings.models.rsvps import Answer, Rsvp
    from kxn_meetings.rendering import render_markdown
    from kxn_meetings.services import auth as auth_service

    app = harness.make_app(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with app.app_context():
        series = MeetingSeries(name="KXN", slug="kxn")
        db.session.add(series)
        db.session.flush()
        count = size["meetings"]
        # Spread over the calendar feed's half-year window (and a little ahead), so the feed carries every one.
        step = min(dt.timedelta(days=7), dt.timedelta(days=170) / count)
        starts = [now + step * (n - count + 5) for n in range(count)]
        # A bulk insert bypasses the ORM event that renders a description when it is set.
        description_html = render_markdown(DESCRIPTION)
        db.session.execute(
            insert(Meeting),
            [
                {
                    "series_id": series.id,
                    "slug": f"meeting-{n}",
                    "title": f"Meeting {n}: policing young adults",
                    "theme": "What works",
                    "description": DESCRIPTION,
                    "description_html": description_html,
                    "starts_at": start,
                    "ends_at": start + dt.timedelta(hours=2),
                    "timezone": "Europe/London",
                    "join_url": "https://meet.example.org/kxn",
                    "status": MeetingStatus.SCHEDULED,
                    "visibility": Visibility.PUBLIC,
                    "uid": f"meeting-{n}@kxn.test",
                    "announced": "{}",
                    "created_at": now,
                    "updated_at": now,
                }
                for n, start in enumerate(starts)
            ],
        )
        ids = dict(db.session.execute(select(Meeting.slug, Meeting.id)).all())
        db.session.execute(
            insert(AgendaItem),
            [
                {"meeting_id": mid, "position": p, "title": f"Talk {p}", "speaker_name": f"Speaker {p}"}
                for mid in ids.values()
                for p in range(3)
            ],
        )
        db.session.execute(
            insert(Member),
            [
                {
                    "name": f"Member {n}",
                    "email": f"member{n}@example.org",
                    "organisation": f"Trust {n % 40}",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(size["members"])
            ],
        )
        member_ids = list(db.session.scalars(select(Member.id).order_by(Member.id)))
        upcoming = ids[f"meeting-{count - 3}"]
        db.session.execute(
            insert(Rsvp),
            [
                {
                    "meeting_id": upcoming,
                    "member_id": mid,
                    "answer": (Answer.GOING, Answer.MAYBE, Answer.DECLINED)[n % 3],
                    "answered_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, mid in enumerate(member_ids[: size["answers"]])
            ],
        )
        past = [ids[f"meeting-{n}"] for n in range(min(size["notes"], count - 5))]
        for n, mid in enumerate(past):
            notes = MeetingNotes(
                meeting_id=mid, status=NotesStatus.PUBLISHED, visibility=Visibility.PUBLIC, published_at=now
            )
            db.session.add(notes)
            db.session.flush()
            revision = NoteRevision(
                notes_id=notes.id,
                number=1,
                title=f"Notes {n}",
                summary="What we learned.",
                body_markdown="## Lessons\n\nMany.",
                body_html="<h2>Lessons</h2><p>Many.</p>",
            )
            db.session.add(revision)
            db.session.flush()
            db.session.execute(
                update(MeetingNotes).where(MeetingNotes.id == notes.id).values(current_revision_id=revision.id)
            )
        session = auth_service.start_session(db.session.get(Member, member_ids[0]))
        db.session.commit()
        cookie = app.session_interface.get_signing_serializer(app).dumps({"_user_id": session.id, "_fresh": True})
        db.engine.dispose()
    return {
        "cookie": cookie,
        "upcoming": f"meeting-{count - 3}",
        "notes": "meeting-0",
    }


def pages(url: str, site: dict[str, str]):
    """The app of one database and its pages, each as (client, path)."""
    app = harness.make_app(url)
    app.config.update(PUBLIC_PAGE_SECONDS=0, FEED_VERSION_SECONDS=0)
    visitor, member = app.test_client(), app.test_client()
    member.set_cookie(app.config["SESSION_COOKIE_NAME"], site["cookie"], domain="localhost")
    return app, {
        "home": (visitor, "/"),
        "meeting page (visitor)": (visitor, f"/meetings/{site['upcoming']}"),
        "meeting page (member)": (member, f"/meetings/{site['upcoming']}"),
        "a meeting's .ics": (visitor, f"/meetings/{site['upcoming']}/calendar.ics"),
        "notes archive": (visitor, "/notes"),
        "published notes": (visitor, f"/meetings/{site['notes']}/notes"),
        "notes Atom feed": (visitor, "/notes/feed.atom"),
        "network feed": (visitor, "/calendar.ics"),
    }


def time_pages(small: dict, large: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Each page's median on both databases, measured in the same rounds (small then large, then the other way
    round), so that a machine that speeds up or slows down during the run moves both alike."""
    runs: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
    for name in small:
        for client, path in (small[name], large[name]):
            for _ in range(3):
                assert client.get(path).status_code == 200, (name, path)
        for n in range(RUNS):
            order = (("small", small), ("large", large)) if n % 2 == 0 else (("large", large), ("small", small))
            for label, site in order:
                client, path = site[name]
                started = time.perf_counter()
                client.get(path)
                runs[label].setdefault(name, []).append((time.perf_counter() - started) * 1000)
    medians = {
        label: {name: statistics.median(times) for name, times in by_page.items()} for label, by_page in runs.items()
    }
    return medians["small"], medians["large"]


def cold_feed_build(app) -> tuple[float, int]:
    from kxn_meetings.extensions import db
    from kxn_meetings.services import calendars

    with app.app_context():
        builds = []
        for _ in range(5):
            db.session.expire_all()
            started = time.perf_counter()
            in_feed = calendars.public_feed_meetings()
            calendars.public_feed_bytes(in_feed)
            builds.append((time.perf_counter() - started) * 1000)
        db.engine.dispose()
    return min(builds), len(in_feed)


def run(kind: str) -> tuple[list[str], bool]:
    from kxn_meetings.extensions import db

    with harness.database(kind) as small_url, harness.database(kind) as large_url:
        small_app, small_pages = pages(small_url, fill(small_url, SMALL))
        large_app, large_pages = pages(large_url, fill(large_url, LARGE))
        small, large = time_pages(small_pages, large_pages)
        feed_ms, in_feed = cold_feed_build(large_app)
        with small_app.app_context():
            db.engine.dispose()
    lines, missed = [], False
    for name in small:
        ok = large[name] <= max(small[name] * RATIO, small[name] + SLACK_MS)
        missed |= not ok
        lines.append(
            f"[{kind}] {name}: {small[name]:.1f} ms -> {large[name]:.1f} ms (x{large[name] / small[name]:.2f}; "
            f"target <= x{RATIO:g} or +{SLACK_MS:g} ms) {'PASS' if ok else 'MISS'}"
        )
    missed |= feed_ms > FEED_MS
    lines.append(
        f"[{kind}] network feed, cold build ({in_feed} of {LARGE['meetings']} meetings in its window): "
        f"{feed_ms:.0f} ms "
        f"(target <= {FEED_MS:g} ms) {harness.verdict(feed_ms, FEED_MS, higher_is_better=False)}"
    )
    return lines, missed


if __name__ == "__main__":
    harness.report(
        f"scaling: small {SMALL} against large {LARGE}; median of {RUNS} requests in process",
        run,
        os.environ.get("KXN_BENCH_DATABASES", "sqlite").split(","),
    )
