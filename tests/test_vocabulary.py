"""Fixed vocabularies are enums: every message kind has a label and its wording, said once for both parts."""

from __future__ import annotations

import datetime as dt
import enum
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from markupsafe import escape

from kxn_meetings import models
from kxn_meetings.extensions import db
from kxn_meetings.models import (
    Meeting,
    MeetingStatus,
    Member,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    WorkshopQuestion,
    WorkshopRoom,
)
from kxn_meetings.models.base import LabelledEnum, _MemberTest
from kxn_meetings.services.outbox import queue_email

START = dt.datetime(2031, 3, 4, 15, 0, tzinfo=dt.UTC)

CONTEXT = {
    "meeting_notice": lambda meeting: {
        "meeting": meeting,
        "when": "Tuesday 4 March 2031, 3–5pm GMT",
        "meeting_url": "https://kxn.test/meetings/m",
        "answer_url": "https://kxn.test/meetings/m/answer/t",
        "rsvp": None,
        "show_join": False,
        "changes": ["Title: Before → After"],
        "reason": "The speakers are ill.",
    },
    "notes_published": lambda meeting: {
        "meeting": meeting,
        "revision": SimpleNamespace(title="What we learned", summary=""),
        "notes_url": "https://kxn.test/meetings/m/notes",
        "members_only": False,
        "meeting_day": "Tuesday 4 March 2031",
    },
    "sign_in": lambda meeting: {"token": "t", "code": "000000", "minutes": 15},
    "feedback_request": lambda meeting: {
        "meeting": meeting,
        "question": "How useful was this meeting for your work?",
        "meeting_day": "Tuesday 4 March 2031",
        "closes_on": "Friday 4 April 2031",
        "feedback_url": "https://kxn.test/meetings/m/feedback/t",
    },
    "scribe_link": lambda meeting: {
        "meeting": meeting,
        "room": WorkshopRoom(name="Room A", questions=[WorkshopQuestion(text="What works?")]),
        "when": "Tuesday 4 March 2031, 3–5pm GMT",
        "scribe_url": "https://kxn.test/meetings/m/rooms/1/scribe/x",
    },
    "organiser_message": lambda meeting: {
        "meeting": meeting,
        "when": "Tuesday 4 March 2031, 3–5pm GMT",
        "meeting_url": "https://kxn.test/meetings/m",
        "answer_url": "https://kxn.test/meetings/m/answer/t",
        "rsvp": None,
        "body": "Please read the strategy before we meet.",
        "sent_by": "Stephen Walcott, The Police Foundation",
    },
}


@pytest.mark.app_config(NETWORK_NAME="Knowledge & Exchange <Network>")
@pytest.mark.parametrize("kind", list(MessageKind))
def test_the_text_and_html_parts_of_every_kind_open_with_the_same_sentence(app, kind: MessageKind):
    meeting = Meeting(
        title="Youth engagement", theme="", location="", join_url="https://meet.example.org/k", starts_at=START
    )
    member = Member(name="Sam Member", email="sam@example.org")
    row = queue_email(kind=kind, to=member, subject="Hello", context=CONTEXT[kind.template](meeting))
    assert row is not None
    lead = kind.lead(app.config["NETWORK_NAME"])
    assert lead.strip()
    assert lead in row.text_body
    assert str(escape(lead)) in row.html_body
    assert kind.label.strip() and kind.label != kind.value
    db.session.rollback()


def test_the_wording_of_every_kind_is_its_own():
    leads = [kind.lead("the network") for kind in MessageKind]
    labels = [kind.label for kind in MessageKind]
    assert len(set(leads)) == len(leads)
    assert len(set(labels)) == len(labels)


def test_the_outbox_shows_kinds_by_their_label_and_a_kind_it_does_not_know_by_its_code(organiser_client):
    for n, kind in enumerate(["nudge", "retired_kind"]):
        db.session.add(
            OutboxMessage(
                kind=kind,
                message_id=f"<kind-{n}@kxn.test>",
                sender="meetings@kxn.test",
                recipient="someone@example.org",
                subject=f"Message {n}",
                text_body="Hello",
                status=OutboxStatus.PENDING,
            )
        )
    db.session.commit()
    page = organiser_client.get("/outbox/").get_data(as_text=True)
    assert MessageKind.NUDGE.label in page
    assert "retired_kind" in page


def test_the_readme_glossary_lists_every_kind_with_its_label():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [kind.value for kind in MessageKind if f"| `{kind.value}` | {kind.label} |" not in readme]
    assert missing == [], "add these kinds to the README's table of message kinds"


def _member_tests() -> list[tuple[type[enum.Enum], str, _MemberTest]]:
    found = []
    for name in dir(models):
        vocabulary = getattr(models, name)
        if isinstance(vocabulary, type) and issubclass(vocabulary, enum.Enum):
            found += [(vocabulary, attr, v) for attr, v in vars(vocabulary).items() if isinstance(v, _MemberTest)]
    return found


def test_each_yes_no_test_of_a_vocabulary_names_its_members_and_is_read_somewhere():
    tests = _member_tests()
    assert len(tests) >= 20
    root = Path(__file__).resolve().parent.parent
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in [*(root / "kxn_meetings").rglob("*.py"), *(root / "templates").rglob("*.*")]
        if "models" not in path.parts
    )
    for vocabulary, attr, test in tests:
        assert test.names <= set(vocabulary.__members__), f"{vocabulary.__name__}.{attr} names {set(test.names)}"
        assert [m for m in vocabulary if getattr(m, attr)], f"{vocabulary.__name__}.{attr} is true of nothing"
        assert re.search(rf"\.{attr}\b", sources), f"{vocabulary.__name__}.{attr} is never read"


def test_a_yes_no_test_is_true_of_exactly_the_members_it_names():
    assert MeetingStatus.DRAFT.is_draft and not MeetingStatus.SCHEDULED.is_draft
    assert [kind for kind in MessageKind if kind.removes_from_calendar] == [
        MessageKind.CANCELLATION,
        MessageKind.DECLINE,
    ]
    assert MeetingStatus.is_draft is False


def test_a_vocabulary_member_is_labelled_by_its_value_in_sentence_case_unless_given_a_label():
    assert models.Sector.LOCAL_AUTHORITY.label == "Local authority"
    assert models.Sector.POLICE.label == "Police"
    assert models.Answer.DECLINED.label == "Can't go"
    assert models.Region.YORKSHIRE_AND_THE_HUMBER.label == "Yorkshire and the Humber"
    for vocabulary in LabelledEnum.__subclasses__():
        labels = [member.label for member in vocabulary]
        assert all(label.strip() for label in labels) and len(set(labels)) == len(labels), vocabulary
