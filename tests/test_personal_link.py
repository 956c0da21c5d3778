"""The page a personal link opens: the whole meeting for the one member it names, her answer and what it gives
her, and nothing of anyone else; and how a cancelled meeting looks there and on its meeting page."""

from __future__ import annotations

import datetime as dt
import re
import types

import icalendar
import pytest
import sqlalchemy as sa

from kxn_meetings import security
from kxn_meetings.extensions import db
from kxn_meetings.models import (
    AgendaItem,
    Answer,
    Meeting,
    MeetingStatus,
    Member,
    MessageKind,
    OutboxMessage,
    Rsvp,
    Visibility,
)
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import rsvps as rsvp_service

from .html_forms import form_values, forms, text
from .meeting_helpers import record_answer, rsvp_count
from .test_query_counts import counting_statements

JOIN = "https://meet.example.org/kxn-secret-room"
MARCH = dt.datetime(2099, 3, 9, 15, tzinfo=dt.UTC)  # 3pm GMT


@pytest.fixture
def members_only(make_meeting, make_member):
    meeting = make_meeting(
        title="Youth engagement in custody",
        theme="Trauma-informed practice with 18-25 year olds",
        description="Two hours with practitioners from **police and health**.",
        start=MARCH,
        join_url=JOIN,
        capacity=10,
        visibility=Visibility.MEMBERS,
        contact=make_member(name="Connie Contact", email="connie@example.org"),
    )
    db.session.add_all(
        [
            AgendaItem(meeting_id=meeting.id, position=0, start_time=dt.time(15, 0), title="Welcome"),
            AgendaItem(
                meeting_id=meeting.id,
                position=1,
                start_time=dt.time(15, 15),
                title="Lessons from the Manchester pilot",
                speaker_name="Dr Asha Patel",
                speaker_role="Research lead",
                speaker_organisation="University of Salford",
            ),
        ]
    )
    db.session.commit()
    return meeting


def link(meeting: Meeting, member: Member) -> str:
    token = invitation_service.personal_link(meeting, member).token
    db.session.commit()
    return f"/meetings/{meeting.slug}/answer/{token}"


def answered(meeting: Meeting, member: Member, answer: Answer, **extra) -> None:
    record_answer(meeting.id, member, answer, **extra)
    db.session.commit()


def page_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def calendar_links(page: str, path: str) -> bool:
    return f'href="{path}/calendar.ics"' in page and "calendar.google.com" in page and "outlook.live.com" in page


# What she sees, answer by answer -----------------------------------------------------------------------------


def test_before_answering_the_link_shows_the_members_only_meeting_and_the_form(client, members_only, member):
    path = link(members_only, member)
    page = page_of(client, f"{path}?answer=going")
    words = text(page)
    assert "Youth engagement in custody" in words
    assert "police and health" in words  # the description, for members only
    assert "Dr Asha Patel, Research lead, University of Salford" in words
    assert "3:15" in words or "15:15" in words
    assert "Times are GMT (Europe/London)." in words
    assert "connie@example.org" in page
    assert "Will you come?" in words and f"Answering as {member.name}" in words
    assert form_values(page, with_field="answer")["answer"] == "going"
    assert "Confirm my answer" in page and "<details" not in page
    assert JOIN not in page
    assert "10 of 10 places left" in words
    assert calendar_links(page, path)
    assert rsvp_count() == 0


def test_going_shows_youre_going_the_join_link_the_calendar_and_a_way_to_change(client, members_only, member):
    path = link(members_only, member)
    response = client.post(path, data={"answer": "going"})
    assert response.status_code == 302 and response.location.endswith(f"{path}?answered=changed#rsvp")
    page = page_of(client, response.location)
    words = text(page)
    assert "You’re going" in words
    assert "Thank you. Your answer is “Going”" in words
    assert "Thank you" not in text(page_of(client, path))
    assert JOIN in page
    assert calendar_links(page, path)
    assert '<details class="change-answer">' in page and "<summary>Change my answer</summary>" in page
    assert form_values(page, with_field="answer")["answer"] == "going"
    assert "Save my new answer" in page


