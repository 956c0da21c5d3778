"""Series: pages and organisers' editing, following with a standing answer, publishing to followers, the unfollow
link and its one-click POST (RFC 8058), the series feed, the personal feed, data export and deletion."""

from __future__ import annotations

import datetime as dt
import re
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from kxn_meetings import mail
from kxn_meetings.extensions import db
from kxn_meetings.mail.message import build_message
from kxn_meetings.models import (
    Answer,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    Member,
    MessageKind,
    OutboxMessage,
    Rsvp,
    SeriesFollow,
    StandingAnswer,
    Visibility,
)
from kxn_meetings.services import follows as follow_service
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import members as member_service
from kxn_meetings.services import series as series_service

from .meeting_helpers import record_answer
from .test_calendar import assert_raw_form, by_uid, read_all, unfolded
from .test_rsvp_concurrency import run_together

GOING, INVITE = StandingAnswer.GOING, StandingAnswer.INVITE


@pytest.fixture
def series(app) -> MeetingSeries:
    found = series_service.create_series("Youth engagement working group", "Practitioners meeting every six weeks.")
    db.session.commit()
    return found


@pytest.fixture
def make_draft(make_meeting, series):
    def make(days: int = 30, **values) -> Meeting:
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
        values.setdefault("series_id", series.id)
        return make_meeting(start=start, status=MeetingStatus.DRAFT, **values)

    return make


def follow(series: MeetingSeries, member: Member, standing: StandingAnswer = GOING, **options):
    result = series_service.follow(series, member, standing, **options)
    db.session.commit()
    return result


def publish(meeting: Meeting) -> series_service.PublishedToFollowers:
    told = meeting_service.publish(meeting)
    db.session.commit()
    return told


def rsvp_of(meeting: Meeting, member: Member) -> Rsvp | None:
    db.session.expire_all()
    return db.session.scalar(select(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id))


def outbox_to(member: Member, kind: MessageKind | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.member_id == member.id).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query))


def links_in(text: str, path_part: str) -> list[str]:
    return [url for url in re.findall(r"https?://[^\s<>\"]+", text) if path_part in url]


# Publishing to followers -----------------------------------------------------------------------------------------


def test_publishing_answers_standing_goings_and_invites_every_follower(make_draft, make_member, series):
    counted_in, invited_only, stranger = make_member(), make_member(), make_member()
    follow(series, counted_in, GOING)
    follow(series, invited_only, INVITE)
    meeting = make_draft()
    assert rsvp_of(meeting, counted_in) is None  # a draft takes no answers

    told = publish(meeting)

    assert (told.going, told.waiting, told.invited) == (1, 0, 2)
    going = rsvp_of(meeting, counted_in)
    assert going is not None and going.is_going and going.source.is_series
    assert rsvp_of(meeting, invited_only) is None
    assert outbox_to(stranger) == []
    [invitation] = outbox_to(counted_in)
    assert invitation.kind == MessageKind.INVITATION
    assert "counted in for each meeting, so your answer is already Going" in invitation.text_body
    assert b"PARTSTAT=ACCEPTED" in unfolded(invitation.calendar)
    assert "?answer=declined" in invitation.text_body
    [plain] = outbox_to(invited_only)
    assert "already Going" not in plain.text_body
    assert b"PARTSTAT=NEEDS-ACTION" in unfolded(plain.calendar)
    # Both follow: both get the unfollow link and its headers; neither gets a confirmation besides the invitation.
    for row in (invitation, plain):
        message = build_message(row)
        assert message["List-Unsubscribe"] == f"<{links_in(row.text_body, '/unfollow/')[0]}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_declined_meeting_leaves_the_standing_answer_for_the_next(make_draft, make_member, series):
    regular = make_member()
    follow(series, regular, GOING)
    first = make_draft(days=20)
    publish(first)
    record_answer(first.id, regular, Answer.DECLINED)
    db.session.commit()
    second = make_draft(days=60)
    publish(second)
    assert rsvp_of(first, regular).answer.is_declined
    assert rsvp_of(second, regular).is_going


def test_following_counts_in_upcoming_meetings_but_never_overrides_an_answer(
    make_draft, make_member, series, make_meeting
):
    member = make_member()
    answered, open_one = make_draft(days=10), make_draft(days=40)
    publish(answered)
    publish(open_one)
    past = make_meeting(series_id=series.id, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=9))
    record_answer(answered.id, member, Answer.DECLINED)
    db.session.commit()

    result = follow(series, member, GOING)

    assert result.created and [r.meeting.id for r in result.answered] == [open_one.id]
    assert rsvp_of(answered, member).answer.is_declined
    assert rsvp_of(open_one, member).is_going
    assert rsvp_of(past, member) is None
    assert [m.kind for m in outbox_to(member)] == [MessageKind.CONFIRMATION]
    again = follow(series, member, INVITE)
    assert not again.created and again.answered == []
    assert db.session.scalar(select(func.count(SeriesFollow.id))) == 1


