"""The links the site signs keep their exact form: follow and unfollow links and scribe links already sent by email
must still open after the code that signs them changes (kxn_meetings.signing)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from kxn_meetings.services import follows
from kxn_meetings.services.rooms import scribes


def _expected(app, message: str, size: int | None = None) -> str:
    digest = hmac.new(app.config["SECRET_KEY"].encode(), message.encode(), hashlib.sha256).digest()[:size]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_a_follow_link_is_signed_as_it_always_was(app):
    with app.app_context():
        assert follows.member_token(12, 345) == "345-" + _expected(app, "series-follow:12:345", 16)


def test_a_scribe_link_is_signed_as_it_always_was(app):
    with app.app_context():
        assert scribes._secret("a-nonce") == _expected(app, "scribe-link:a-nonce")
