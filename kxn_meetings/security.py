"""Request-wide protections: response headers, who is signed in, safe redirects, rate limits."""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, abort, request
from flask_login import current_user
from sqlalchemy import delete, func, select
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import db, login_manager
from .models import Member, MemberSession, RateLimitHit, utcnow

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_member_session)
    app.after_request(set_security_headers)


def load_member_session(session_id: str) -> Member | None:
    if not session_id or len(session_id) > 64:
        return None
    row = db.session.execute(
        select(MemberSession, Member).join(Member).where(MemberSession.id == session_id)
    ).first()
    if row is None or not row.Member.active:
        return None
    member = row.Member
    member.session_id = row.MemberSession.id  # type: ignore[attr-defined]
    return member


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_user_is_authenticated() and "Cache-Control" not in headers:
        headers["Cache-Control"] = "private, no-store"
    return response


def current_user_is_authenticated() -> bool:
    try:
        return bool(current_user and current_user.is_authenticated)
    except Exception:  # no request user (static files, errors before loading)
        return False


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: anything with a scheme, a host, a backslash or a control character is refused.

    The checks also run on the percent-decoded form, so a proxy or browser that decodes `%2F` or `%5C`
    cannot turn the path into another host.
    """
    if not target or not isinstance(target, str) or len(target) > 500:
        return default
    if any(c.isspace() for c in target):
        return default
    for form in (target, unquote(target)):
        if any(ord(c) < 32 or ord(c) == 127 for c in form) or "\\" in form:
            return default
        if not form.startswith("/") or form.startswith("//"):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return target


def require_organiser() -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    if not current_user.is_organiser:
        abort(403)


def client_address() -> str:
    return request.remote_addr or "unknown"


def hit_rate_limit(key: str, *, limit: int, window_seconds: int) -> None:
    """Count one attempt for key; raise 429 with Retry-After when the window already holds `limit`.

    Attempts live in the database so every app process shares the count.
    """
    now = utcnow()
    since = now - dt.timedelta(seconds=window_seconds)
    db.session.execute(delete(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.created_at < since))
    count, oldest = db.session.execute(
        select(func.count(RateLimitHit.id), func.min(RateLimitHit.created_at)).where(
            RateLimitHit.key == key, RateLimitHit.created_at >= since
        )
    ).one()
    if count >= limit:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
        retry = max(1, math.ceil((oldest + dt.timedelta(seconds=window_seconds) - now).total_seconds()))
        error = TooManyRequests("Too many attempts. Please wait a few minutes and try again.")
        error.retry_after = retry  # type: ignore[attr-defined]
        raise error
    db.session.add(RateLimitHit(key=key, created_at=now))