def test_a_meeting_of_another_series_and_inactive_followers_are_left_out(make_draft, make_member, series):
    other = series_service.create_series("Health and policing forum")
    db.session.commit()
    follower, gone = make_member(), make_member()
    follow(series, follower)
    follow(series, gone)
    gone.active = False
    db.session.commit()
    told = publish(make_draft(series_id=other.id))
    assert (told.going, told.invited) == (0, 0)
    told = publish(make_draft())
    assert (told.going, told.invited) == (1, 1)
    assert outbox_to(gone) == []


def test_standing_goings_fill_places_in_follow_order_then_the_waiting_list(make_draft, make_member, series):
    members = [make_member() for _ in range(5)]
    for member in members:
        follow(series, member)
    meeting = make_draft(capacity=3)
    told = publish(meeting)
    assert (told.going, told.waiting, told.invited) == (3, 2, 5)
    rows = [rsvp_of(meeting, m) for m in members]
    assert [r.is_going and not r.is_waiting for r in rows] == [True, True, True, False, False]
    assert [r.waitlist_position is not None for r in rows[3:]] == [True, True]
    assert rows[3].waitlist_position < rows[4].waitlist_position
    waiting_invitation = outbox_to(members[4])[0]
    assert "on the waiting list" in waiting_invitation.text_body


@pytest.mark.postgresql_only
def test_thirty_standing_goings_and_five_hand_answers_at_once_keep_capacity_and_order(
    app, make_draft, make_member, series, smtp_server
):
    followers = [make_member() for _ in range(30)]
    for member in followers:
        follow(series, member)
    by_hand = [make_member() for _ in range(5)]
    meeting = make_draft(capacity=10)
    meeting_id, follower_ids, hand_ids = meeting.id, [m.id for m in followers], [m.id for m in by_hand]
    db.session.rollback()
    published = threading.Event()

    def work(index: int) -> None:
        if index == 0:
            publish(db.session.get(Meeting, meeting_id))
            published.set()
            return
        # The others answer as the organiser presses Publish: they queue on the meeting's lock.
        while not published.wait(0.005) and not db.session.get(Meeting, meeting_id).is_scheduled:
            db.session.rollback()
        record_answer(meeting_id, db.session.get(Member, hand_ids[index - 1]), Answer.GOING)
        db.session.commit()

    assert run_together(app, 6, work) == []

    rows = {r.member_id: r for r in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting_id))}
    going = [m for m, r in rows.items() if r.is_going and not r.is_waiting]
    assert sorted(going) == sorted(follower_ids[:10]), "the first ten to follow have the places"
    waiting = sorted((r.waitlist_position, m) for m, r in rows.items() if r.is_waiting)
    assert [m for _, m in waiting][:20] == follower_ids[10:], "then the other followers, in follow order"
    assert sorted(m for _, m in waiting[20:]) == sorted(hand_ids), "then those who answered by hand"
    counts = db.session.execute(
        select(OutboxMessage.member_id, func.count())
        .where(OutboxMessage.meeting_id == meeting_id)
        .group_by(OutboxMessage.member_id)
    ).all()
    # Each follower gets her invitation, with her answer in it, and nothing more; an answer by hand that lands on
    # the waiting list is told on the page, and its member hears again when a place comes free.
    assert dict(counts) == dict.fromkeys(follower_ids, 1), "one email each"
    report = mail.deliver_due()
    assert report.failed == 0
    assert len(smtp_server.wait_for(30)) == 30


# Unfollowing: the link, List-Unsubscribe and RFC 8058 one-click ---------------------------------------------------


def _unfollow_url(member: Member, series: MeetingSeries) -> str:
    return f"/series/{series.slug}/unfollow/{follow_service.member_token(series.id, member.id)}"


