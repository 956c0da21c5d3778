"""The pages and files everyone asks for, under the README's gunicorn configuration, loaded with wrk (a C load
generator, so the server and not the generator is the limit) and given as ratios to a bare Flask route served the
same way in the same run.

For each database (SQLite, PostgreSQL): 300 members, a meeting with 300 RSVPs and 300 personal links, five
published notes. Each endpoint and the bare route are measured in interleaved rounds (wrk -t2 -c16), the best
round of each counting: other work on the machine only ever slows a round down. Prints every figure with
PASS/MISS against its target and exits 1 when any is missed.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as harness

MEMBERS = 300
CONNECTIONS = 16
SECONDS = 5
ROUNDS = 3
NOTES = 5


@dataclass(frozen=True)
class Site:
    slug: str
    tokens: list[str]
    member_cookie: str


@dataclass(frozen=True)
class Target:
    """An endpoint and its goals: share of the bare route's requests a second, and p95 where it has one."""

    name: str
    share: float
    p95_ms: float | None = None


TARGETS = [
    Target("meeting page (visitor)", 0.40, 25.0),
    Target("home page", 0.40),
    Target("one meeting's .ics", 0.50),
    Target("network feed 200", 0.70),
    Target("network feed 304", 0.85),
    Target("notes Atom feed", 0.50),
    Target("meeting page (signed-in member)", 0.20),
    Target("RSVP POST (personal link)", 0.10, 100.0),
]
SINGLE_P50_MS = 3.0
PEAK_MIB = 75.0


def seed(url: str) -> Site:
    from kxn_meetings.extensions import db
    from kxn_meetings.models import AgendaItem, Answer, Invitation, Member, Rsvp
    from kxn_meetings.services import auth as auth_service
    from kxn_meetings.services import notes as notes_service

    app = harness.make_app(url)
    with app.app_context():
        members = [
            Member(name=f"Member {i}", email=f"member{i}@example.org", organisation=f"Trust {i % 12}")
            for i in range(MEMBERS)
        ]
        db.session.add_all(members)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=60)
        meeting = harness.sample_meeting(
            "bench-meeting",
            start,
            title="Youth engagement, including the new children and young adult strategy",
            theme="Youth engagement",
            description="A **benchmark** meeting.",
            join_url="https://meet.example.org/kxn",
            capacity=400,
            agenda_items=[AgendaItem(position=i, title=f"Talk {i}", speaker_name=f"Speaker {i}") for i in range(6)],
        )
        db.session.add(meeting)
        db.session.flush()
        answers = [Answer.GOING, Answer.MAYBE, Answer.DECLINED]
        db.session.add_all(
            Rsvp(meeting_id=meeting.id, member_id=m.id, answer=answers[i % 3]) for i, m in enumerate(members)
        )
        tokens = [f"bench-token-{i:04d}-{harness.secrets.token_hex(8)}" for i in range(MEMBERS)]
        db.session.add_all(
            Invitation(meeting_id=meeting.id, member_id=m.id, token=t) for m, t in zip(members, tokens, strict=True)
        )
        for n in range(NOTES):
            past = harness.sample_meeting(f"past-{n}", start - dt.timedelta(days=400 - 42 * n), title=f"Past {n}")
            db.session.add(past)
            db.session.flush()
            notes = notes_service.save(
                past,
                notes_service.NotesInput(title=f"Notes {n}", summary="What we learned.", body="## Lessons\n\nMany."),
                members[0],
            ).notes
            notes_service.publish(notes, email_members=False, not_ready_confirmed=True)
        session = auth_service.start_session(members[0])
        db.session.commit()
        cookie = app.session_interface.get_signing_serializer(app).dumps({"_user_id": session.id, "_fresh": True})
        cookie_header = f"{app.config['SESSION_COOKIE_NAME']}={cookie}"
        db.engine.dispose()
    return Site("bench-meeting", tokens, cookie_header)


