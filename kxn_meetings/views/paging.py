"""Lists shown a page at a time: the page number comes from the query string, where anyone can type anything."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Row, Select, func, select
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


@dataclass(frozen=True)
class RowsPage:
    """One page of rows that are not model objects (a grouped query), with what the pager macro reads."""

    items: list[Row]
    page: int
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def paginate_rows(query: Select, *, per_page: int) -> RowsPage:
    """paginate() for a query of rows: one count and one page, the last page for a page past it."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(page_number(), pages)
    items = list(db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all())
    return RowsPage(items, page, pages if total else 0, total)
