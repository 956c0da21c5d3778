"""An answer's notice is queued by the request and written by the outbox worker just before it is sent: the member
who changes her mind before then gets the one notice of where she stands at the end, and nothing waits on a worker
that is down but the mail itself."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Member, OutboxMessage, OutboxStatus, Rsvp
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import meetings as meeting_service
from kxn_meetings.services import members as member_service
from kxn_meetings.services import notices, outbox

from .invitation_checks import take_apart

JOIN = "https://meet.example.org/kxn-answers"


def link(meeting: Meeting, member: Member) -> str:
    token = invitation_service.personal_link(meeting, member).token
    db.session.commit()
    return f"/meetings/{meeting.slug}/answer/{token}"


def rows(member: Member) -> list[OutboxMessage]:
    db.session.rollback()
    return list(
        db.session.scalars(select(OutboxMessage).where(OutboxMessage.member_id == member.id).order_by(OutboxMessage.id))
    )


def send(runner) -> str:
    result = runner.invoke(args=["kxn", "outbox", "send"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_request_queues_the_notice_and_the_worker_writes_and_sends_it(
    app, client, runner, smtp_server, make_meeting, member
):
    meeting = make_meeting(join_url=JOIN)
    assert client.post(link(meeting, member), data={"answer": "going"}).status_code == 302
    [row] = rows(member)
    assert (row.kind, row.status, row.to_render, row.calendar_method) == (
        "confirmation",
        OutboxStatus.PENDING,
        True,
        "REQUEST",
    )
    assert row.subject.startswith("You're going: ") and row.text_body == "" and row.calendar is None
    message_id = row.message_id

    assert "Sent 1;" in send(runner)
    [received] = [take_apart(m) for m in smtp_server.wait_for(1)]
    assert received.kind == "confirmation" and received.mime_method == "REQUEST"
    assert JOIN in received.text and JOIN in received.html
    assert received.vevent().uid.value == meeting.uid
    assert str(received.message["Message-ID"]) == message_id
    [row] = rows(member)
    assert (row.status, row.to_render) == (OutboxStatus.SENT, False)
    assert JOIN in row.text_body and row.calendar is not None


@pytest.mark.parametrize(
    ("answers", "kinds"),
    [
        (["going", "declined", "going"], [("confirmation", "REQUEST")]),
        (["going", "maybe"], []),
        (["going", "declined"], [("decline", "CANCEL")]),
        (["declined", "going", "maybe", "going"], [("confirmation", "REQUEST")]),
    ],
    ids=["going-declined-going", "going-maybe", "going-declined", "declined-going-maybe-going"],
)
def test_a_member_who_changes_her_mind_before_the_worker_runs_gets_one_notice_of_her_last_answer(
    app, client, runner, smtp_server, make_meeting, member, answers, kinds
):
    meeting = make_meeting(join_url=JOIN)
    invitation_service.invite(meeting, [member])
    db.session.commit()
    send(runner)
    smtp_server.wait_for(1)
    path = link(meeting, member)
    for answer in answers:
        assert client.post(path, data={"answer": answer}).status_code == 302
    send(runner)
    received = [take_apart(m) for m in smtp_server.wait_for(1 + len(kinds))[1:]]
    assert [(r.kind, r.mime_method) for r in received] == kinds
    assert "Nothing to send." in send(runner)


def test_a_notice_already_written_is_not_taken_back(app, client, runner, smtp_server, make_meeting, member):
    """Once written it may be on its way: the next answer's notice follows it, so the calendar ends where she does."""
    meeting = make_meeting(join_url=JOIN)
    path = link(meeting, member)
    client.post(path, data={"answer": "going"})
    assert "Sent 1;" in send(runner)
    client.post(path, data={"answer": "declined"})
    client.post(path, data={"answer": "going"})
    assert "Sent 1;" in send(runner)
    received = [take_apart(m) for m in smtp_server.wait_for(2)]
    assert [(r.kind, r.mime_method) for r in received] == [("confirmation", "REQUEST"), ("confirmation", "REQUEST")]
    assert received[0].message["Message-ID"] != received[1].message["Message-ID"]


