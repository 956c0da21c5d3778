"""The three checks every organiser-only route owes, for a table of rows (method, path template, form data, what an
organiser gets) whose templates name keys of a `world` dict: a visitor is sent to sign in and a member is refused,
both changing nothing that `state()` reads; an organiser gets the expected status, and a POST changes something."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from kxn_meetings.extensions import db

Row = tuple[str, str, dict | None, int]


def ids(rows: list[Row]) -> list[str]:
    return [f"{method} {path}" for method, path, _, _ in rows]


def request(client, row: Row, world: dict):
    method, path, data, _ = row
    path = path.format(**world)
    if data is not None:
        data = {
            key.format(**world): value.format(**world) if isinstance(value, str) else value
            for key, value in data.items()
        }
    return path, client.open(path, method=method, data=data)


def _read(state: Callable[[], tuple]) -> tuple:
    db.session.expire_all()
    return state()


def visitor_is_sent_to_sign_in(client, row: Row, world: dict, state: Callable[[], tuple]) -> None:
    before = _read(state)
    path, response = request(client, row, world)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/sign-in"
    assert parse_qs(location.query)["next"] == [path]
    assert _read(state) == before


def member_is_refused(client, row: Row, world: dict, state: Callable[[], tuple]) -> None:
    before = _read(state)
    _, response = request(client, row, world)
    assert response.status_code == 403
    assert "You do not have access to this page" in response.get_data(as_text=True)
    assert _read(state) == before


def organiser_may(client, row: Row, world: dict, state: Callable[[], tuple]) -> None:
    before = _read(state)
    _, response = request(client, row, world)
    assert response.status_code == row[3]
    if row[0] == "POST":
        assert _read(state) != before
