"""Meeting page and RSVP throughput under gunicorn, as ratios against a bare Flask route served the same way.

For each database (SQLite, PostgreSQL): 300 members, a meeting with 300 RSVPs, 16 keep-alive connections; both
servers stay up and are measured in interleaved rounds, the best round of each counting.
Targets: meeting page >= 25 % of the bare route with p95 <= 25 ms; RSVP POST >= 10 %; worker peak <= 80 MiB.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as harness

MEMBERS = 300
CONNECTIONS = 16
SECONDS = 2.0
ROUNDS = 3


def seed(url: str) -> tuple[str, list[str]]:
    from kxn_meetings.extensions import db
    from kxn_meetings.models import AgendaItem, Answer, Invitation, Member, Rsvp

    app = harness.make_app(url)
    with app.app_context():
        members = [
            Member(name=f"Member {i}", email=f"member{i}@example.org", organisation="Thames Valley Police")
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
            Invitation(meeting_id=meeting.id, member_id=m.id, token=t) for m, t in zip(members, tokens, strict=False)
        )
        db.session.commit()
        db.engine.dispose()
    return "bench-meeting", tokens


def rsvp_request(slug: str, tokens: list[str]):
    """Each connection owns its own members' personal links: fetch the form once, then POST answers."""
    state: dict[int, dict] = {}
    csrf = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')

    def prepare(conn: http.client.HTTPConnection, index: int, token: str) -> dict:
        conn.request("GET", f"/meetings/{slug}/answer/{token}")
        response = conn.getresponse()
        body = response.read()
        match = csrf.search(body)
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        return {"csrf": (match.group(1) or match.group(2)).decode(), "cookie": cookie}

    def request(conn: http.client.HTTPConnection, index: int, n: int) -> bool:
        mine = tokens[index::CONNECTIONS]
        token = mine[n % len(mine)]
        key = (index, token)
        if key not in state:
            state[key] = prepare(conn, index, token)
        s = state[key]
        body = urlencode({"csrf_token": s["csrf"], "answer": ("going", "maybe")[n // len(mine) % 2]})
        conn.request(
            "POST",
            f"/meetings/{slug}/answer/{token}",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": s["cookie"]},
        )
        response = conn.getresponse()
        response.read()
        return response.status == 302

    return request


def best(results: list[harness.Result]) -> harness.Result:
    """The round with the most requests: other work on the machine only ever slows a round down."""
    return max(results, key=lambda result: result.rps)


def run(kind: str) -> list[str]:
    lines = []
    with harness.database(kind) as url:
        slug, tokens = seed(url)
        env = harness.app_env(url)
        with (
            harness.gunicorn("bench._bare_app:app", env) as (bare_port, _),
            harness.gunicorn("kxn_meetings:create_app()", env) as (port, master),
        ):
            rounds: dict[str, list[harness.Result]] = {"bare": [], "page": [], "post": []}
            for _ in range(ROUNDS):  # interleaved, so a busy spell on the machine hits every side alike
                rounds["bare"].append(
                    harness.load(bare_port, harness.get("/"), connections=CONNECTIONS, seconds=SECONDS)
                )
                rounds["page"].append(
                    harness.load(port, harness.get(f"/meetings/{slug}"), connections=CONNECTIONS, seconds=SECONDS)
                )
                rounds["post"].append(
                    harness.load(port, rsvp_request(slug, tokens), connections=CONNECTIONS, seconds=SECONDS)
                )
            memory = harness.worker_peak_memory_mib(master)
    bare, page, post = best(rounds["bare"]), best(rounds["page"]), best(rounds["post"])
    page_ratio = page.rps / bare.rps
    post_ratio = post.rps / bare.rps
    lines.append(f"[{kind}] bare route: {bare.rps:.0f} req/s, p95 {bare.p95_ms:.1f} ms")
    lines.append(
        f"[{kind}] meeting page: {page.rps:.0f} req/s = {page_ratio:.1%} of bare "
        f"(target >= 25 %) {harness.verdict(page_ratio, 0.25)}; p95 {page.p95_ms:.1f} ms (target <= 25 ms) "
        f"{harness.verdict(page.p95_ms, 25, higher_is_better=False)}; errors {page.errors}"
    )
    lines.append(
        f"[{kind}] RSVP POST: {post.rps:.0f} req/s = {post_ratio:.1%} of bare (target >= 10 %) "
        f"{harness.verdict(post_ratio, 0.10)}; p95 {post.p95_ms:.1f} ms; errors {post.errors}"
    )
    lines.append(
        f"[{kind}] worker peak memory: {memory:.1f} MiB (target <= 80 MiB) "
        f"{harness.verdict(memory, 80, higher_is_better=False)}"
    )
    return lines


def main() -> None:
    print(
        f"pages: {MEMBERS} members, a meeting with {MEMBERS} RSVPs, {CONNECTIONS} connections; "
        f"best of {ROUNDS} interleaved rounds of {SECONDS:g} s"
    )
    for kind in ("sqlite", "postgresql"):
        for line in run(kind):
            print(line, flush=True)


if __name__ == "__main__":
    main()
