"""Personal reply addresses: with REPLIES_TOKEN_ADDRESSES each invitation comes from, and names as ORGANIZER,
`local+TOKEN@domain` of the calendar address, so a calendar reply sent to it names its invitation and member."""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app

from ..extensions import db
from ..models import Invitation


def reply_token(invitation: Invitation) -> str:
    """`<invitation id>-<signature>`: names one invitation and cannot be forged; lower case, as some mail
    systems fold the case of addresses. Derived from, not equal to, the RSVP link token, because calendars
    holding the organiser address are often shared with whole teams."""
    key = current_app.config["SECRET_KEY"].encode()
    signed = f"calendar-reply:{invitation.id}:{invitation.meeting_id}:{invitation.member_id}:{invitation.token}"
    digest = hmac.new(key, signed.encode(), hashlib.sha256).digest()[:16]
    return f"{invitation.id}-{base64.b32encode(digest).decode().rstrip('=').lower()}"


def reply_address(invitation: Invitation) -> str:
    """The address an invitation comes from and names as ORGANIZER: the calendar address, or with
    REPLIES_TOKEN_ADDRESSES its personal form `local+TOKEN@domain`."""
    address = current_app.config["CALENDAR_ADDRESS"]
    if not current_app.config["REPLIES_TOKEN_ADDRESSES"]:
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}+{reply_token(invitation)}@{domain}"


def invitation_by_reply_address(recipients: list[str]) -> tuple[Invitation | None, bool]:
    """The invitation whose personal reply address the message went to; and whether a token was present."""
    local, _, domain = current_app.config["CALENDAR_ADDRESS"].lower().rpartition("@")
    seen_token = False
    for address in recipients:
        their_local, _, their_domain = address.lower().rpartition("@")
        if their_domain != domain or not their_local.startswith(local + "+"):
            continue
        token = their_local[len(local) + 1 :]
        seen_token = True
        invitation_id, _, _signature = token.partition("-")
        # Tokens are ASCII; anything else in an address (a superscript digit, an accented letter) is not one.
        if not token.isascii() or not invitation_id.isdigit() or len(invitation_id) > 12:
            continue
        invitation = db.session.get(Invitation, int(invitation_id))
        if invitation is not None and hmac.compare_digest(reply_token(invitation), token):
            return invitation, True
    return None, seen_token