@pytest.mark.parametrize(
    ("answer", "says", "calendar"),
    [(Answer.MAYBE, "You said maybe", True), (Answer.DECLINED, "Sorry you can’t make it", False)],
)
def test_maybe_and_cant_go_have_their_own_panel_and_no_join_link(client, members_only, member, answer, says, calendar):
    path = link(members_only, member)
    answered(members_only, member, answer)
    page = page_of(client, path)
    assert says in text(page)
    assert JOIN not in page
    assert calendar_links(page, path) is calendar
    assert "calendar.google.com" in page if calendar else "calendar.google.com" not in page
    assert "<summary>Change my answer</summary>" in page


def test_the_waiting_list_shows_her_position_and_no_join_link(client, make_meeting, make_member, member):
    meeting = make_meeting(capacity=1, join_url=JOIN)
    answered(meeting, make_member(), Answer.GOING)
    answered(meeting, make_member(), Answer.GOING)
    path = link(meeting, member)
    client.post(path, data={"answer": "going"})
    page = page_of(client, path)
    assert "You’re on the waiting list, position 2" in text(page)
    assert JOIN not in page
    assert "Full: answering “Going” puts you on the waiting list" in text(page)
    assert "emailed to you once a place is yours" in text(page)
    assert "once you answer “Going”" not in text(page)


def test_an_answer_chosen_in_the_email_opens_the_change_form_with_it(client, members_only, member):
    path = link(members_only, member)
    answered(members_only, member, Answer.GOING)
    page = page_of(client, f"{path}?answer=declined")
    assert "You’re going" in text(page)
    assert '<details class="change-answer" open>' in page
    assert form_values(page, with_field="answer")["answer"] == "declined"
    assert '<details class="change-answer">' in page_of(client, f"{path}?answer=going")


