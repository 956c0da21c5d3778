"""Adding, changing and removing members."""

from __future__ import annotations

from ..extensions import db
from ..models import Member
from .auth import find_member_by_email


class MemberError(ValueError):
    pass


def make_organiser(*, email: str, name: str, organisation: str = "") -> tuple[Member, bool]:
    email = email.strip()
    if "@" not in email or any(c in email for c in "\r\n <>"):
        raise MemberError(f"{email!r} is not an email address")
    member = find_member_by_email(email)
    created = member is None
    if member is None:
        member = Member(email=email, name=name.strip(), organisation=organisation.strip())
        db.session.add(member)
    member.is_organiser = True
    member.active = True
    db.session.flush()
    return member, created
