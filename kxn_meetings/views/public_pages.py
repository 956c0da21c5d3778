"""Pages that are the same for every visitor (a request with no session cookie): the meeting page, home, a
meeting's .ics and the notes feed. Each web process keeps what it last rendered for PUBLIC_PAGE_SECONDS and serves
it again, with an ETag (304 for a repeat), so a visitor's page costs a dictionary lookup rather than queries and a
template. What visitors see may lag a change by at most that long; members, whose pages hold their own answer,
are never served a visitor's page, and a page that set a cookie or a flash message is never kept. A signed-in
member's page is kept with holes for what is hers alone (page_for_members)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec

from flask import Flask, Response, current_app, g, request, session
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ..kept import Kept, kept
from ..security import csrf_token

P = ParamSpec("P")
KEPT = 256
PAGES = "kxn_public_pages"
SKIPPED_HEADERS = frozenset({"set-cookie", "date", "content-length", "vary"})


@dataclass(frozen=True)
class _Page:
    body: bytes
    headers: tuple[tuple[str, str], ...]


def init_app(app: Flask) -> None:
    app.extensions[PAGES] = Kept(KEPT)


def is_visitor() -> bool:
    """Whether the request comes without a session cookie: nobody signed in, and nothing of a session to read."""
    return current_app.session_interface.get_cookie_name(current_app) not in request.cookies


def _served(page: _Page) -> Response:
    response = Response(page.body, headers=list(page.headers))
    response.vary.add("Cookie")
    response.make_conditional(request)
    return response


def same_for_every_visitor(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    @wraps(view)
    def cached(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        ttl = current_app.config["PUBLIC_PAGE_SECONDS"]
        # Only the plain address is kept: one copy per page, which no query string can multiply.
        if ttl <= 0 or request.method != "GET" or request.query_string or not is_visitor():
            return view(*args, **kwargs)
        pages: Kept[_Page] = current_app.extensions[PAGES]
        key = request.path
        if (page := pages.get(key, ttl)) is not None:
            return _served(page)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code != 200 or response.direct_passthrough or "Set-Cookie" in response.headers:
            return response
        if session.modified or session.get("_flashes"):
            return response
        if not response.get_etag()[0]:
            response.add_etag()
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() not in SKIPPED_HEADERS)
        page = _Page(response.get_data(), headers)
        pages.keep(key, page)
        return _served(page)

    return cached


KEPT_PARTS = 128


def part_for_many(name: str, key: Hashable, render: Callable[[], str]) -> Markup:
    """A part of a page that many readers see alike (the notes panel, who else is coming), rendered once and kept
    per process under `key` for PUBLIC_PAGE_SECONDS, the lag the visitors' pages allow. A part rendered with a
    member's hole in it (page_for_members) is used for that page only: kept, a page without holes would show it."""

    ttl = current_app.config["PUBLIC_PAGE_SECONDS"]
    found = kept(name, KEPT_PARTS).get(key, ttl) if ttl > 0 else None
    if found is not None:
        return found
    part = Markup(render())
    if ttl > 0 and _MARKER not in part:
        kept(name, KEPT_PARTS).keep(key, part)
    return part


KEPT_MEMBER_PAGES = 64
# A marker no page can hold otherwise: NUL never reaches a page (forms refuse control characters) and the rest is
# drawn afresh by each process.
_MARKER = f"\x00{secrets.token_hex(8)}:"
CSRF_HOLE = "csrf"


def hole(name: str) -> str:
    """What a page kept by page_for_members() holds where each member's own `name` goes."""
    return f"{_MARKER}{name}\x00"


class SignedIn:
    """What base.html reads of the member signed in, for a page kept for many members: her name is a hole. Any other
    attribute is an error, not an empty string that every member would be shown."""

    is_authenticated = True
    is_organiser = False
    name = hole("name")

    def __getattr__(self, name: str):
        raise RuntimeError(f"a page kept for many members reads current_user.{name}: make it a hole or a key")


def page_for_members(key: Hashable, render: Callable[[], str], fill: Mapping[str, str], *, copy: object) -> str:
    """A signed-in page that members in the same state see alike but for a few values of their own: rendered once
    per `key` with a hole() where each goes, and kept per process for PUBLIC_PAGE_SECONDS; each request fills the
    holes from `fill` (hole name: that member's text, escaped) and with her own CSRF token. `key` and `copy` (the
    copy of what the page shows, services.meetings.meeting_to_read) name everything else on it: a page kept for
    another copy is rendered again. Not for a request with flash messages, which the page would show once and keep."""
    ttl = current_app.config["PUBLIC_PAGE_SECONDS"]

    def with_holes() -> str:
        field = current_app.config["WTF_CSRF_FIELD_NAME"]
        own = g.pop(field, None)
        setattr(g, field, hole(CSRF_HOLE))
        try:
            return render()
        finally:
            g.pop(field, None)
            if own is not None:
                setattr(g, field, own)

    if ttl <= 0:
        page = with_holes()
    else:
        pages: Kept[tuple[object, str]] = kept("kxn_member_pages", KEPT_MEMBER_PAGES)
        found = pages.get(key, ttl)
        page = found[1] if found is not None and found[0] is copy else pages.keep(key, (copy, with_holes()))[1]
    for name, text in {**fill, CSRF_HOLE: csrf_token()}.items():
        page = page.replace(hole(name), text)
    if _MARKER in page:
        raise RuntimeError("a page kept for many members has a hole nothing fills")
    return page