@pytest.mark.app_config(OUTBOX_BATCH_SIZE=2)
def test_notices_wait_for_a_worker_that_is_down_and_go_when_it_is_back(
    app, client, runner, smtp_server, make_meeting, make_member
):
    """Written a batch at a time, each batch committed, so a long queue never holds the write lock for long."""
    meeting = make_meeting(join_url=JOIN)
    people = [make_member() for _ in range(5)]
    for person in people:
        assert client.post(link(meeting, person), data={"answer": "going"}).status_code == 302
    waiting = [row for person in people for row in rows(person)]
    assert [(r.to_render, r.status) for r in waiting] == [(True, OutboxStatus.PENDING)] * 5
    assert "Sent 5;" in send(runner)
    addresses = sorted(str(m["To"].addresses[0].addr_spec) for m in smtp_server.wait_for(5))
    assert addresses == sorted(p.email for p in people)


def test_the_notice_goes_to_the_address_the_member_has_when_it_is_written(
    app, client, runner, smtp_server, make_meeting, member
):
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    member.email = "new.address@example.org"
    db.session.commit()
    send(runner)
    [received] = smtp_server.wait_for(1)
    assert received["To"].addresses[0].addr_spec == "new.address@example.org"


@pytest.mark.parametrize(("answers", "heading"), [(["going"], "You're going"), (["going", "declined"], "Removed")])
def test_a_meeting_moved_and_renamed_before_the_notice_is_written_is_named_as_it_is_now(
    app, client, runner, smtp_server, make_meeting, member, answers, heading
):
    meeting = make_meeting(title="Youth engagement", start=dt.datetime(2099, 3, 9, 15, tzinfo=dt.UTC), join_url=JOIN)
    path = link(meeting, member)
    for answer in answers:
        client.post(path, data={"answer": answer})
    [row] = rows(member)
    assert "Youth engagement" in row.subject
    meeting = db.session.get(Meeting, meeting.id)
    meeting.title = "Youth engagement and the new strategy"
    meeting.starts_at = dt.datetime(2099, 3, 10, 16, tzinfo=dt.UTC)
    meeting.ends_at = dt.datetime(2099, 3, 10, 18, tzinfo=dt.UTC)
    db.session.commit()
    send(runner)
    [received] = smtp_server.wait_for(1)
    subject = str(received["Subject"])
    assert subject.startswith(f"{heading}") and "Youth engagement and the new strategy" in subject, subject
    if heading == "You're going":
        assert subject.endswith("(Tue 10 Mar 2099, 4\u20136pm GMT)"), subject


def test_a_member_deleted_before_her_notice_is_written_gets_nothing(
    app, client, runner, smtp_server, make_meeting, member, organiser
):
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    [row_id] = [row.id for row in rows(member)]
    member_service.delete_account(db.session.get(Member, member.id))
    db.session.commit()
    assert "Nothing to send." in send(runner)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row_id) is None
    assert smtp_server.messages == []


def test_a_notice_that_can_no_longer_be_written_is_set_aside_with_the_reason(
    app, client, runner, smtp_server, make_meeting, member
):
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    [row] = rows(member)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(meeting_id=None))
    db.session.commit()
    send(runner)
    [row] = rows(member)
    assert (row.status, row.to_render) == (OutboxStatus.FAILED, True)
    assert row.last_error == "Not written: its meeting or its member has been deleted."
    assert smtp_server.messages == []


def test_delivery_after_commit_writes_the_notice_first(app, client, smtp_server, make_meeting, member):
    app.config["OUTBOX_DELIVER_AFTER_COMMIT"] = True
    meeting = make_meeting(join_url=JOIN)
    assert client.post(link(meeting, member), data={"answer": "going"}).status_code == 302
    [received] = [take_apart(m) for m in smtp_server.wait_for(1)]
    assert received.kind == "confirmation" and JOIN in received.text
    [row] = rows(member)
    assert (row.status, row.to_render) == (OutboxStatus.SENT, False)


