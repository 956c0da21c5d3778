"""Who else is coming: members going to a meeting see the organisations taking part, and the names of those who
agreed to it in their profile; nobody else sees the list, and nobody's email address is ever on it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from kxn_meetings.extensions import db
from kxn_meetings.models import Answer, Member, Rsvp
from kxn_meetings.services import guests

from .test_personal_link import link, page_of


def going(meeting, member: Member, answer: Answer = Answer.GOING, position: int | None = None) -> None:
    db.session.add(Rsvp(meeting_id=meeting.id, member_id=member.id, answer=answer, waitlist_position=position))
    db.session.commit()


def guest_section(page: str) -> str:
    found = re.search(r'<section aria-labelledby="guests-heading".*?</section>', page, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def room(make_meeting, make_member, member):
    meeting = make_meeting(title="Youth engagement")
    people = {
        "asha": make_member(name="Asha Named", email="asha@example.org", organisation="West Yorkshire VRU"),
        "ben": make_member(name="Ben Private", email="ben@example.org", organisation="West Yorkshire VRU"),
        "cara": make_member(name="Cara Maybe", email="cara@example.org", organisation="Maybe Trust"),
        "dev": make_member(name="Dev Waiting", email="dev@example.org", organisation="Waiting Police"),
        "eve": make_member(name="Eve Declined", email="eve@example.org", organisation="Declined NHS Trust"),
    }
    people["asha"].show_name_to_attendees = True
    going(meeting, people["asha"])
    going(meeting, people["ben"])
    going(meeting, people["cara"], Answer.MAYBE)
    going(meeting, people["dev"], position=1)
    going(meeting, people["eve"], Answer.DECLINED)
    return meeting, people


def test_the_list_counts_organisations_and_names_only_those_who_agreed(app, room, member):
    meeting, _people = room
    going(meeting, member)
    found = guests.guest_list(meeting)
    assert found.going == 3
    assert found.organisations == [("West Yorkshire VRU", 2), ("Lancashire VRU", 1)]
    assert [guest.name for guest in found.named] == ["Asha Named"]
    assert found.unnamed == 2


def test_a_member_going_sees_organisations_and_consenting_names_never_emails(app, room, member, member_client):
    meeting, _people = room
    going(meeting, member)
    for page in (page_of(member_client, f"/meetings/{meeting.slug}"), page_of(member_client, link(meeting, member))):
        section = guest_section(page)
        assert "Who else is coming" in section
        assert "West Yorkshire VRU (2)" in section and "Asha Named, West Yorkshire VRU" in section
        for hidden in ("Ben Private", "Maybe Trust", "Waiting Police", "Declined NHS Trust", "Cara", "Dev", "Eve"):
            assert hidden not in page, hidden
        assert "@example.org" not in section
        assert "2 members are not named" in section


@pytest.mark.parametrize(
    ("answer", "position"), [(Answer.MAYBE, None), (Answer.DECLINED, None), (Answer.GOING, 2), (None, None)]
)
def test_members_not_going_and_visitors_see_no_list(app, room, member, member_client, client, answer, position):
    meeting, _people = room
    if answer is not None:
        going(meeting, member, answer, position)
    pages = [page_of(member_client, f"/meetings/{meeting.slug}"), page_of(client, f"/meetings/{meeting.slug}")]
    pages.append(page_of(client, link(meeting, member)))
    for page in pages:
        assert "West Yorkshire VRU" not in page and "Asha Named" not in page
    if answer is not None:
        assert "Once you’re going, you’ll see which organisations" in guest_section(pages[0])


def test_a_name_shows_only_after_consent_and_stops_when_withdrawn(app, room, member, member_client, sign_in):
    meeting, people = room
    going(meeting, member)
    ben = app.test_client()
    sign_in(ben, people["ben"])
    path = f"/meetings/{meeting.slug}"
    assert "Ben Private" not in page_of(member_client, path)

    profile = {"name": "Ben Private", "organisation": "West Yorkshire VRU", "job_title": ""}
    assert ben.post("/profile", data={**profile, "show_name_to_attendees": "y"}).status_code == 302
    assert "Ben Private, West Yorkshire VRU" in guest_section(page_of(member_client, path))

    assert ben.post("/profile", data=profile).status_code == 302
    assert "Ben Private" not in page_of(member_client, path)
    db.session.expire_all()
    assert db.session.get(Member, people["ben"].id).show_name_to_attendees is False


def test_consent_is_off_for_a_new_member_and_in_her_data_download(app, make_member, sign_in):
    newcomer = make_member(name="New Member", email="new@example.org")
    assert newcomer.show_name_to_attendees is False
    client = app.test_client()
    sign_in(client, newcomer)
    assert client.get("/profile/data.json").get_json()["profile"]["name_shown_to_attendees"] is False
    page = page_of(client, "/profile")
    assert (
        'name="show_name_to_attendees"' in page and "checked" not in page.split('name="show_name_to_attendees"')[1][:40]
    )


def test_the_first_one_going_is_told_so(app, make_meeting, member, member_client):
    meeting = make_meeting()
    going(meeting, member)
    assert "You’re the first to say you’re going." in guest_section(page_of(member_client, f"/meetings/{meeting.slug}"))


def test_the_list_is_three_queries_however_many_are_going(app, make_meeting, make_member):
    meeting = make_meeting()
    for n in range(40):
        going(meeting, make_member(organisation=f"Trust {n % 7}"))
    assert meeting.id
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert guests.guest_list(meeting).going == 40
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len([s for s in statements if s.startswith("SELECT")]) == 3


def test_organisations_are_grouped_as_written_and_a_long_list_of_names_says_how_many_more(
    app, make_meeting, make_member, member_client, member, monkeypatch
):
    monkeypatch.setattr(guests, "NAMES_SHOWN", 2)
    meeting = make_meeting()
    going(meeting, member)
    for n, organisation in enumerate(["NHS Leeds", " NHS Leeds ", "Leeds City Council", "", "NHS Leeds"]):
        person = make_member(name=f"Named {n}", organisation=organisation)
        person.show_name_to_attendees = n != 4
        going(meeting, person)
    found = guests.guest_list(meeting)
    assert found.going == 6 and found.named_total == 4 and found.unnamed == 2
    assert found.organisations == sorted(
        [("NHS Leeds", 3), ("Leeds City Council", 1), (member.organisation, 1)],
        key=lambda row: (-row[1], row[0].lower()),
    )
    assert found.without_organisation == found.going - sum(count for _name, count in found.organisations)
    assert [guest.name for guest in found.named] == ["Named 0", "Named 1"]
    section = guest_section(page_of(member_client, f"/meetings/{meeting.slug}"))
    assert "And 2 more." in section and "Named 2" not in section
