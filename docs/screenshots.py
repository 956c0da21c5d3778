"""Takes the README's screenshots of the member's journey on a 360 px phone: the invitation email, the meeting
opened from its Going button, and the page after answering. Run with `make screenshots`; needs Debian's chromium.

The demo network is loaded into a throwaway SQLite database; nothing under instance/ is touched."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from kxn_meetings import create_app, schema
from kxn_meetings.demo import load_demo
from kxn_meetings.extensions import db
from kxn_meetings.models import Meeting, Member, OutboxMessage, Rsvp
from kxn_meetings.services import invitations as invitation_service

DOCS = Path(__file__).resolve().parent
PHONE = {"width": 360, "height": 740}
PORT = 5057
MEETING_TITLE = "Youth engagement"


def _app(folder: Path):
    return create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SECRET_KEY": secrets.token_hex(32),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'screenshots.sqlite'}",
            "BASE_URL": f"http://127.0.0.1:{PORT}",
        }
    )


def _invite_one(app) -> tuple[str, str]:
    """Invites one demo member who has not answered yet to the next meeting: her email's HTML and her link."""
    with app.app_context():
        schema.upgrade()
        load_demo(progress=lambda _text: None)
        meeting = db.session.scalars(select(Meeting).where(Meeting.title.startswith(MEETING_TITLE))).first()
        if meeting is None:
            sys.exit(f"The demo has no meeting titled '{MEETING_TITLE}…'.")
        answered = set(db.session.scalars(select(Rsvp.member_id).where(Rsvp.meeting_id == meeting.id)))
        member = next(m for m in db.session.scalars(select(Member).order_by(Member.id)) if m.id not in answered)
        invitation_service.invite(meeting, [member])
        db.session.commit()
        message = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.member_id == member.id).order_by(OutboxMessage.id.desc())
        ).first()
        assert message is not None
        link = invitation_service.personal_link(meeting, member)
        return message.html_body, f"/meetings/{meeting.slug}/answer/{link.token}"


def main() -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as folder:
        app = _app(Path(folder))
        email_html, link = _invite_one(app)
        server = make_server("127.0.0.1", PORT, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport=PHONE, device_scale_factor=2)
                page.set_content(email_html)
                page.screenshot(path=DOCS / "phone-1-invitation.png", full_page=True)
                page.goto(f"http://127.0.0.1:{PORT}{link}?answer=going")
                page.screenshot(path=DOCS / "phone-2-meeting.png")
                page.get_by_role("button", name="Confirm my answer").click()
                page.wait_for_load_state("load")
                page.screenshot(path=DOCS / "phone-3-going.png")
                browser.close()
        finally:
            server.shutdown()
    print("Wrote docs/phone-1-invitation.png, docs/phone-2-meeting.png, docs/phone-3-going.png")


if __name__ == "__main__":
    main()
