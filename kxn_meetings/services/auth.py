"""Sign-in by one-time link or code, organiser passwords, and server-side sessions."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
import unicodedata

from flask import current_app
from sqlalchemy import Integer, bindparam, delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..database import changed_rows, insert_where
from ..extensions import db
from ..models import LoginToken, Member, MemberSession, MessageKind, utcnow
from .outbox import queue_email_where

CODE_ATTEMPTS = 5


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _code_digest(token_hash: str, code: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{token_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def find_member_by_email(email: str) -> Member | None:
    return db.session.scalar(select(Member).where(func.lower(Member.email) == email.strip().lower()))


# Whom an unknown address's sign-in email is written for, to be thrown away.
STAND_IN = {"name": "Member of the network", "email": "member@example.invalid"}


def send_sign_in_link(email: str, next_path: str = "/") -> None:
    """Queue a sign-in email for an active member.

    An unknown or inactive address gets the same work, a token made, the email written and the same two INSERT
    statements run, each of which adds a row only for an active member: how long the answer takes must not tell
    whether an address belongs to one.
    """
    member = find_member_by_email(email)
    if member is not None and not member.active:
        member = None
    member_id = member.id if member is not None else None
    for_member = Member.id == bindparam("member_id", member_id, type_=Integer)
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**6):06d}"
    token_hash = _digest(token)
    minutes = current_app.config["LOGIN_TOKEN_MINUTES"]
    login = {
        "member_id": member_id,
        "token_hash": token_hash,
        "code_hash": _code_digest(token_hash, code),
        "next_path": next_path,
        "expires_at": utcnow() + dt.timedelta(minutes=minutes),
    }
    insert_where(LoginToken, login, for_member)
    queue_email_where(
        for_member,
        kind=MessageKind.SIGN_IN,
        to=member if member is not None else Member(**STAND_IN),
        subject=f"Your sign-in link for the {current_app.config['NETWORK_NAME']}",
        context={"token": token, "code": code, "minutes": minutes},
    )


def peek_link(token: str) -> LoginToken | None:
    """The unused, unexpired token behind a link, without using it."""
    row = db.session.scalar(select(LoginToken).where(LoginToken.token_hash == _digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def use_link(token: str) -> LoginToken | None:
    """Spend a link exactly once, even when two requests race for it."""
    now = utcnow()
    token_hash = _digest(token)
    spent = changed_rows(
        update(LoginToken)
        .where(LoginToken.token_hash == token_hash, LoginToken.used_at.is_(None), LoginToken.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent != 1:
        return None
    return db.session.scalar(select(LoginToken).where(LoginToken.token_hash == token_hash))


def use_code(email: str, code: str) -> LoginToken | None:
    """Spend the newest live token of this address if the code matches; a few wrong codes end it."""
    member = find_member_by_email(email)
    # Phones may type full-width or other script digits; compare their plain values.
    code = "".join(str(unicodedata.decimal(ch)) for ch in code if unicodedata.decimal(ch, None) is not None)
    if member is None or len(code) != 6:
        return None
    now = utcnow()
    row = db.session.scalar(
        select(LoginToken)
        .where(LoginToken.member_id == member.id, LoginToken.used_at.is_(None), LoginToken.expires_at > now)
        .order_by(LoginToken.created_at.desc(), LoginToken.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    if not hmac.compare_digest(row.code_hash, _code_digest(row.token_hash, code)):
        row.code_attempts += 1
        if row.code_attempts >= CODE_ATTEMPTS:
            row.used_at = now
        return None
    spent = changed_rows(
        update(LoginToken)
        .where(LoginToken.id == row.id, LoginToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return row if spent == 1 else None


def check_password(email: str, password: str) -> Member | None:
    """The organiser with this email and password; a password stops working when the organiser role goes."""
    member = find_member_by_email(email)
    if member is None or not member.password_hash or not member.active or not member.is_organiser:
        check_password_hash(_dummy_hash(), password)  # same work either way
        return None
    return member if check_password_hash(member.password_hash, password) else None


# PBKDF2 rather than werkzeug's default scrypt: scrypt takes 32 MiB per check, which sets every web
# worker's peak memory; 600,000 SHA-256 iterations is OWASP's current PBKDF2 recommendation.
PASSWORD_METHOD = "pbkdf2:sha256:600000"


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16), method=PASSWORD_METHOD)


def set_password(member: Member, password: str | None) -> None:
    member.password_hash = generate_password_hash(password, method=PASSWORD_METHOD) if password else None


def start_session(member: Member) -> MemberSession:
    row = MemberSession(id=secrets.token_urlsafe(32), member_id=member.id)
    db.session.add(row)
    db.session.flush()
    member.session_id = row.id  # type: ignore[attr-defined]
    return row


def end_session(session_id: str) -> None:
    db.session.execute(delete(MemberSession).where(MemberSession.id == session_id))


def end_all_sessions(member: Member) -> None:
    db.session.execute(delete(MemberSession).where(MemberSession.member_id == member.id))
