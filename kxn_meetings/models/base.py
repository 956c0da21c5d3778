"""Column types and mixins shared by every model."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Self, TypeVar

from sqlalchemy import DateTime, Enum, TypeDecorator
from sqlalchemy.orm import Mapped, mapped_column

# Ids are 32-bit integer columns: a larger number typed into a URL or a form names no row, and PostgreSQL
# refuses to compare with it ("integer out of range") rather than finding nothing.
MAX_ID = 2**31 - 1


def parse_id(value: object) -> int | None:
    """A row id as typed by someone (URL, query string, hidden field): a whole number from 1 to MAX_ID, else None."""
    text = value.strip() if isinstance(value, str) else ""
    # str.isdigit() also accepts digits int() reads differently or not at all ("²", "١"); ids are plain ASCII.
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


class LabelledEnum(enum.StrEnum):
    """A fixed vocabulary whose members carry the label people see: `DECLINED = "declined", "Can't go"`. A member
    written with its stored value alone, `GOING = "going"`, is labelled by it in sentence case ("Going";
    "local_authority" reads "Local authority")."""

    _value_: str
    label: str

    # `Answer("going")` looks a member up and never reaches __new__: only the class body calls it, with or without
    # a label.
    def __new__(cls, value: str, label: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label or value.replace("_", " ").capitalize()
        return member


class _MemberTest:
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def __get__(self, member: object, owner: type | None = None) -> bool:
        return isinstance(member, enum.Enum) and member.name in self.names


def member_test(*names: str) -> enum.nonmember[_MemberTest]:
    """`is_draft = member_test("DRAFT")` in a fixed vocabulary: a yes/no property, true of the members named, that
    code and templates read instead of comparing values (`status.is_draft`, not `status == "draft"`)."""
    return enum.nonmember(_MemberTest(frozenset(names)))


def member_tests(*names: str) -> tuple[enum.nonmember[_MemberTest], ...]:
    """One test per member named, for unpacking: `is_going, is_maybe = member_tests("GOING", "MAYBE")`."""
    return tuple(member_test(name) for name in names)


class column_is:
    """A row's yes/no property: whether `column` holds `value`. Compared with ==, so that a row not yet flushed,
    whose column may hold a plain string, answers as it will once saved."""

    def __init__(self, column: str, value: object) -> None:
        self.column = column
        self.value = value

    def __get__(self, row: object, owner: type | None = None) -> bool:
        return row is not None and getattr(row, self.column) == self.value


Choice = TypeVar("Choice", bound=enum.StrEnum)


def parse_choice(vocabulary: type[Choice], value: object) -> Choice | None:
    """The member of a fixed vocabulary (a status, a message kind) that `value` names by its stored value, as typed
    into a query string or a form or read from a plain string column; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return vocabulary(value)
    except ValueError:
        return None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An instant stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is stored; attach a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def stored_enum(cls: type[enum.Enum], name: str, *, length: int = 20) -> Enum:
    """A vocabulary stored as its values in a plain string column, checked on the way in."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