def test_a_refused_change_comes_back_open_with_its_message(client, members_only, member):
    path = link(members_only, member)
    answered(members_only, member, Answer.GOING)
    response = client.post(path, data={"answer": "sometimes"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert '<details class="change-answer" open>' in page
    assert "Choose Going, Maybe or Can't go." in text(page)


# Whom the link opens, and what --------------------------------------------------------------------------------


def test_a_bogus_token_another_meetings_or_a_draft_is_404_for_the_page_and_the_file(
    client, make_meeting, members_only, member, make_member
):
    other = make_meeting()
    draft = make_meeting(status=meeting_service.MeetingStatus.DRAFT)
    other_token = link(other, member).rsplit("/", 1)[1]
    draft_path = link(draft, member)
    for path in (
        f"/meetings/{members_only.slug}/answer/{other_token}",
        f"/meetings/{members_only.slug}/answer/{'x' * 32}",
        f"/meetings/{members_only.slug}/answer/short",
        draft_path,
    ):
        assert client.get(path).status_code == 404, path
        assert client.get(f"{path}/calendar.ics").status_code == 404, path
        assert client.post(path, data={"answer": "going"}).status_code == 404, path
    assert rsvp_count() == 0


def test_a_link_broken_in_copying_says_so_and_leads_to_the_meeting_and_sign_in(
    client, make_meeting, members_only, member
):
    """A link that lost its last characters, or caught a typo, is not a dead end: the page says what went wrong and
    leads to the meeting's page and to signing in, for each kind of personal link an email carries."""
    from kxn_meetings.services.follows import member_token
    from kxn_meetings.services.series import default_series

    past = make_meeting(start=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    series = default_series()
    db.session.commit()
    answer_link = link(members_only, member)
    feedback_link = link(past, member).replace("/answer/", "/feedback/")
    follow_link = f"/series/{series.slug}/follow/{member_token(series.id, member.id)}"
    pages = {
        answer_link: f"/meetings/{members_only.slug}",
        feedback_link: f"/meetings/{past.slug}",
        follow_link: f"/series/{series.slug}",
        follow_link.replace("/follow/", "/unfollow/"): f"/series/{series.slug}",
    }
    for path, page in pages.items():
        assert client.get(path).status_code == 200, path
        for broken in (path[:-4], path[:-1] + ("x" if path[-1] != "x" else "y")):
            response = client.get(broken)
            assert response.status_code == 404, broken
            said = text(response.get_data(as_text=True))
            assert "This link from your email does not work" in said, broken
            assert "lost its last characters" in said
            hrefs = re.findall(r'href="([^"]+)"', response.get_data(as_text=True))
            assert page in hrefs and f"/sign-in?next={page}" in hrefs, (broken, hrefs)
            assert members_only.title not in said and past.title not in said
    assert client.get(f"/meetings/no-such-meeting/answer/{'x' * 32}").status_code == 404
    assert rsvp_count() == 0


def test_another_members_link_shows_her_answer_not_yours(app, sign_in, members_only, member, make_member, organiser):
    someone = make_member(name="Rita Recipient")
    answered(members_only, someone, Answer.MAYBE)
    answered(members_only, member, Answer.GOING)
    signed_in = app.test_client()
    sign_in(signed_in, organiser)  # an organiser who opens a forwarded link sees it as its member would
    page = page_of(signed_in, link(members_only, someone))
    words = text(page)
    assert "You said maybe" in words and "Answering as Rita Recipient" in words
    assert JOIN not in page
    assert "Organiser actions" not in page and "/attendees" not in page


def test_the_link_reveals_nobody_elses_data_and_signs_nobody_in(client, members_only, member, make_member):
    others = [
        make_member(name="Priya Private", email="priya.private@example.org", organisation="Secret Trust"),
        make_member(name="Quentin Quiet", email="quentin.quiet@example.org", organisation="Hidden VRU"),
    ]
    answered(members_only, others[0], Answer.GOING, access_needs="Wheelchair space", comment="Bringing a colleague")
    answered(members_only, others[1], Answer.DECLINED, comment="On leave that week")
    hidden = Meeting(
        title="Another members-only meeting",
        slug="another-members-only",
        starts_at=MARCH,
        ends_at=MARCH + dt.timedelta(hours=2),
        status=meeting_service.MeetingStatus.SCHEDULED,
        visibility=Visibility.MEMBERS,
        description="Not for this link",
    )
    db.session.add(hidden)
    db.session.commit()

    secrets = (
        "Priya Private",
        "priya.private@example.org",
        "Quentin Quiet",
        "quentin.quiet@example.org",
        "Hidden VRU",
        "Wheelchair space",
        "Bringing a colleague",
        "On leave that week",
    )
    path = link(members_only, member)
    before = [page_of(client, path), page_of(client, f"{path}?answer=maybe")]
    client.post(path, data={"answer": "going", "access_needs": "Captions"})
    going = [page_of(client, path), client.post(path, data={"answer": "nonsense"}).get_data(as_text=True)]
    for page in before + going:
        for secret in secrets:
            assert secret not in page, secret
    # Once going she sees which organisations will be in the room (not who, without their consent).
    assert all("Secret Trust" not in page for page in before)
    assert all("Secret Trust" in page for page in going)
    elsewhere = f"/meetings/{hidden.slug}"
    for refused in ("/members", "/members/profile", elsewhere, f"{elsewhere}/calendar.ics"):
        response = client.get(refused)
        assert response.status_code in (302, 403, 404), refused
        assert "Not for this link" not in response.get_data(as_text=True)
        if response.status_code == 302:
            assert "/sign-in" in response.location or "/auth" in response.location, refused
    assert member.name not in text(client.get("/").get_data(as_text=True))
    other_token = path.rsplit("/", 1)[1]
    assert client.get(f"/meetings/{hidden.slug}/answer/{other_token}").status_code == 404


# The calendar file through the link --------------------------------------------------------------------------


def test_the_link_downloads_the_members_only_meetings_calendar_file(client, members_only, member):
    path = link(members_only, member)
    assert client.get(f"/meetings/{members_only.slug}/calendar.ics").status_code == 302  # sign in first
    response = client.get(f"{path}/calendar.ics")
    assert response.status_code == 200
    assert response.content_type == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert f'filename="kxn-{members_only.slug}.ics"' in response.headers["Content-Disposition"]
    [event] = icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["UID"]) == members_only.uid
    assert str(event["SUMMARY"]) == members_only.title
    assert event.decoded("DTSTART").astimezone(dt.UTC) == MARCH
    assert "ATTENDEE" not in event and JOIN not in response.get_data(as_text=True)


# A cancelled meeting ------------------------------------------------------------------------------------------


def cancel(meeting: Meeting) -> Meeting:
    meeting_service.cancel(meeting, "The speakers are unwell; we will write with a new date.")
    db.session.commit()
    return meeting


def test_a_cancelled_meeting_looks_cancelled_through_the_link(client, members_only, member):
    path = link(members_only, member)
    answered(members_only, member, Answer.GOING)
    cancel(members_only)
    page = page_of(client, f"{path}?answer=going")
    words = text(page)
    assert "This meeting has been cancelled" in words
    assert "The speakers are unwell; we will write with a new date." in words
    assert f"Cancelled on {members_only.cancelled_at.astimezone(members_only.zone):%A} " in words
    assert "It no longer takes answers." in words
    assert JOIN not in page
    assert "calendar.ics" not in page and "calendar.google.com" not in page
    assert "places left" not in words and "Places" not in words
    assert 'name="answer"' not in page and "Change my answer" not in page
    assert client.post(path, data={"answer": "declined"}).status_code == 302

    response = client.get(f"{path}/calendar.ics")
    assert response.status_code == 200
    [event] = icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED" and str(event["UID"]) == members_only.uid


def test_a_cancelled_meeting_looks_cancelled_on_its_page(client, member_client, organiser_client, make_meeting, member):
    meeting = make_meeting(join_url=JOIN, capacity=5, rsvp_deadline=MARCH - dt.timedelta(days=2), start=MARCH)
    answered(meeting, member, Answer.GOING)
    cancel(meeting)
    for who in (client, member_client, organiser_client):
        page = page_of(who, f"/meetings/{meeting.slug}")
        words = text(page)
        assert "This meeting has been cancelled" in words and "Cancelled on" in words
        assert "The speakers are unwell" in words
        assert JOIN not in page
        assert "calendar.google.com" not in page and 'href="/meetings/' + meeting.slug + '/calendar.ics"' not in page
        assert "places left" not in words and "Answer by" not in words
        assert 'name="answer"' not in page
    response = client.get(f"/meetings/{meeting.slug}/calendar.ics")
    [event] = icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"


@pytest.mark.app_config(PUBLIC_PAGE_SECONDS=5)
@pytest.mark.parametrize("answers", [["going"], ["going", "maybe"], ["going", "going"]])
def test_an_answer_runs_nothing_after_its_commit_and_reads_the_meeting_once(
    client, members_only, member, make_member, answers
):
    """The meeting's row is locked (on PostgreSQL by a statement of one column) and its columns read once, under the
    lock, and the message after the answer is worded from what the answer loaded, not read again once the commit
    has expired it. Before the lock the answer reads the copy of the meeting its page was built from."""
    path = link(members_only, member)
    page_of(client, path)
    for answer in answers:
        events: list[str] = []

        def note(_conn, _cursor, statement, *_args, events=events):
            events.append(statement.lstrip())

        def committed(_conn, events=events):
            events.append("COMMIT")

        sa.event.listen(db.engine, "before_cursor_execute", note)
        sa.event.listen(db.engine, "commit", committed)
        try:
            response = client.post(path, data={"answer": answer})
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", note)
            sa.event.remove(db.engine, "commit", committed)
        assert response.status_code == 302
        assert events[-1] == "COMMIT", events
        assert sum("meetings.title" in e for e in events) == 1, events
        [lock] = [e for e in events if "FOR UPDATE" in e] or [None]
        if db.engine.dialect.name == "postgresql":
            assert lock is not None and lock.split("FROM")[0].split() == ["SELECT", "meetings.id"], events
    assert "Sam Member" in page_of(client, path)


@pytest.mark.parametrize("answer", ["going", "declined"])
def test_an_answer_reads_her_link_and_her_name_once(client, members_only, member, answer):
    """Her link and her member row come in one statement, the one that reads the meeting and her answer before the
    meeting's lock; under the lock one statement checks that none of them has changed, reading only what tells,
    and neither is read again, not even to queue the notice that carries the link, nor to find whether she was
    invited."""
    path = link(members_only, member)
    invitation_service.personal_link(members_only, member).sent_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    page_of(client, path)
    with counting_statements() as statements:
        response = client.post(path, data={"answer": answer})
    assert response.status_code == 302
    outbox = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.member_id == member.id)).all()
    assert [row.kind for row in outbox] == [MessageKind.CONFIRMATION if answer == "going" else MessageKind.DECLINE]
    reads = [
        s for s in statements if s.lstrip().startswith("SELECT") and re.search(r"FROM members\b|\binvitations\b", s)
    ]
    assert len(reads) == 2, reads
    loaded, checked = reads
    assert "JOIN invitations" in loaded and "JOIN members" in loaded and "FROM meetings" in loaded
    assert "members.name" in loaded and "meetings.description" in loaded
    assert "JOIN invitations" in checked and "JOIN members" in checked
    assert "members.name" not in checked and "meetings.description" not in checked
    lock = next(i for i, s in enumerate(statements) if s.startswith("BEGIN IMMEDIATE") or "FOR UPDATE" in s)
    assert statements.index(loaded) < lock < statements.index(checked)


