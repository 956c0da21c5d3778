"""Request-wide protections: response headers, who is signed in, safe redirects, rate limits."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import flask
from flask import Flask, Response, abort, current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature
from sqlalchemy import bindparam, delete, func, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import cached_property

from .database import begin_write
from .extensions import db, login_manager
from .kept import Kept, kept
from .models import Member, MemberSession, RateLimitHit, Rsvp, utcnow
from .signing import signature
from .text import first_control

P = ParamSpec("P")
R = TypeVar("R")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """WSGI middleware adding SECURITY_HEADERS to every response (pages, files, errors) that does not set its own.

    Added where the headers are a plain list, at start_response, so the cost per request stays a few
    microseconds: calendar apps poll the feeds at every refresh.
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(header for header in SECURITY_HEADERS if header[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


KEPT_SESSION_COOKIES = 1024


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building a signer for requests that carry no session cookie
    (visitors, calendar apps and feed readers), with one signer per secret key rather than per request, and with
    each cookie's signature checked once per process: a cookie seen before (the same bytes, under the same keys)
    gives back what it held without the HMAC, base64 and JSON again, a tenth of a signed-in member's meeting page.
    Its age is still checked on every request against the session's lifetime, as Flask checks it; at most
    KEPT_SESSION_COOKIES are kept, and only those holding plain values (which a request can replace but not change
    in place)."""

    def __init__(self) -> None:
        self._signer: tuple = (None, None)

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        made_for, signer = self._signer
        if made_for != keys:
            signer = super().get_signing_serializer(app)
            self._signer = (keys, signer)
        return signer

    def open_session(self, app: Flask, request):
        value = request.cookies.get(self.get_cookie_name(app))
        if app.secret_key and not value:
            return self.session_class()
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        store: Kept[tuple[float, dict]] = kept("kxn_session_cookies", KEPT_SESSION_COOKIES)
        key = (self._signer[0], value)
        if (found := store.get(key)) is not None and 0 <= time.time() - found[0] <= max_age:
            return self.session_class(found[1])
        try:
            data, signed_at = signer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, PLAIN) for v in data.values()):
            store.keep(key, (signed_at.timestamp(), dict(data)))
        return self.session_class(data)


PLAIN = (str, int, float, bool, type(None))


def init_app(app: Flask) -> None:
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_member_session)
    app.session_interface = SessionInterface()
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
    app.request_class = Request
    app.before_request(refuse_nul_in_path)
    app.after_request(keep_private_pages_out_of_caches)


class Request(flask.Request):
    """Query-string values lose any NUL character: no page takes one, and PostgreSQL refuses it in text, so a
    search or a page number typed with one is read as if typed without it."""

    @cached_property
    def args(self) -> MultiDict[str, str]:
        args = flask.Request.args.fget(self)  # type: ignore[attr-defined]
        if not any("\x00" in key or "\x00" in value for key, value in args.items(multi=True)):
            return args
        return self.parameter_storage_class(
            (key.replace("\x00", ""), value.replace("\x00", "")) for key, value in args.items(multi=True)
        )


def refuse_nul_in_path() -> None:
    """No page has a NUL character in its address: a 404 before a view hands one to a query."""
    if "\x00" in request.path:
        abort(404)


ANSWER_TO = "kxn_answer_to"
ANSWERS_READ = "kxn_answers_read"


@functools.cache
def _session_statement(with_answer: bool):
    """Built once per process: it runs on every signed-in request; `with_answer`, it also reads the member's answer
    to one meeting."""
    query = select(MemberSession.id.label("session_id"), Member).join(Member, Member.id == MemberSession.member_id)
    if with_answer:
        answer = (Rsvp.member_id == Member.id) & (Rsvp.meeting_id == bindparam("meeting_id"))
        query = query.add_columns(Rsvp).outerjoin(Rsvp, answer)
    return query.where(MemberSession.id == bindparam("id"))


def prefetch_answer(meeting_id: int) -> None:
    """Have the member's session, when this request reads it, read her answer to the meeting in the same statement:
    a signed-in page that shows it then makes one round trip to the database, not two. Nothing, once the request
    knows who is signed in."""
    if "_login_user" not in g:
        setattr(g, ANSWER_TO, meeting_id)


@dataclass(frozen=True)
class Prefetched:
    rsvp: Rsvp | None


def prefetched_answer(meeting_id: int, member_id: int) -> Prefetched | None:
    """The member's answer to the meeting as her session's load read it (prefetch_answer), or None when it was not
    read so. Given once: whatever asks again reads it afresh."""
    found: dict[tuple[int, int], Rsvp | None] = g.pop(ANSWERS_READ, {})
    key = (meeting_id, member_id)
    return Prefetched(found[key]) if key in found else None


def load_member_session(session_id: str) -> Member | None:
    if not session_id or len(session_id) > 64:
        return None
    meeting_id = g.pop(ANSWER_TO, None)
    params: dict[str, object] = {"id": session_id, "meeting_id": meeting_id}
    row = db.session.execute(_session_statement(meeting_id is not None), params).first()
    if row is None or not row.Member.active:
        return None
    member = row.Member
    member.session_id = row.session_id
    if meeting_id is not None:
        setattr(g, ANSWERS_READ, {(meeting_id, member.id): row.Rsvp})
    return member


KEPT_CSRF_TOKENS = 4096


def csrf_token() -> str:
    """This request's CSRF token (Flask-WTF's generate_csrf), signed once per session's token rather than on every
    page that shows a form: signing it (a timestamp, an HMAC, base64) was an eighth of a signed-in member's meeting
    page. A token that never expires (WTF_CSRF_TIME_LIMIT None, the default) is kept for as long as it is in use;
    with a time limit, a signed one is handed out for at most a sixtieth of it, so it is accepted for nearly as long
    as a fresh one. The templates' csrf_token() is this."""
    field = current_app.config["WTF_CSRF_FIELD_NAME"]
    if (given := g.get(field)) is not None:
        return given
    limit = current_app.config["WTF_CSRF_TIME_LIMIT"]
    secret = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    signed: Kept[str] = kept("kxn_csrf_tokens", KEPT_CSRF_TOKENS)
    raw = flask.session.get(field)
    token = None if raw is None else signed.get((secret, raw), None if limit is None else limit / 60)
    if token is None:
        token = generate_csrf()  # which gives her session a token first if it has none
        signed.keep((secret, flask.session[field]), token)
    setattr(g, field, token)
    return token


# A link token signed a little ahead of the clock (another process's clock) is still accepted.
LINK_CSRF_SKEW_SECONDS = 60


def link_csrf_token(link_token: str) -> str:
    """The CSRF token of the answer form on a personal link's page: the time it was made and an HMAC of that time
    and the link under the secret key. It is bound to the link, not to a session, so the page a member opens from
    her email sets no cookie and her answer needs none: a forged POST would need the link itself, which already
    answers for her. With WTF_CSRF_TIME_LIMIT set it expires as a session's token does."""
    stamp = str(int(time.time()))
    return f"{stamp}.{signature(_link_form_message(stamp, link_token), key=_csrf_keys()[0])}"


def link_csrf_token_valid(link_token: str, value: object) -> bool:
    """Whether `value` is a token link_csrf_token() made for this link, under the secret key or one of its
    fallbacks, and (with a time limit) not older than the limit."""
    if not isinstance(value, str) or value.count(".") != 1:
        return False
    stamp, signed = value.split(".")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    made, now = int(stamp), time.time()
    limit = current_app.config["WTF_CSRF_TIME_LIMIT"]
    if made > now + LINK_CSRF_SKEW_SECONDS or (limit is not None and now - made > limit):
        return False
    message = _link_form_message(stamp, link_token)
    return any(hmac.compare_digest(signed, signature(message, key=key)) for key in _csrf_keys())


def _csrf_keys() -> list[str | bytes]:
    config = current_app.config
    first = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    return [first, *(config.get("SECRET_KEY_FALLBACKS") or ())]


def _link_form_message(stamp: str, link_token: str) -> str:
    return f"personal-link-form:{stamp}:{link_token}"


def keep_private_pages_out_of_caches(response: Response) -> Response:
    """What a signed-in member sees is for them alone, unless the view said otherwise."""
    if "Cache-Control" not in response.headers and _signed_in():
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _signed_in() -> bool:
    """Whether this request is (or has just become) a member's. Requests that never asked who is signed in are
    judged by their session cookie, without reading it: touching the session would add `Vary: Cookie` to
    answers that are the same for everyone, such as the calendar feed."""
    user = g.get("_login_user")
    if user is not None:
        return bool(user.is_authenticated)
    return current_app.session_interface.get_cookie_name(current_app) in request.cookies


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
        if first_control(form, invisible=True) or "\\" in form:
            return default
        if not form.startswith("/") or form.startswith("//"):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return target


def signed_in_member() -> Member | None:
    """The member signed in, as the model object (not Flask-Login's proxy), or None for a visitor."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def is_organiser() -> bool:
    return bool(current_user.is_authenticated and current_user.is_organiser)


def organiser_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """The one guard of organisers' pages and actions: a visitor is sent to sign in first, and anyone else signed
    in who is not an organiser gets 403. Checked before the view runs, so before it looks anything up."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_organiser:
            abort(403)
        return view(*args, **kwargs)

    return guarded


def client_address() -> str:
    return request.remote_addr or "unknown"


def hit_rate_limit(key: str, *, limit: int, window_seconds: int) -> None:
    """Count one attempt for key; raise 429 with Retry-After when the window already holds `limit`.

    Attempts live in the database so every app process shares the count. Counted on GETs too (a sign-in link
    that does not work), whose transaction began as a reader.
    """
    begin_write()
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
        error.retry_after = retry
        raise error
    db.session.add(RateLimitHit(key=key, created_at=now))
