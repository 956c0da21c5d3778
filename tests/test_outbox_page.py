"""The Outbox page with thousands of messages: grouped by send and by meeting with counts by status, searched by
address (hostile input included), a page at a time in a fixed number of queries, each date on one line."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import insert

from kxn_meetings.extensions import db
from kxn_meetings.models import MessageKind, OutboxMessage, OutboxStatus, utcnow

from .test_query_counts import counting_statements

STATUSES = (OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.PENDING, OutboxStatus.FAILED)


def bulk(meeting_id: int | None, send_id: str, count: int, kind: MessageKind, *, start: int = 0, at=None) -> None:
    at = at or utcnow()
    db.session.execute(
        insert(OutboxMessage),
        [
            {
                "kind": kind,
                "message_id": f"<{send_id}-{n}@kxn.test>",
                "sender": "meetings@kxn.test",
                "recipient": f"Member {n} <member{n}@{'police' if n % 2 else 'nhs'}.example>",
                "subject": "Hello",
                "text_body": "Hello",
                "html_body": "<p>Hello</p>",
                "meeting_id": meeting_id,
                "send_id": send_id,
                "status": STATUSES[n % 4],
                "created_at": at + dt.timedelta(milliseconds=n),
                "next_attempt_at": at,
            }
            for n in range(start, start + count)
        ],
    )
    db.session.commit()


@pytest.fixture
def thousands(app, make_meeting):
    first = make_meeting(title="Youth engagement")
    second = make_meeting(title="Custody and after")
    earlier = utcnow() - dt.timedelta(days=2)
    bulk(first.id, "a" * 16, 1500, MessageKind.INVITATION, at=earlier)
    bulk(first.id, "b" * 16, 400, MessageKind.UPDATE, start=1500, at=earlier + dt.timedelta(hours=1))
    bulk(second.id, "c" * 16, 1200, MessageKind.INVITATION, start=1900)
    return first, second


def rows_of(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<td.*?</tr>", page, re.S)


def test_sends_are_grouped_with_their_counts_newest_first(thousands, organiser_client):
    first, _second = thousands
    page = organiser_client.get("/outbox/sends").get_data(as_text=True)
    rows = rows_of(page)
    assert [re.search(r'data-label="Meeting"><a[^>]*>([^<]+)', r).group(1) for r in rows] == [
        "Custody and after",
        "Youth engagement",
        "Youth engagement",
    ]
    invitation = rows[2]
    assert "Invitation" in invitation
    assert 'data-label="Messages"><a href="/outbox/?send=aaaaaaaaaaaaaaaa">1500</a>' in invitation
    assert ">750</a></td>" in invitation and ">375</a></td>" in invitation  # sent; waiting and set aside
    only_first = organiser_client.get(f"/outbox/sends?meeting={first.id}").get_data(as_text=True)
    assert len(rows_of(only_first)) == 2 and "Custody and after" not in only_first


def test_one_send_lists_its_messages_with_counts_by_status(thousands, organiser_client):
    page = organiser_client.get("/outbox/?send=bbbbbbbbbbbbbbbb").get_data(as_text=True)
    assert "All (400)" in page and "Sent (200)" in page and "Waiting (100)" in page and "Set aside (100)" in page
    assert "Page 1 of 8" in page
    assert len(rows_of(page)) == 50
    failed = organiser_client.get("/outbox/?send=bbbbbbbbbbbbbbbb&status=failed&page=2").get_data(as_text=True)
    assert "Page 2 of 2" in failed and "send=bbbbbbbbbbbbbbbb" in failed


def test_search_by_address_is_partial_and_case_blind(thousands, organiser_client):
    page = organiser_client.get("/outbox/?q=MEMBER1234@NHS").get_data(as_text=True)
    assert "All (1)" in page and "member1234@nhs.example" in page
    police = organiser_client.get("/outbox/?q=police.example").get_data(as_text=True)
    assert "All (1550)" in police


@pytest.mark.parametrize("hostile", ["%", "_", "\\", "' OR 1=1 --", "<script>x</script>", "x\x00y", "a" * 5000, "é☃"])
def test_hostile_searches_match_literally_and_never_fail(thousands, organiser_client, hostile):
    response = organiser_client.get("/outbox/", query_string={"q": hostile})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>x</script>" not in page
    assert "No message matches." in page


@pytest.mark.parametrize("send", ["zz", "aaaaaaaaaaaaaaa", "' or 1=1", "A" * 16])
def test_a_malformed_send_shows_every_message(thousands, organiser_client, send):
    page = organiser_client.get("/outbox/", query_string={"send": send}).get_data(as_text=True)
    assert "All (3100)" in page


def test_dates_stay_on_one_line(thousands, organiser_client):
    for url in ("/outbox/", "/outbox/sends"):
        page = organiser_client.get(url).get_data(as_text=True)
        assert re.findall(r'<td data-label="Queued" class="nowrap">', page)


def test_pages_cost_the_same_queries_with_few_or_thousands_of_messages(app, make_meeting, organiser_client):
    meeting = make_meeting()
    bulk(meeting.id, "d" * 16, 5, MessageKind.INVITATION)
    urls = ["/outbox/", "/outbox/?q=nhs", f"/outbox/?send={'d' * 16}&status=sent", "/outbox/sends"]

    def statements() -> list[int]:
        found = []
        for url in urls:
            with counting_statements() as ran:
                assert organiser_client.get(url).status_code == 200
            found.append(len(ran))
        return found

    few = statements()
    bulk(meeting.id, "d" * 16, 3000, MessageKind.INVITATION, start=5)
    assert statements() == few
