"""Pages that are the same for every visitor (a request with no session cookie): the meeting page, home, a
meeting's .ics and the notes feed. Each web process keeps what it last rendered for PUBLIC_PAGE_SECONDS and serves
it again, with an ETag (304 for a repeat), so a visitor's page costs a dictionary lookup rather than queries and a
template. What visitors see may lag a change by at most that long; members, whose pages hold their own answer,
are never served from here, and a page that set a cookie or a flash message is never kept."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec

from flask import Flask, Response, current_app, request, session
from flask.typing import ResponseReturnValue

P = ParamSpec("P")
KEPT = 256
SKIPPED_HEADERS = frozenset({"set-cookie", "date", "content-length", "vary"})


@dataclass(frozen=True)
class _Page:
    rendered_at: float
    body: bytes
    headers: tuple[tuple[str, str], ...]


class _Pages:
    def __init__(self) -> None:
        self.pages: OrderedDict[str, _Page] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, ttl: float) -> _Page | None:
        with self.lock:
            page = self.pages.get(key)
            if page is None or time.monotonic() - page.rendered_at >= ttl:
                return None
            self.pages.move_to_end(key)
            return page

    def keep(self, key: str, page: _Page) -> None:
        with self.lock:
            self.pages[key] = page
            self.pages.move_to_end(key)
            while len(self.pages) > KEPT:
                self.pages.popitem(last=False)


def init_app(app: Flask) -> None:
    app.extensions["kxn_public_pages"] = _Pages()


def _visitor() -> bool:
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
        if ttl <= 0 or request.method != "GET" or request.query_string or not _visitor():
            return view(*args, **kwargs)
        pages: _Pages = current_app.extensions["kxn_public_pages"]
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
        page = _Page(time.monotonic(), response.get_data(), headers)
        pages.keep(key, page)
        return _served(page)

    return cached