def _kinds_queued(member: Member) -> list[str]:
    query = sa.select(OutboxMessage.kind).where(OutboxMessage.member_id == member.id).order_by(OutboxMessage.id)
    return list(db.session.scalars(query))


def _second_answer_statements(
    client, meeting: Meeting, member: Member, first: str, second: str, *, queued_first: tuple[str, ...] = ()
) -> list[str]:
    """What her second answer through her link runs from the meeting's lock on (on SQLite, held from BEGIN IMMEDIATE),
    BEGINs left out; `queued_first`, the kinds of notice her first answer must have queued."""
    path = link(meeting, member)
    page_of(client, path)
    assert client.post(path, data={"answer": first}).status_code == 302
    assert _kinds_queued(member) == list(queued_first)
    with counting_statements() as statements:
        assert client.post(path, data={"answer": second}).status_code == 302
    start = next(i for i, s in enumerate(statements) if "FOR UPDATE" in s or s.startswith("BEGIN IMMEDIATE"))
    return [s for s in statements[start:] if not s.startswith("BEGIN")]


def test_a_changed_answer_costs_one_statement_for_each_thing_it_does(client, members_only, member):
    """Going, then Maybe, from the meeting's lock on; the meeting, her link, her name and her answer were read before
    it. On SQLite, whose lock is held from BEGIN IMMEDIATE: the check that none of them has changed, with whether
    anyone waits for the place she leaves; her answer written (the database moves the version of the meeting's
    answers with it); her unsent notices dropped. On PostgreSQL each statement after the lock is a round trip while
    other answers wait for it (services.rsvps._lock_with_answer): the meeting locked; the check; her answer written;
    her unsent notices dropped."""
    statements = _second_answer_statements(
        client, members_only, member, "going", "maybe", queued_first=(MessageKind.CONFIRMATION,)
    )
    work = [s.split()[0] for s in statements]
    if db.engine.dialect.name == "sqlite":
        assert work == ["SELECT", "UPDATE", "DELETE"], statements
        assert "EXISTS" in statements[0] and "count(" not in statements[0]
        assert "members.name" not in statements[0]
        return
    assert work == ["SELECT", "SELECT", "UPDATE", "DELETE"], statements
    assert "FOR UPDATE" in statements[0]
    assert "EXISTS" in statements[1] and "count(" not in statements[1] and "JOIN invitations" in statements[1]
    assert "members.name" not in statements[1]
    assert "UPDATE rsvps SET answer" in statements[2]