def test_one_click_unsubscribe_unfollows_that_member_from_that_series_only(
    app, client, make_draft, make_member, series
):
    other = series_service.create_series("Health and policing forum")
    db.session.commit()
    leaving, staying = make_member(), make_member()
    for member in (leaving, staying):
        follow(series, member)
        follow(other, member)
    publish(make_draft())
    [invitation] = outbox_to(leaving)
    header = build_message(invitation)["List-Unsubscribe"]
    path = urlsplit(header.strip("<>")).path
    assert path == _unfollow_url(leaving, series)

    app.config["WTF_CSRF_ENABLED"] = True
    assert client.get(path).status_code == 200
    assert db.session.scalar(select(func.count(SeriesFollow.id))) == 4, "GET changes nothing"

    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    db.session.expire_all()
    assert series_service.follow_of(series, leaving) is None
    assert series_service.follow_of(other, leaving) is not None
    assert series_service.follow_of(series, staying) is not None
    assert rsvp_of(db.session.scalars(select(Meeting)).one(), leaving).is_going, "answers given stay"
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again: nothing to do


@pytest.mark.parametrize(
    "token",
    ["1-AAAA", "abc", "-", "99999999999-x", "1-\u00e9\u00e9", "%00", "1-" + "A" * 500],
)
def test_a_forged_or_broken_link_opens_nothing(client, make_member, series, token):
    member = make_member()
    follow(series, member)
    for method in ("GET", "POST"):
        assert client.open(f"/series/{series.slug}/unfollow/{token}", method=method).status_code == 404
        assert client.open(f"/series/{series.slug}/follow/{token}", method=method).status_code == 404
    assert series_service.follow_of(series, member) is not None


def test_a_link_for_one_series_does_not_work_for_another(client, make_member, series):
    other = series_service.create_series("Health and policing forum")
    db.session.commit()
    member = make_member()
    follow(other, member)
    token = follow_service.member_token(series.id, member.id)
    assert client.post(f"/series/{other.slug}/unfollow/{token}").status_code == 404
    assert series_service.follow_of(other, member) is not None


def test_following_from_an_email_link_is_confirmed_on_a_page(app, client, make_draft, make_member, series):
    member = make_member()
    meeting = make_draft()
    publish(meeting)
    from kxn_meetings.services import invitations

    invitations.invite(meeting, [member])
    db.session.commit()
    [invitation] = outbox_to(member)
    assert build_message(invitation)["List-Unsubscribe"] is None, "nothing to unsubscribe from before following"
    [link] = links_in(invitation.text_body, "/follow/")
    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200 and "Count me in for each meeting" in page.get_data(as_text=True)
    assert series_service.follow_of(series, member) is None
    done = client.post(path, data={"standing": "going"}, follow_redirects=True)
    assert done.status_code == 200
    assert "You follow" in done.get_data(as_text=True)
    assert series_service.follow_of(series, member).standing == GOING
    assert rsvp_of(meeting, member).is_going


def test_a_bad_choice_is_refused_with_a_message(client, make_member, series):
    member = make_member()
    path = f"/series/{series.slug}/follow/{follow_service.member_token(series.id, member.id)}"
    response = client.post(path, data={"standing": "sometimes"})
    assert response.status_code == 422
    assert "Choose how to follow the series." in response.get_data(as_text=True)
    assert series_service.follow_of(series, member) is None


# Pages -------------------------------------------------------------------------------------------------------------


def test_organisers_create_rename_and_describe_series(organiser_client, client, series):
    response = organiser_client.post("/series/new", data={"name": "  Youth   justice forum ", "description": "Forum"})
    assert response.status_code == 302
    created = db.session.scalar(select(MeetingSeries).where(MeetingSeries.name == "Youth justice forum"))
    assert created.slug == "youth-justice-forum"
    assert organiser_client.post("/series/new", data={"name": "youth justice FORUM"}).status_code == 422
    assert organiser_client.post("/series/new", data={"name": ""}).status_code == 422
    renamed = organiser_client.post(
        f"/series/{created.slug}/edit", data={"name": "Youth justice network", "description": "Every month"}
    )
    assert renamed.status_code == 302
    db.session.expire_all()
    assert (created.name, created.slug, created.description) == (
        "Youth justice network",
        "youth-justice-forum",
        "Every month",
    )
    page = client.get(f"/series/{created.slug}").get_data(as_text=True)
    assert "Youth justice network" in page and "Every month" in page
    assert "youth-justice-forum" in client.get("/series").get_data(as_text=True)


