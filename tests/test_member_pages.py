"""A signed-in member's meeting page is rendered once for every member whose answer is in the same state and kept for
PUBLIC_PAGE_SECONDS; each request fills in her own name, what she wrote and her CSRF token. What one member sees is
exactly what a page rendered for her alone would show, and nothing of another member's."""

from __future__ import annotations

import datetime as dt
import re
import threading

import flask_wtf.csrf
import pytest
from flask import g
from sqlalchemy import event, select

from kxn_meetings import kept, security
from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Rsvp, WorkshopRoom
from kxn_meetings.views import meetings as meeting_views

from .clocks import stopped_clock
from .test_query_counts import counting_statements

pytestmark = pytest.mark.app_config(PUBLIC_PAGE_SECONDS=5)

CSRF = re.compile(r'(name="csrf_token" (?:type="hidden" )?value=")([^"]+)(")')


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    return stopped_clock(monkeypatch, kept)


@pytest.fixture
def renders(monkeypatch) -> list[int]:
    """How many times the meeting page was rendered."""
    calls: list[int] = []
    render = meeting_views._render_meeting_page

    def counted(*args, **kwargs):
        calls.append(1)
        return render(*args, **kwargs)

    monkeypatch.setattr(meeting_views, "_render_meeting_page", counted)
    return calls


@pytest.fixture
def signed_in(app, sign_in, make_member):
    def make(name: str):
        member = make_member(name=name)
        client = app.test_client()
        sign_in(client, member)
        return member, client

    return make


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "\x00" not in body
    return body


def tokens(body: str) -> set[str]:
    return {match.group(2) for match in CSRF.finditer(body)}


def without_tokens(body: str) -> str:
    """The page without its CSRF tokens and flash messages, and with each run of white space as one space."""
    return re.sub(r"\s+", " ", FLASHES.sub("", CSRF.sub(r"\1…\3", body)))


FLASHES = re.compile(r'\s*<div class="flashes" role="status">.*?</div>', re.S)


def rendered_for_her_alone(client, path: str) -> str:
    """Her page as it is rendered when it cannot be kept (a flash message is waiting), without the message."""
    with client.session_transaction() as cookie:
        cookie["_flashes"] = [("info", "A message for her alone.")]
    body = page(client, path)
    assert "A message for her alone." in body
    return body


@pytest.mark.parametrize("answer", [None, Answer.GOING, Answer.MAYBE, Answer.DECLINED])
def test_members_alike_share_one_render_and_each_sees_only_her_own(app, make_meeting, signed_in, renders, answer):
    meeting = make_meeting(title="Youth engagement", capacity=10)
    path = f"/meetings/{meeting.slug}"
    ann, ann_client = signed_in("Ann <b>O'Brien</b> & co")
    bea, bea_client = signed_in('Bea "Quoted" Smith')
    if answer is not None:
        wrote = [(ann, "Ann's <i>note</i>", "Ann: a ramp"), (bea, "Bea & her note", "Bea: captions")]
        db.session.add_all(
            Rsvp(meeting_id=meeting.id, member_id=who.id, answer=answer, comment=comment, access_needs=needs)
            for who, comment, needs in wrote
        )
        db.session.commit()

    ann_page = page(ann_client, path)
    bea_page = page(bea_client, path)
    assert len(renders) == 1

    assert "Ann &lt;b&gt;O&#39;Brien&lt;/b&gt; &amp; co" in ann_page and "Ann &lt;b&gt;" not in bea_page
    assert "Bea &#34;Quoted&#34; Smith" in bea_page and "Bea &#34;Quoted" not in ann_page
    if answer is not None:
        assert "Ann&#39;s &lt;i&gt;note&lt;/i&gt;" in ann_page and "Ann: a ramp" in ann_page
        assert "Bea &amp; her note" in bea_page and "Bea: captions" in bea_page
        assert "Ann" not in bea_page.replace("Annual", "")
    assert tokens(ann_page).isdisjoint(tokens(bea_page))

    assert without_tokens(rendered_for_her_alone(bea_client, path)) == without_tokens(bea_page)
    assert len(renders) == 2


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PUBLIC_PAGE_SECONDS=5)
def test_the_token_on_a_kept_page_is_her_own_and_answers(app, make_meeting, signed_in, renders):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    _, bea_client = signed_in("Bea")
    ann_token = tokens(page(ann_client, path)).pop()
    bea_token = tokens(page(bea_client, path)).pop()
    assert len(renders) == 1
    refused = bea_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": ann_token})
    assert refused.status_code == 400
    answered = bea_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": bea_token})
    assert answered.status_code == 302