def test_a_going_to_a_meeting_with_a_limit_counts_the_places_under_the_lock(client, members_only, member):
    """Can't go (from an invitation she was sent), then Going to a meeting with a limit: the places taken are counted
    under the lock, before her answer is written; the notice of her Going replaces the one of her Can't go, not sent
    yet. On PostgreSQL the count comes with her answer and the notice with the DELETE of the old ones, one statement
    each."""
    members_only.capacity = 5
    invitation_service.personal_link(members_only, member).sent_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    statements = _second_answer_statements(
        client, members_only, member, "declined", "going", queued_first=(MessageKind.DECLINE,)
    )
    work = [s.split()[0] for s in statements]
    if db.engine.dialect.name == "sqlite":
        assert work == ["SELECT", "UPDATE", "DELETE", "INSERT"], statements
        assert "count(" in statements[0] and "EXISTS" not in statements[0]
    else:
        assert work == ["SELECT", "SELECT", "UPDATE", "WITH"], statements
        assert "count(" in statements[1] and "EXISTS" not in statements[1]
        assert "DELETE FROM outbox_messages" in statements[3] and "INSERT INTO outbox_messages" in statements[3]
    assert _kinds_queued(member) == [MessageKind.CONFIRMATION]
    db.session.expire_all()
    rsvp = db.session.scalars(sa.select(Rsvp).where(Rsvp.member_id == member.id)).one()
    assert (rsvp.answer, rsvp.waitlist_position) == (Answer.GOING, None)


