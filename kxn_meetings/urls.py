"""URLs: absolute links for email and calendar files, built from BASE_URL and never from the request's Host; and
the converter for row ids in routes."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import current_app
from werkzeug.routing import IntegerConverter, Map

from .models import MAX_ID


def external_url(endpoint: str, **values) -> str:
    return external_url_builder()(endpoint, **values)


def external_url_builder() -> Callable[..., str]:
    """`external_url` bound once to BASE_URL, for a loop that builds many."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https")
    return lambda endpoint, **values: adapter.build(endpoint, values, force_external=True)


class IdConverter(IntegerConverter):
    """`<id:name>` in a route: a row id from 1 to MAX_ID. Any other number is a 404 before the view runs, so no
    database is asked about an id its column cannot hold."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)