def rsvp_script(port: int, site: Site) -> str:
    """Lua for wrk: each thread cycles through its share of the members' personal links, each POST with the CSRF
    token of that link's form (and any cookie its page set, as a browser would send it), alternating Going and
    Maybe."""
    csrf = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
    entries = []
    session_cookie = site.member_cookie.split("=", 1)[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for token in site.tokens:
        path = f"/meetings/{site.slug}/answer/{token}"
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        match = csrf.search(body)
        cookie = set_cookie(response, session_cookie)
        if match is None:
            raise RuntimeError(f"no form on {path}: {response.status}")
        value = match.group(1) or match.group(2)
        entries.append(f"{{{harness.lua_string(path)}, {harness.lua_string(cookie)}, {harness.lua_string(value)}}}")
    conn.close()
    return (
        "local entries = {"
        + ",\n".join(entries)
        + "}\n"
        + """
local threads = 0
setup = function(thread) thread:set("id", threads); threads = threads + 1 end
local n = 0
request = function()
  n = n + 1
  local e = entries[((id or 0) + n * 2) % #entries + 1]
  local answer = (math.floor(n / #entries) % 2 == 0) and "going" or "maybe"
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  if e[2] ~= "" then headers["Cookie"] = e[2] end
  return wrk.format("POST", e[1], headers, "csrf_token=" .. e[3] .. "&answer=" .. answer)
end
"""
    )


def get_once(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One GET on a connection of its own, its body read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def set_cookie(response: http.client.HTTPResponse, name: str) -> str:
    """`name=value` of the cookie called `name` that the response set, or "" when it set none."""
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith(f"{name}="):
            return value.split(";", 1)[0]
    return ""


def feed_etag(port: int) -> str:
    return get_once(port, "/calendar.ics").getheader("ETag") or ""


def settled_cookie(port: int, path: str, cookie: str) -> str:
    """The session cookie as a browser holds it after its first page: what that page set (the CSRF token, the
    session's fingerprint) replaces what was sent, so each measured request sends what a member's browser would."""
    response = get_once(port, path, {"Cookie": cookie})
    if response.status != 200 or "private" not in (response.getheader("Cache-Control") or ""):
        raise RuntimeError(f"{path} was not a member's page: {response.status} {response.getheader('Cache-Control')}")
    return set_cookie(response, cookie.split("=", 1)[0]) or cookie


def run(kind: str) -> tuple[list[str], bool]:
    lines, missed = [], False
    with harness.database(kind) as url:
        site = seed(url)
        with harness.app_and_bare_route(url) as (bare_served, app):
            port = app.port
            post = rsvp_script(port, site)
            loads = {
                "meeting page (visitor)": {"path": f"/meetings/{site.slug}"},
                "home page": {"path": "/"},
                "one meeting's .ics": {"path": f"/meetings/{site.slug}/calendar.ics"},
                "network feed 200": {"path": "/calendar.ics"},
                "network feed 304": {"path": "/calendar.ics", "headers": {"If-None-Match": feed_etag(port)}},
                "notes Atom feed": {"path": "/notes/feed.atom"},
                "meeting page (signed-in member)": {
                    "path": f"/meetings/{site.slug}",
                    "headers": {"Cookie": settled_cookie(port, f"/meetings/{site.slug}", site.member_cookie)},
                },
                "RSVP POST (personal link)": {"path": "/", "script": post},
            }
            best = harness.best_of_rounds(
                bare_served, app, loads, rounds=ROUNDS, seconds=SECONDS, connections=CONNECTIONS
            )
            single = min(
                (
                    harness.wrk(port, f"/meetings/{site.slug}", connections=1, threads=1, seconds=SECONDS)
                    for _ in range(3)
                ),
                key=lambda m: m.p50_ms,
            )
            memory = harness.worker_peak_memory_mib(app.master)
    bare = best["bare"]
    lines.append(f"[{kind}] bare route: {bare.rps:.0f} req/s, p95 {bare.p95_ms:.1f} ms; {harness.shares(bare)}")
    page = best["meeting page (visitor)"]
    if page.rps > bare.rps:
        # Every page goes through the app's whole request handling, which the bare route skips: a page served
        # faster than it means the baseline was measured on a bad spell (a worker restarting, say), and every ratio
        # of this run would flatter the app.
        lines.append(
            f"[{kind}] bare route measured below the app's meeting page ({bare.rps:.0f} < {page.rps:.0f} req/s): "
            "the baseline is not trustworthy, so this run counts as MISS; run it again"
        )
        missed = True
    for target in TARGETS:
        result = best[target.name]
        share = result.rps / bare.rps
        text = (
            f"[{kind}] {target.name}: {result.rps:.0f} req/s = {share:.1%} of bare (target >= {target.share:.0%}) "
            f"{harness.verdict(share, target.share)}; p50 {result.p50_ms:.1f} ms, p95 {result.p95_ms:.1f} ms"
        )
        missed |= share < target.share
        if target.p95_ms is not None:
            verdict = harness.verdict(result.p95_ms, target.p95_ms, higher_is_better=False)
            text += f" (target <= {target.p95_ms:g} ms) {verdict}"
            missed |= result.p95_ms > target.p95_ms
        lines.append(text + (f"; errors {result.errors}" if result.errors else "") + f"; {harness.shares(result)}")
    lines.append(
        f"[{kind}] meeting page, 1 connection: p50 {single.p50_ms:.1f} ms (target <= {SINGLE_P50_MS:g} ms) "
        f"{harness.verdict(single.p50_ms, SINGLE_P50_MS, higher_is_better=False)}"
    )
    lines.append(
        f"[{kind}] worker peak memory: {memory:.1f} MiB (target <= {PEAK_MIB:g} MiB) "
        f"{harness.verdict(memory, PEAK_MIB, higher_is_better=False)}"
    )
    missed |= single.p50_ms > SINGLE_P50_MS or memory > PEAK_MIB
    return lines, missed


if __name__ == "__main__":
    harness.report(
        f"pages: {MEMBERS} members, a meeting with {MEMBERS} RSVPs, {NOTES} published notes; "
        + harness.wrk_rounds(ROUNDS, SECONDS, CONNECTIONS),
        run,
    )