def test_a_flash_is_shown_once_and_a_new_answer_at_once(app, make_meeting, signed_in):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    assert "Will you come?" in page(ann_client, path)
    ann_client.post(f"{path}/rsvp", data={"answer": "maybe"})
    shown = page(ann_client, path)
    assert "Thank you. Your answer is “Maybe”" in shown and "You said maybe" in shown
    again = page(ann_client, path)
    assert "Thank you" not in again and "You said maybe" in again


def test_waiting_members_share_one_render_and_each_sees_her_own_place(
    app, make_meeting, make_member, signed_in, renders
):
    meeting = make_meeting(title="Youth engagement", capacity=1)
    path = f"/meetings/{meeting.slug}"
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=make_member().id, answer=Answer.GOING))
    db.session.commit()
    clients = [signed_in(name)[1] for name in ("Ann", "Bea")]
    for client in clients:
        client.post(f"{path}/rsvp", data={"answer": "going"})
        assert "waiting list at position" in page(client, path)  # the flash, shown once on a page of her own
    renders.clear()
    ann, bea = (page(client, path) for client in clients)
    assert "You’re on the waiting list, position 1<" in ann and "position 2" not in ann
    assert "You’re on the waiting list, position 2<" in bea and "position 1" not in bea
    assert len(renders) == 1
    assert without_tokens(rendered_for_her_alone(clients[1], path)) == without_tokens(bea)


def test_a_meeting_with_rooms_is_rendered_for_each_member(app, make_meeting, signed_in, renders):
    meeting = make_meeting(title="Youth engagement")
    db.session.add(WorkshopRoom(meeting_id=meeting.id, name="Room A", position=0))
    db.session.commit()
    path = f"/meetings/{meeting.slug}"
    for name in ("Ann", "Bea"):
        page(signed_in(name)[1], path)
    assert len(renders) == 2


