"""Lists shown a page at a time: the page number comes from the query string, where anyone can type anything."""

from __future__ import annotations

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute

from ..extensions import db

# Far past any list this network will have, and small enough that the offset is an ordinary number everywhere.
MAX_PAGE = 100_000


def page_number(name: str = "page") -> int:
    """The page asked for in the query string: 1 for anything that is not a page number, at most MAX_PAGE."""
    value = request.args.get(name, "").strip()
    if not (value.isascii() and value.isdigit()):
        return 1
    return max(1, min(int(value), MAX_PAGE)) if len(value) <= 7 else MAX_PAGE


def paginate(query: Select, *, per_page: int) -> Pagination:
    """One page of `query`: `per_page` rows whatever the query string says, and the last page for a page past it."""
    page = db.paginate(query, page=page_number(), per_page=per_page, max_per_page=per_page, error_out=False)
    if page.pages and page.page > page.pages:
        page = db.paginate(query, page=page.pages, per_page=per_page, max_per_page=per_page, error_out=False)
    return page


def tabbed_page(query: Select, column: InstrumentedAttribute, tab: object, *, per_page: int) -> tuple[Pagination, dict]:
    """A list with a tab per value of `column`: one page of `query`, narrowed to `tab` unless it is None (all rows),
    and how many rows hold each value, for the numbers on the tabs."""
    if tab is not None:
        query = query.where(column == tab)
    counts: dict = dict(db.session.execute(select(column, func.count()).group_by(column)).all())
    return paginate(query, per_page=per_page), counts