def test_series_page_lists_upcoming_and_past_meetings_with_notes_and_keeps_members_only_private(
    client, organiser_client, make_meeting, make_member, series
):
    now = dt.datetime.now(dt.UTC)
    make_meeting(title="Next public", series_id=series.id, start=now + dt.timedelta(days=5))
    make_meeting(
        title="Members session", series_id=series.id, visibility=Visibility.MEMBERS, start=now + dt.timedelta(days=9)
    )
    make_meeting(title="Unpublished", series_id=series.id, status=MeetingStatus.DRAFT)
    make_meeting(title="Last time", series_id=series.id, start=now - dt.timedelta(days=30))
    make_meeting(title="Elsewhere", start=now + dt.timedelta(days=3))
    follow(series, make_member())
    page = client.get(f"/series/{series.slug}").get_data(as_text=True)
    assert "Next public" in page and "Last time" in page
    assert "Members session" not in page and "Unpublished" not in page and "Elsewhere" not in page
    assert "follower" not in page.lower().replace("followers are invited", "")
    organiser_page = organiser_client.get(f"/series/{series.slug}").get_data(as_text=True)
    assert "Members session" in organiser_page and "1 follower" in organiser_page
    followers = organiser_client.get(f"/series/{series.slug}/followers").get_data(as_text=True)
    assert "Count me in for each meeting" in followers
    assert client.get("/series/no-such-series").status_code == 404


def test_an_empty_series_says_what_happens_next(client, series):
    page = client.get(f"/series/{series.slug}").get_data(as_text=True)
    assert "No meeting of this series is scheduled yet" in page
    assert "No past meetings in this series yet" in page


def test_a_member_follows_changes_and_stops_from_the_series_page(app, client, make_member, sign_in, series):
    member = make_member()
    sign_in(client, member)
    assert client.post(f"/series/{series.slug}/follow", data={"standing": "invite"}).status_code == 302
    assert series_service.follow_of(series, member).standing == INVITE
    client.post(f"/series/{series.slug}/follow", data={"standing": "going", "in_feed": "y"})
    db.session.expire_all()
    current = series_service.follow_of(series, member)
    assert (current.standing, current.in_feed) == (GOING, True)
    profile = client.get("/profile").get_data(as_text=True)
    assert series.name in profile
    assert client.post(f"/series/{series.slug}/unfollow").status_code == 302
    assert series_service.follow_of(series, member) is None
    assert client.post(f"/series/{series.slug}/follow", data={"standing": "going"}, headers={}).status_code == 302


def test_a_visitor_is_asked_to_sign_in_to_follow(client, series):
    assert client.post(f"/series/{series.slug}/follow", data={"standing": "going"}).status_code == 302
    assert db.session.scalar(select(func.count(SeriesFollow.id))) == 0


def test_meeting_page_and_form_name_the_series(client, organiser_client, make_meeting, series):
    meeting = make_meeting(series_id=series.id)
    page = client.get(f"/meetings/{meeting.slug}").get_data(as_text=True)
    assert series.name in page and f"/series/{series.slug}" in page
    form = organiser_client.get("/meetings/new").get_data(as_text=True)
    [choices] = re.findall(r'<select[^>]*name="series_id"[^>]*>(.*?)</select>', form, re.S)
    assert f'value="{series.id}"' in choices and series.name in choices


def test_invite_page_offers_the_followers_of_the_series(organiser_client, make_meeting, make_member, series):
    meeting = make_meeting(series_id=series.id)
    followers = [make_member(), make_member()]
    make_member()
    for member in followers:
        follow(series, member, INVITE)
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/invite", data={"recipients": "followers", "action": "send"}
    )
    assert response.status_code == 302
    invited = db.session.scalars(select(OutboxMessage.member_id).where(OutboxMessage.kind == MessageKind.INVITATION))
    assert sorted(invited) == sorted(m.id for m in followers)


# Calendars -----------------------------------------------------------------------------------------------------------


