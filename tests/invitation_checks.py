"""Reading invitation email as mail and calendar clients do: the MIME tree, the calendar part read by
vobject, by ical.js (Thunderbird's parser) and by ts-ics (web calendar apps), and every piece of text a
recipient can see."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import vobject
from sqlalchemy import select

from kxn_meetings.extensions import db
from kxn_meetings.models import OutboxMessage

JS_DIR = Path(__file__).resolve().parent / "js"


def layout(part) -> list | str:
    if part.is_multipart():
        return [part.get_content_type(), [layout(child) for child in part.iter_parts()]]
    return part.get_content_type()


CALENDAR_LAYOUT = [
    "multipart/mixed",
    [
        ["multipart/alternative", ["text/plain", "text/html", "text/calendar"]],
        "application/ics",
    ],
]
PLAIN_LAYOUT = ["multipart/alternative", ["text/plain", "text/html"]]


@dataclass
class Received:
    """One delivered message, taken apart."""

    message: EmailMessage
    kind: str
    text: str
    html: str
    calendar: bytes | None
    mime_method: str | None

    @property
    def everything(self) -> str:
        """Every header and every decoded part: all a recipient (or a forwarded copy) carries."""
        headers = "\n".join(f"{name}: {value}" for name, value in self.message.items())
        return "\n".join([headers, self.text, self.html, (self.calendar or b"").decode("utf-8")])

    @property
    def to(self) -> str:
        return self.message["To"].addresses[0].addr_spec

    def vevent(self):
        return vobject.readOne(self.calendar.decode("utf-8")).vevent


def take_apart(message: EmailMessage) -> Received:
    """Check the layout and return the parts. The outbox row tells the kind (the Message-ID is shared)."""
    kind = db.session.scalar(select(OutboxMessage.kind).where(OutboxMessage.message_id == str(message["Message-ID"])))
    if layout(message) == PLAIN_LAYOUT:
        text, html = message.iter_parts()
        return Received(message, kind or "", text.get_content(), html.get_content(), None, None)
    assert layout(message) == CALENDAR_LAYOUT, layout(message)
    alternative, attachment = message.iter_parts()
    text, html, calendar = alternative.iter_parts()
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_content_disposition() is None
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content_disposition() == "attachment"
    body = calendar.get_payload(decode=True)
    assert attachment.get_payload(decode=True) == body
    return Received(message, kind or "", text.get_content(), html.get_content(), body, calendar.get_param("method"))


def vobject_instants(calendar: bytes) -> tuple[dt.datetime, dt.datetime]:
    """Start and end as UTC instants, worked out by vobject from the file's own VTIMEZONE.

    vobject remembers zones from files read before and falls back to the system's zone for an unknown TZID;
    either would hide a wrong or missing VTIMEZONE, so the local time is converted with the file's own."""
    getattr(vobject.icalendar, "__tzidMap").clear()
    parsed = vobject.readOne(calendar.decode("utf-8"))
    zones = {tz.tzid.value: tz.gettzinfo() for tz in parsed.contents.get("vtimezone", [])}

    def instant(prop) -> dt.datetime:
        tzid = (prop.params.get("X-VOBJ-ORIGINAL-TZID") or prop.params.get("TZID") or [None])[0]
        if tzid is None:
            return prop.value.astimezone(dt.UTC)
        assert tzid in zones, f"TZID {tzid} has no VTIMEZONE in the file"
        return prop.value.replace(tzinfo=zones[tzid]).astimezone(dt.UTC)

    return instant(parsed.vevent.dtstart), instant(parsed.vevent.dtend)


def _node_reads(package: str, script: str, files: list[bytes], suffix: str, *, timeout: float = 120) -> list:
    """What tests/js/`script` prints as JSON for these files, all read in one node run."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / package).exists():
        from .conftest import IN_CI

        message = f"{package} is not installed (node and tests/js/node_modules are needed)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, data in enumerate(files):
            path = Path(folder) / f"{n}{suffix}"
            path.write_bytes(data)
            paths.append(str(path))
        result = subprocess.run(
            [node, str(JS_DIR / script), *paths],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def icaljs(calendars: list[bytes]) -> list[dict]:
    """Each calendar read by ical.js, Thunderbird's parser (tests/js/parse_ics.mjs): one dict per VCALENDAR."""
    return _node_reads("ical.js", "parse_ics.mjs", calendars, ".ics")


def tsics(calendars: list[bytes]) -> list[dict]:
    """Each calendar read by ts-ics, used by web calendar apps (tests/js/parse_ics_ts.mjs): one dict per VCALENDAR."""
    return _node_reads("ts-ics", "parse_ics_ts.mjs", calendars, ".ics")


def mailparser(messages: list[bytes]) -> list[dict]:
    """Each raw message read by npm mailparser (tests/js/parse_mail.mjs), in one node run: a dict per message with
    the decoded `subject` and `from`, `to`, `reply_to` as lists of {"name", "address"}."""
    return _node_reads("mailparser", "parse_mail.mjs", messages, ".eml", timeout=300)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