def test_the_outbox_page_says_a_notice_is_written_when_it_is_sent(organiser_client, client, make_meeting, member):
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    [row] = rows(member)
    page = organiser_client.get(f"/outbox/{row.id}")
    assert page.status_code == 200
    assert "writes this notice, from the member's answer as it then stands, just before it sends it" in page.text
    assert "Written when it is sent" in page.text
    assert organiser_client.get("/outbox/").status_code == 200
    assert organiser_client.get(f"/outbox/{row.id}/html").status_code == 200


def test_a_notice_of_a_meeting_cancelled_before_it_is_written_is_dropped(
    app, client, runner, smtp_server, make_meeting, member
):
    """Only the cancellation goes: "You're going" after it would put the meeting back in her calendar."""
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    meeting_service.cancel(db.session.get(Meeting, meeting.id), "Moved to next month")
    db.session.commit()
    assert "Sent 1;" in send(runner)
    [received] = [take_apart(m) for m in smtp_server.wait_for(1)]
    assert (received.kind, received.mime_method) == ("cancellation", "CANCEL")
    assert [r.kind for r in rows(member)] == ["cancellation"]


def test_a_notice_whose_answer_an_organiser_changed_before_it_is_written_is_dropped(
    app, client, runner, smtp_server, make_meeting, member
):
    meeting = make_meeting(join_url=JOIN)
    client.post(link(meeting, member), data={"answer": "going"})
    db.session.execute(
        update(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == member.id).values(answer=Answer.DECLINED)
    )
    db.session.commit()
    assert "Nothing to send." in send(runner)
    assert rows(member) == [] and smtp_server.messages == []


def test_outbox_send_counts_only_the_notices_it_will_try(app, client, runner, smtp_server, make_meeting, make_member):
    meeting = make_meeting(join_url=JOIN)
    kept, changed = make_member(name="Kim Kept"), make_member(name="Cal Changed")
    for member in (kept, changed):
        client.post(link(meeting, member), data={"answer": "going"})
    db.session.execute(
        update(Rsvp).where(Rsvp.meeting_id == meeting.id, Rsvp.member_id == changed.id).values(answer=Answer.MAYBE)
    )
    db.session.commit()
    output = send(runner)
    assert "Sending 1 message." in output and "Sent 1;" in output, output
    [received] = smtp_server.wait_for(1)
    assert received["To"].addresses[0].addr_spec == kept.email


def test_a_notice_that_fails_to_be_written_is_set_aside_and_the_rest_of_the_mail_goes(
    app, client, runner, smtp_server, make_meeting, make_member, monkeypatch
):
    meeting = make_meeting(join_url=JOIN)
    broken, fine = make_member(name="Broken Template"), make_member(name="Fine Reader")
    for person in (broken, fine):
        client.post(link(meeting, person), data={"answer": "going"})
    real = notices.follows.links_for

    def links_for(meeting, members):
        if any(m.id == broken.id for m in members):
            raise RuntimeError("template failed")
        return real(meeting, members)

    monkeypatch.setattr(notices.follows, "links_for", links_for)
    assert "Sent 1;" in send(runner)
    [received] = smtp_server.wait_for(1)
    assert received["To"].addresses[0].addr_spec == fine.email
    [row] = rows(broken)
    assert (row.status, row.to_render, row.last_error) == (OutboxStatus.FAILED, True, "Not written: template failed")


def test_a_notice_queued_to_be_written_later_gives_every_column_that_has_a_default(
    client, make_meeting, member, monkeypatch
):
    """The statement that queues it may also drop her unsent notices (a data-modifying WITH on PostgreSQL), which
    gets no column defaults: a column added with a default must be given by queue_to_render() too."""
    given: list[tuple[str, ...]] = []
    build = outbox._queue_to_render_statement
    monkeypatch.setattr(
        outbox, "_queue_to_render_statement", lambda names, replacing: given.append(names) or build(names, replacing)
    )
    meeting = make_meeting(join_url=JOIN)
    path = link(meeting, member)
    for answer in ("going", "declined", "going"):
        assert client.post(path, data={"answer": answer}).status_code == 302
    with_defaults = {column.name for column in OutboxMessage.__table__.columns if column.default is not None}
    assert len(given) == 3 and with_defaults
    assert all(with_defaults <= set(names) for names in given), with_defaults - set(given[0])