# The answer form's CSRF token belongs to the link -----------------------------------------------------------------

CSRF_ON = pytest.mark.app_config(WTF_CSRF_ENABLED=True)


def _answer_form_token(page: str, action: str) -> str:
    [form] = [f for f in forms(page) if f.method == "post" and f.action == action]
    return form.values()["csrf_token"]


def _link_form_token(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers, "a personal link's page sets no cookie"
    return _answer_form_token(response.get_data(as_text=True), path)


def _answer_through(app, path: str, **data: str):
    """A POST from a client with no cookies at all, as a phone's mail app opening the link in a fresh browser."""
    response = app.test_client(use_cookies=False).post(path, data={"answer": "going", **data})
    assert "Set-Cookie" not in response.headers
    return response


@CSRF_ON
def test_an_answer_through_a_link_needs_its_form_token_and_no_cookie(app, client, members_only, member):
    path = link(members_only, member)
    token = _link_form_token(client, path)
    response = _answer_through(app, path, csrf_token=token)
    assert response.status_code == 302 and response.location.endswith("?answered=changed#rsvp")
    assert rsvp_count() == 1
    shown = app.test_client(use_cookies=False).get(response.location)
    assert "Set-Cookie" not in shown.headers
    assert "Thank you. Your answer is “Going” for Youth engagement in custody." in text(shown.get_data(as_text=True))
    again = _answer_through(app, path, csrf_token=token)
    assert again.location.endswith("?answered=unchanged#rsvp")
    assert "Your answer was already “Going”. Nothing changed." in text(page_of(client, again.location))


@CSRF_ON
def test_a_link_answer_without_its_own_token_is_refused_and_changes_nothing(
    app, client, members_only, member, make_member, sign_in
):
    path = link(members_only, member)
    other = make_member(name="Olu Other", email="olu@example.org")
    others_token = _link_form_token(client, link(members_only, other))
    own = _link_form_token(client, path)
    signed_in = app.test_client()
    sign_in(signed_in, other)
    sessions_token = _answer_form_token(
        page_of(signed_in, f"/meetings/{members_only.slug}"), f"/meetings/{members_only.slug}/rsvp"
    )
    stamp, signature = own.split(".")
    for bad in (
        None,
        "",
        others_token,
        sessions_token,
        f"{int(stamp) + 1}.{signature}",
        f"{stamp}.{signature[:-2]}",
        f"{stamp}.{signature}.x",
        "1.2",
        "１２.x",
        f"{'9' * 40}.{signature}",
    ):
        data = {} if bad is None else {"csrf_token": bad}
        response = _answer_through(app, path, **data)
        assert response.status_code == 400, bad
        assert "Nothing was changed" in text(response.get_data(as_text=True))
    assert rsvp_count() == 0


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, WTF_CSRF_TIME_LIMIT=3600)
def test_a_link_form_token_expires_with_the_time_limit(app, client, members_only, member, monkeypatch):
    path = link(members_only, member)
    now = [1_900_000_000.0]
    monkeypatch.setattr(security, "time", types.SimpleNamespace(time=lambda: now[0]))
    token = _link_form_token(client, path)
    now[0] += 3600
    assert _answer_through(app, path, csrf_token=token, answer="maybe").status_code == 302
    now[0] += 1
    assert _answer_through(app, path, csrf_token=token).status_code == 400
    now[0] -= 3601 + security.LINK_CSRF_SKEW_SECONDS + 1  # made "later" than the clock allows
    assert _answer_through(app, path, csrf_token=token).status_code == 400
    db.session.expire_all()
    assert db.session.scalars(sa.select(Rsvp.answer)).all() == [Answer.MAYBE]