def test_series_feed_holds_its_public_meetings_and_reads_back_with_three_parsers(client, make_meeting, series):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    mine = make_meeting(title="Series meeting", series_id=series.id, start=now + dt.timedelta(days=4))
    cancelled = make_meeting(
        title="Called off",
        series_id=series.id,
        status=MeetingStatus.CANCELLED,
        sequence=1,
        start=now + dt.timedelta(days=8),
    )
    make_meeting(title="Private", series_id=series.id, visibility=Visibility.MEMBERS)
    make_meeting(title="Draft", series_id=series.id, status=MeetingStatus.DRAFT)
    make_meeting(title="Other series")
    response = client.get(f"/series/{series.slug}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    lines = assert_raw_form(response.data)
    assert f"X-WR-CALNAME:{series.name}".encode() in lines
    assert b"https://meet.example.org" not in unfolded(response.data)
    for parser, calendar in read_all(response.data):
        events = by_uid(calendar)
        assert set(events) == {mine.uid, cancelled.uid}, parser
        assert events[cancelled.uid]["status"] == "CANCELLED", parser
        assert events[mine.uid]["summary"] == "Series meeting", parser


def test_series_feed_answers_304_until_the_series_or_its_meetings_change(
    client, organiser_client, make_meeting, series
):
    hour_ago = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    make_meeting(title="Series meeting", series_id=series.id, updated_at=hour_ago)
    series.updated_at = hour_ago  # a change in this second is held back a second in Last-Modified
    db.session.commit()
    path = f"/series/{series.slug}/calendar.ics"
    first = client.get(path)
    etag = first.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    make_meeting(title="Another", series_id=series.id)
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and b"Another" in changed.data
    etag = changed.headers["ETag"]
    organiser_client.post(f"/series/{series.slug}/edit", data={"name": "Renamed group", "description": ""})
    renamed = client.get(path, headers={"If-None-Match": etag})
    assert renamed.status_code == 200 and b"X-WR-CALNAME:Renamed group" in renamed.data
    assert client.get("/series/nothing-here/calendar.ics").status_code == 404


def test_personal_feed_holds_all_meetings_of_a_followed_series_when_chosen(client, make_meeting, make_member, series):
    member = make_member(calendar_token="t" * 43)
    unanswered = make_meeting(title="Not answered", series_id=series.id)
    declined = make_meeting(title="Said no", series_id=series.id)
    elsewhere = make_meeting(title="Other meeting")
    record_answer(declined.id, member, Answer.DECLINED)
    db.session.commit()
    follow(series, member, INVITE)
    assert b"Not answered" not in client.get(f"/calendar/{'t' * 43}.ics").data
    follow(series, member, INVITE, in_feed=True)
    ics = client.get(f"/calendar/{'t' * 43}.ics").data
    for parser, calendar in read_all(ics):
        assert set(by_uid(calendar)) == {unanswered.uid}, parser
    assert b"you have not answered yet" in unfolded(ics)
    assert elsewhere.uid.encode() not in ics


# Data ----------------------------------------------------------------------------------------------------------------


def test_follows_are_in_the_data_export_and_go_with_the_account(make_member, series):
    member = make_member()
    follow(series, member, GOING, in_feed=True)
    exported = member_service.personal_data(member)["series_followed"]
    assert exported == [
        {
            "series": series.name,
            "standing_answer": GOING.label,
            "all_meetings_in_my_calendar": True,
            "since": exported[0]["since"],
        }
    ]
    member_service.delete_account(member)
    db.session.commit()
    assert db.session.scalar(select(func.count(SeriesFollow.id))) == 0


def test_new_meetings_join_the_default_series(organiser_client):
    from .meeting_helpers import meeting_form, only_meeting

    assert organiser_client.post("/meetings/new", data=meeting_form()).status_code == 302
    meeting = only_meeting()
    assert meeting.series is not None and meeting.series.slug == "kxn"
    assert meeting.series.meetings == [meeting]


def test_notes_feedback_and_organiser_messages_carry_the_series_line_and_header(make_meeting, make_member, organiser):
    from kxn_meetings.models import Audience
    from kxn_meetings.services import messages as message_service

    from .notes_helpers import answered, past_meeting, series, write_notes

    follower, other = make_member(), make_member()
    meeting = past_meeting(make_meeting)
    follow(series(), follower, INVITE)
    for member in (follower, other):
        answered(meeting, member, Answer.GOING, attended=True)
    write_notes(meeting, organiser, email=True)
    upcoming = make_meeting(series_id=series().id)
    for member in (follower, other):
        record_answer(upcoming.id, member, Answer.GOING)
    draft = message_service.check(upcoming, Audience.GOING, "Slides for Tuesday", "The slides are attached.")
    message_service.send(upcoming, draft, sender=organiser, send_key="slides")
    db.session.commit()
    kinds = (MessageKind.NOTES_PUBLISHED, MessageKind.FEEDBACK, MessageKind.MESSAGE)
    for kind in kinds:
        [mine] = outbox_to(follower, kind)
        [theirs] = outbox_to(other, kind)
        [unfollow] = links_in(mine.text_body, "/unfollow/")
        assert build_message(mine)["List-Unsubscribe"] == f"<{unfollow}>", kind
        assert unfollow in mine.html_body, kind
        assert build_message(theirs)["List-Unsubscribe"] is None, kind
        assert links_in(theirs.text_body, "/follow/") and not links_in(theirs.text_body, "/unfollow/"), kind