def test_a_kept_page_reads_her_session_and_her_answer_in_one_statement(app, make_meeting, signed_in):
    """An answer given a while ago: in the seconds after she changes it, her page reads the meeting afresh."""
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    ann, ann_client = signed_in("Ann")
    a_minute_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=ann.id, answer=Answer.MAYBE, updated_at=a_minute_ago))
    db.session.commit()
    page(ann_client, path)
    with counting_statements() as statements:
        assert "You said maybe" in page(ann_client, path)
    selects = [statement for statement in statements if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "member_sessions" in selects[0] and "rsvps" in selects[0]


@pytest.mark.postgresql_only
def test_on_postgresql_the_page_reads_outside_a_transaction_and_leaves_none_behind(app, make_meeting, signed_in):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    autocommit: list[bool] = []
    used = []
    thread = threading.get_ident()

    def note(conn, cursor, *_args):
        if threading.get_ident() == thread:
            autocommit.append(cursor.connection.autocommit)
            used.append(conn.connection.dbapi_connection)

    db.session.commit()  # the test's own transaction ends, as every request's does in production
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        page(ann_client, path)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert autocommit and all(autocommit)
    assert all(connection.autocommit is False for connection in used)


def test_organisers_and_personal_links_are_rendered_for_themselves(
    app, make_meeting, signed_in, organiser_client, renders
):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    page(ann_client, path)
    olive = page(organiser_client, path)
    assert "Olive Organiser" in olive and "Organiser actions" in olive and "Ann" not in olive
    assert len(renders) == 2


def test_a_change_to_the_meeting_is_rendered_once_the_copy_is_read_again(app, make_meeting, signed_in, clock):
    meeting = make_meeting(title="Youth engagement")
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    assert "Youth engagement" in page(ann_client, path)
    meeting.title = "Youth engagement, moved"
    db.session.commit()
    clock.now += 6
    assert "Youth engagement, moved" in page(ann_client, path)
    assert ann_client.head(path).status_code == 200


@pytest.mark.postgresql_only
def test_what_a_read_only_view_changes_is_undone_not_saved(app, member, caplog):
    from kxn_meetings.database import reads_only
    from kxn_meetings.models import Member

    member_id = member.id

    @reads_only
    def renames():
        found = db.session.get(Member, member_id)
        found.name = "Renamed by a GET"
        db.session.execute(select(Member.id)).all()
        return "done"

    app.add_url_rule("/renames", "renames", renames)
    db.session.commit()
    db.session.close()
    assert app.test_client().get("/renames").text == "done"
    db.session.close()
    assert db.session.get(Member, member_id).name == "Sam Member"
    assert "changed what it read; the change is undone" in caplog.text


def test_a_part_holding_a_members_hole_is_used_once_and_never_kept(app):
    from kxn_meetings.views.public_pages import hole, part_for_many

    renders: list[str] = []

    def render(text: str):
        def rendered() -> str:
            renders.append(text)
            return text

        return rendered

    with app.test_request_context():
        for _ in range(2):
            assert part_for_many("kxn_test_parts", "hers", render(f"<p>{hole('name')}</p>")) == f"<p>{hole('name')}</p>"
            assert part_for_many("kxn_test_parts", "shared", render("<p>All</p>")) == "<p>All</p>"
    assert renders.count("<p>All</p>") == 1 and len(renders) == 3


@pytest.fixture
def signings(monkeypatch) -> list[int]:
    """How many times a CSRF token was signed (generate_csrf without one for this request already)."""
    calls: list[int] = []
    sign = flask_wtf.csrf.generate_csrf

    def counted(*args, **kwargs):
        if "csrf_token" not in g:
            calls.append(1)
        return sign(*args, **kwargs)

    monkeypatch.setattr(security, "generate_csrf", counted)
    monkeypatch.setattr(flask_wtf.csrf, "generate_csrf", counted)
    return calls


def _ann_and_a_meeting(make_meeting, signed_in):
    """A meeting's address and the client of Ann, signed in."""
    return f"/meetings/{make_meeting(title='Youth engagement').slug}", signed_in("Ann")[1]


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PUBLIC_PAGE_SECONDS=5)
def test_her_csrf_token_is_signed_once_and_handed_out_again_on_every_page(
    app, make_meeting, signed_in, signings, clock
):
    path, ann_client = _ann_and_a_meeting(make_meeting, signed_in)
    first = tokens(page(ann_client, path))
    signings.clear()
    clock.now += 3600 * 24
    again = tokens(page(ann_client, path))
    assert len(again) == 1 and again == first and signings == []
    assert ann_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": again.pop()}).status_code == 302


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PUBLIC_PAGE_SECONDS=5, WTF_CSRF_TIME_LIMIT=3600)
def test_a_csrf_token_with_a_time_limit_is_handed_out_for_a_sixtieth_of_it_then_signed_afresh(
    app, make_meeting, signed_in, signings, clock
):
    path, ann_client = _ann_and_a_meeting(make_meeting, signed_in)
    page(ann_client, path)
    signings.clear()
    clock.now += 59
    page(ann_client, path)
    assert signings == []
    clock.now += 2
    [token] = tokens(page(ann_client, path))
    assert signings == [1]
    assert ann_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": token}).status_code == 302


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PUBLIC_PAGE_SECONDS=5)
def test_a_kept_csrf_token_is_hers_alone(app, make_meeting, signed_in, clock):
    path, ann_client = _ann_and_a_meeting(make_meeting, signed_in)
    _, bea_client = signed_in("Bea")
    for _ in range(2):
        [ann_token], [bea_token] = tokens(page(ann_client, path)), tokens(page(bea_client, path))
        assert ann_token != bea_token
    assert bea_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": ann_token}).status_code == 400
    assert bea_client.post(f"{path}/rsvp", data={"answer": "going", "csrf_token": bea_token}).status_code == 302


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PUBLIC_PAGE_SECONDS=5)
def test_every_form_of_her_session_shows_the_one_token_and_an_answer_signs_none(
    app, make_meeting, signed_in, signings, clock
):
    path, ann_client = _ann_and_a_meeting(make_meeting, signed_in)
    [token] = tokens(page(ann_client, path))
    profile = page(ann_client, "/profile")
    assert 'name="csrf_token"' in profile and tokens(profile) == {token}
    signings.clear()
    assert ann_client.post(f"{path}/rsvp", data={"answer": "maybe", "csrf_token": token}).status_code == 302
    assert signings == []


def test_the_page_after_her_own_answer_counts_it_though_the_meeting_is_a_kept_copy(app, make_meeting, signed_in):
    """Others' answers may show a few seconds late; her own never does, places and the list of who is coming alike."""
    meeting = make_meeting(title="Youth engagement", capacity=3)
    path = f"/meetings/{meeting.slug}"
    _, ann_client = signed_in("Ann")
    assert "3 of 3 places left" in page(ann_client, path)
    response = ann_client.post(f"{path}/rsvp", data={"answer": "going"})
    assert response.status_code == 302
    assert "2 of 3 places left" in page(ann_client, path)
    assert "2 of 3 places left" in page(ann_client, path)