@CSRF_ON
def test_a_link_form_token_outlives_a_change_of_secret_key_kept_as_a_fallback(app, client, members_only, member):
    path = link(members_only, member)
    token = _link_form_token(client, path)
    app.config["SECRET_KEY_FALLBACKS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = app.secret_key = "a-new-key-" + "k" * 40
    assert _answer_through(app, path, csrf_token=token).status_code == 302
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert _answer_through(app, path, csrf_token=token, answer="maybe").status_code == 400


def test_the_page_says_nothing_of_an_answer_for_a_link_without_one(client, members_only, member):
    path = link(members_only, member)
    for answered_query in ("changed", "unchanged", "nonsense"):
        words = text(page_of(client, f"{path}?answered={answered_query}"))
        assert "Thank you" not in words and "Nothing changed" not in words


def test_a_full_meeting_says_her_place_on_the_waiting_list(client, members_only, member, make_member):
    members_only.capacity = 1
    db.session.commit()
    answered(members_only, make_member(name="First In", email="first@example.org"), Answer.GOING)
    path = link(members_only, member)
    response = client.post(path, data={"answer": "going"})
    assert "on the waiting list at position 1" in text(page_of(client, response.location))
    response = client.post(path, data={"answer": "going"})
    assert response.location.endswith("?answered=unchanged#rsvp")
    assert "You are already on the waiting list at position 1. Nothing changed." in text(
        page_of(client, response.location)
    )


@pytest.mark.app_config(PUBLIC_PAGE_SECONDS=5)
def test_the_page_after_her_answer_counts_it_though_the_meeting_is_a_kept_copy(client, make_meeting, make_member):
    """The copy of the meeting a page shows is kept for a few seconds, and others' pages may lag that long; the page
    right after her own answer counts her place all the same, so it never contradicts what her answer did."""
    meeting = make_meeting(capacity=3)
    first, second = make_member(name="Ada First"), make_member(name="Bea Second")
    first_path, second_path = link(meeting, first), link(meeting, second)
    assert "3 of 3 places left" in page_of(client, first_path)
    assert client.post(first_path, data={"answer": "going"}).status_code == 302
    assert "2 of 3 places left" in page_of(client, f"{first_path}?answered=changed")
    page_of(client, second_path)
    assert client.post(second_path, data={"answer": "going"}).status_code == 302
    after = page_of(client, f"{second_path}?answered=changed")
    assert "1 of 3 places left" in after and "2 of 3 places left" not in after


def _changed_before_the_lock(monkeypatch, *changes: sa.Executable) -> None:
    """Have the next answer meet `changes`, committed on a connection of their own, after it has read the meeting,
    her answer and her link and before it takes the meeting's lock: as another request's would land."""
    lock = rsvp_service.lock_meeting_row

    def changed_then_locked(meeting_id: int) -> None:
        with db.engine.begin() as connection:
            for change in changes:
                connection.execute(change)
        monkeypatch.setattr(rsvp_service, "lock_meeting_row", lock)
        lock(meeting_id)

    monkeypatch.setattr(rsvp_service, "lock_meeting_row", changed_then_locked)


def _her_answer(meeting: Meeting, member: Member) -> Rsvp:
    db.session.expire_all()
    return db.session.scalars(sa.select(Rsvp).filter_by(meeting_id=meeting.id, member_id=member.id)).one()


def test_an_answer_changed_another_way_before_the_lock_is_read_again(client, members_only, member, monkeypatch):
    """She answered Maybe; her Going from another tab lands while her Going through the link waits for the lock. Read
    again under the lock, the link's Going changes nothing and queues no second confirmation."""
    answered(members_only, member, Answer.MAYBE)
    path = link(members_only, member)
    page_of(client, path)
    _changed_before_the_lock(
        monkeypatch,
        sa.update(Rsvp)
        .where(Rsvp.meeting_id == members_only.id, Rsvp.member_id == member.id)
        .values(answer=Answer.GOING, answered_at=dt.datetime.now(dt.UTC)),
    )
    response = client.post(path, data={"answer": "going"})
    assert response.status_code == 302
    assert "answered=unchanged" in response.headers["Location"]
    assert _her_answer(members_only, member).answer == Answer.GOING
    assert _kinds_queued(member) == []


def test_a_meeting_cancelled_before_the_lock_takes_no_answer(client, members_only, member, monkeypatch):
    answered(members_only, member, Answer.MAYBE)
    path = link(members_only, member)
    page_of(client, path)
    _changed_before_the_lock(
        monkeypatch, sa.update(Meeting).where(Meeting.id == members_only.id).values(status=MeetingStatus.CANCELLED)
    )
    response = client.post(path, data={"answer": "going"})
    assert response.status_code == 302
    assert "answered=" not in response.headers["Location"]
    assert _her_answer(members_only, member).answer == Answer.MAYBE
    assert _kinds_queued(member) == []


def test_the_last_place_taken_before_the_lock_puts_her_on_the_waiting_list(
    client, members_only, member, make_member, monkeypatch
):
    members_only.capacity = 1
    db.session.commit()
    path = link(members_only, member)
    page_of(client, path)
    other = make_member(name="Quick Member", email="quick@example.org")
    _changed_before_the_lock(
        monkeypatch,
        sa.insert(Rsvp).values(
            meeting_id=members_only.id, member_id=other.id, answer=Answer.GOING, answered_at=dt.datetime.now(dt.UTC)
        ),
    )
    response = client.post(path, data={"answer": "going"})
    assert response.status_code == 302
    rsvp = _her_answer(members_only, member)
    assert (rsvp.answer, rsvp.is_waiting) == (Answer.GOING, True)
    assert _kinds_queued(member) == []
    assert "waiting list at position 1" in page_of(client, response.headers["Location"].split("#")[0])


def test_a_member_removed_before_the_lock_cannot_answer_through_her_link(client, members_only, member, monkeypatch):
    answered(members_only, member, Answer.MAYBE)
    path = link(members_only, member)
    page_of(client, path)
    _changed_before_the_lock(monkeypatch, sa.update(Member).where(Member.id == member.id).values(active=False))
    assert client.post(path, data={"answer": "going"}).status_code == 404
    assert _her_answer(members_only, member).answer == Answer.MAYBE
