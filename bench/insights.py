"""The Insights page with years of history, under the README's gunicorn configuration, loaded with wrk and given as
a ratio to a bare Flask route served the same way in the same run.

For each database (SQLite, PostgreSQL): 120 past meetings over a year, 2,000 members with sectors and regions,
20,000 RSVPs (two in three attended), 1,200 feedback answers and 360 actions. The page counts them in a fixed set
of GROUP BY queries for every request; the target is at least 5 % of the bare route's requests a second.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as harness

MEETINGS = 120
MEMBERS = 2000
RSVPS_PER_MEETING = 2000 * 10 // MEETINGS  # 166, and 80 meetings get one more: 20,000 in all
CONNECTIONS = 8
SECONDS = 3
ROUNDS = 3
SHARE = 0.05


def seed(url: str) -> str:
    """The history, and the session cookie of an organiser."""
    from sqlalchemy import insert, select

    from kxn_meetings.extensions import db
    from kxn_meetings.models import ActionItem, ActionStatus, Answer, MeetingFeedback, Member, Region, Rsvp, Sector
    from kxn_meetings.services import auth as auth_service

    sectors, regions = list(Sector), list(Region)
    app = harness.make_app(url)
    with app.app_context():
        db.session.execute(
            insert(Member),
            [
                {
                    "name": f"Member {i}",
                    "email": f"member{i}@example.org",
                    "organisation": f"Organisation {i % 150}",
                    "sector": sectors[i % len(sectors)] if i % 9 else None,
                    "region": regions[i % len(regions)] if i % 7 else None,
                    "is_organiser": i == 0,
                }
                for i in range(MEMBERS)
            ],
        )
        ids = list(db.session.scalars(select(Member.id).order_by(Member.id)))
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        rsvps = 0
        for k in range(MEETINGS):
            meeting = harness.sample_meeting(f"past-{k}", now - dt.timedelta(days=3 * k + 2), title=f"Meeting {k}")
            db.session.add(meeting)
            db.session.flush()
            count = RSVPS_PER_MEETING + (1 if k < MEMBERS * 10 - RSVPS_PER_MEETING * MEETINGS else 0)
            chosen = [ids[(k * 53 + j) % MEMBERS] for j in range(count)]
            db.session.execute(
                insert(Rsvp),
                [
                    {"meeting_id": meeting.id, "member_id": m, "answer": Answer.GOING, "attended": j % 3 != 0}
                    for j, m in enumerate(chosen)
                ],
            )
            rsvps += count
            db.session.execute(
                insert(MeetingFeedback),
                [
                    {"meeting_id": meeting.id, "member_id": m, "score": 1 + j % 5, "future_topics": f"Theme {j % 4}"}
                    for j, m in enumerate(chosen[1:31:3])
                ],
            )
            db.session.add_all(
                ActionItem(
                    meeting_id=meeting.id, text=f"Action {n}", status=ActionStatus.DONE if n else ActionStatus.OPEN
                )
                for n in range(3)
            )
        assert rsvps == MEMBERS * 10, rsvps
        organiser = db.session.get(Member, ids[0])
        session = auth_service.start_session(organiser)
        db.session.commit()
        cookie = app.session_interface.get_signing_serializer(app).dumps({"_user_id": session.id, "_fresh": True})
        db.engine.dispose()
    return f"{app.config['SESSION_COOKIE_NAME']}={cookie}"


def run(kind: str) -> tuple[list[str], bool]:
    with harness.database(kind) as url:
        cookie = seed(url)
        with harness.app_and_bare_route(url) as (bare, app):
            page = {"path": "/insights", "headers": {"Cookie": cookie}}
            results = harness.best_of_rounds(
                bare, app, {"insights": page}, rounds=ROUNDS, seconds=SECONDS, connections=CONNECTIONS
            )
    best_bare, best = results["bare"], results["insights"]
    share = best.rps / best_bare.rps
    lines = [
        f"[{kind}] bare route: {best_bare.rps:.0f} req/s",
        f"[{kind}] insights page: {best.rps:.1f} req/s = {share:.1%} of bare (target >= {SHARE:.0%}) "
        f"{harness.verdict(share, SHARE)}; p50 {best.p50_ms:.0f} ms, p95 {best.p95_ms:.0f} ms"
        + (f"; errors {best.errors}" if best.errors else ""),
    ]
    return lines, share < SHARE or bool(best.errors)


if __name__ == "__main__":
    harness.report(
        f"insights: {MEETINGS} meetings, {MEMBERS} members, {MEMBERS * 10:,} RSVPs; "
        + harness.wrk_rounds(ROUNDS, SECONDS, CONNECTIONS),
        run,
    )
