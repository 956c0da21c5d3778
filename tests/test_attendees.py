"""The organisers' attendee list: counts, access needs, the CSV export and attendance after the meeting."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Meeting, Rsvp
from kxn_meetings.services import invitations as invitation_service
from kxn_meetings.services import members as member_service

from .html_forms import text
from .meeting_helpers import record_answer

EVIL_NAME = '=HYPERLINK("https://evil.example/steal","Click me")'


def answer(meeting: Meeting, member, choice: Answer, **details) -> None:
    record_answer(meeting.id, member, choice, **details)
    db.session.commit()


def csv_rows(client, meeting: Meeting) -> list[dict[str, str]]:
    response = client.get(f"/meetings/{meeting.slug}/attendees.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f'filename="attendees-{meeting.slug}.csv"' in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))


@pytest.fixture
def full_meeting(make_meeting, make_member, organiser):
    """Capacity 3: three going, two waiting, one maybe, one can't go, two who have not answered."""
    meeting = make_meeting(capacity=3, title="Meeting three")
    people = {
        "ana": make_member(name="Ana Going", organisation="Avon and Somerset Police"),
        "ben": make_member(name=EVIL_NAME),
        "cat": make_member(name="Cat Going"),
        "dev": make_member(name="Dev Waiting"),
        "eve": make_member(name="Eve Waiting"),
        "fin": make_member(name="Fin Maybe"),
        "gus": make_member(name="Gus Declined"),
        "hal": make_member(name="Hal Silent"),
    }
    answer(meeting, people["ana"], Answer.GOING, access_needs="Wheelchair space", comment="Bringing a colleague")
    answer(meeting, people["ben"], Answer.GOING, comment="+1")
    answer(meeting, people["cat"], Answer.GOING)
    answer(meeting, people["dev"], Answer.GOING)
    answer(meeting, people["eve"], Answer.GOING, comment="-2 if the trains strike")
    answer(meeting, people["fin"], Answer.MAYBE, access_needs="Captions")
    answer(meeting, people["gus"], Answer.DECLINED, comment="@ training that day")
    return meeting, people


def test_the_attendee_list_counts_every_answer(organiser_client, full_meeting):
    meeting, _ = full_meeting
    page = text(organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True))
    assert "3 going of 3 places" in page
    assert "1 maybe" in page
    assert "1 can't go" in page
    assert "2 waiting" in page
    assert "2 no reply (nobody has been invited yet)" in page  # Hal and the organiser
    assert "Waiting list (1)" in page and "Waiting list (2)" in page
    assert (
        page.index("Ana Going")
        < page.index("Dev Waiting")
        < page.index("Eve Waiting")
        < page.index("Fin Maybe")
        < page.index("Gus Declined")
    )


def test_no_reply_counts_only_invited_members_once_invitations_have_gone_out(organiser_client, full_meeting):
    meeting, people = full_meeting
    invitation_service.invite(meeting, [people["ana"], people["hal"]])
    db.session.commit()
    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    assert "1 no reply" in text(page)
    assert "invited yet" not in page
    assert "Invited, no reply yet" in page
    assert "Hal Silent" in page


def test_access_needs_and_comments_are_for_organisers_only(app, organiser_client, full_meeting, sign_in):
    meeting, people = full_meeting
    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    for secret in ("Wheelchair space", "Bringing a colleague", "Captions", "training that day"):
        assert secret in page

    member_client = app.test_client()
    sign_in(member_client, people["cat"])
    assert member_client.get(f"/meetings/{meeting.slug}/attendees").status_code == 403
    assert member_client.get(f"/meetings/{meeting.slug}/attendees.csv").status_code == 403
    for path in (f"/meetings/{meeting.slug}", "/"):
        for viewer in (member_client, app.test_client()):
            shown = viewer.get(path).get_data(as_text=True)
            for secret in ("Wheelchair space", "Bringing a colleague", "Captions", "training that day", "Ana Going"):
                assert secret not in shown, (path, secret)


def test_csv_export_matches_the_list_and_neutralises_formulas(organiser_client, full_meeting):
    meeting, people = full_meeting
    rows = csv_rows(organiser_client, meeting)
    assert [r["Name"] for r in rows] == [
        "Ana Going",
        "'" + EVIL_NAME,
        "Cat Going",
        "Dev Waiting",
        "Eve Waiting",
        "Fin Maybe",
        "Gus Declined",
    ]
    by_name = {r["Name"]: r for r in rows}
    ana = by_name["Ana Going"]
    assert (ana["Email"], ana["Organisation"], ana["Answer"], ana["Access needs"], ana["Comment"], ana["How"]) == (
        people["ana"].email,
        "Avon and Somerset Police",
        "Going",
        "Wheelchair space",
        "Bringing a colleague",
        "Website",
    )
    assert by_name["'" + EVIL_NAME]["Comment"] == "'+1"
    assert by_name["Eve Waiting"]["Comment"] == "'-2 if the trains strike"
    assert by_name["Gus Declined"]["Comment"] == "'@ training that day"
    assert (by_name["Dev Waiting"]["Waiting list"], by_name["Eve Waiting"]["Waiting list"]) == ("1", "2")
    assert by_name["Fin Maybe"]["Answer"] == "Maybe"
    assert by_name["Gus Declined"]["Answer"] == "Can't go"
    assert all(not value.startswith(("=", "+", "-", "@")) for r in rows for value in r.values())

    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    assert "=HYPERLINK(&#34;https://evil.example" in page or "=HYPERLINK(&quot;https://evil.example" in page


def test_an_empty_meeting_has_an_empty_state_and_a_header_only_csv(organiser_client, make_meeting):
    meeting = make_meeting()
    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    assert "Nobody has answered yet." in page
    assert csv_rows(organiser_client, meeting) == []


def _attendance_ids(page: str) -> dict[str, str]:
    """Checkbox value by the name in its label."""
    return {
        text(label): value
        for value, label in re.findall(
            r'<input type="checkbox" name="attended" value="(\d+)"[^>]*><span[^>]*>(.*?) attended</span>', page
        )
    }


def test_attendance_is_saved_in_one_post_after_the_meeting_and_the_rate_shows(
    organiser_client, make_meeting, make_member
):
    meeting = make_meeting()
    people = [make_member(name=f"Person {i}") for i in range(4)]
    for person in people:
        answer(meeting, person, Answer.GOING)
    answer(meeting, make_member(name="Person maybe"), Answer.MAYBE)
    move_to_the_past(meeting)

    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    boxes = _attendance_ids(page)
    assert set(boxes) == {p.name for p in people} | {"Person maybe"}
    assert "Save attendance" in page

    ticked = [boxes["Person 0"], boxes["Person 1"], boxes["Person 2"], boxes["Person maybe"]]
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/attendance", data={"attended": ticked}, follow_redirects=True
    )
    page = text(response.get_data(as_text=True))
    assert "Attendance saved: 4 attended." in page
    assert "75% of those going came (3 of 4)" in page
    assert "1 who answered Maybe came" in page
    assert "0 came without answering Going" in page
    assert "1 no-show Going, but did not come (1) Person 3" in page
    attended = {
        r.member.name: r.attended for r in db.session.scalars(select(Rsvp).where(Rsvp.meeting_id == meeting.id))
    }
    assert attended == {"Person 0": True, "Person 1": True, "Person 2": True, "Person 3": False, "Person maybe": True}
    checked = re.findall(r'value="(\d+)" id="attended-\d+" checked', response.get_data(as_text=True))
    assert sorted(checked) == sorted(ticked)

    response = organiser_client.post(
        f"/meetings/{meeting.slug}/attendance",
        data={"attended": [boxes["Person 0"], "²", "abc", "99999999999999999999"]},
        follow_redirects=True,
    )
    assert "25% of those going came (1 of 4)" in text(response.get_data(as_text=True))
    assert {r["Name"]: r["Attended"] for r in csv_rows(organiser_client, meeting)} == {
        "Person 0": "yes",
        "Person 1": "no",
        "Person 2": "no",
        "Person 3": "no",
        "Person maybe": "no",
    }


def move_to_the_past(meeting: Meeting) -> None:
    """Answers close once a meeting has happened, so they are given while it is ahead and the meeting then moved."""
    meeting.starts_at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    meeting.ends_at = meeting.starts_at + dt.timedelta(hours=2)
    db.session.commit()


def test_attendance_cannot_be_recorded_before_the_meeting(organiser_client, make_meeting, member):
    meeting = make_meeting()
    answer(meeting, member, Answer.GOING)
    page = organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True)
    assert 'name="attended"' not in page
    rsvp_id = db.session.scalar(select(Rsvp.id))
    response = organiser_client.post(
        f"/meetings/{meeting.slug}/attendance", data={"attended": [str(rsvp_id)]}, follow_redirects=True
    )
    assert "once the meeting has started" in response.get_data(as_text=True)
    assert db.session.scalar(select(Rsvp.attended)) is None


def test_a_deleted_members_answer_stays_as_a_deleted_account(organiser_client, full_meeting):
    meeting, people = full_meeting
    member_service.delete_account(people["cat"])
    db.session.commit()
    page = text(organiser_client.get(f"/meetings/{meeting.slug}/attendees").get_data(as_text=True))
    assert "(deleted account)" in page
    assert "Cat Going" not in page
    assert "3 going of 3 places" in page
    rows = csv_rows(organiser_client, meeting)
    deleted = [r for r in rows if r["Name"] == "(deleted account)"]
    assert len(deleted) == 1 and deleted[0]["Email"] == "" and deleted[0]["Answer"] == "Going"
