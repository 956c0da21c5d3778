"""The one family of errors services raise when the rules refuse a request."""

from __future__ import annotations

from collections.abc import Iterable


class ServiceError(Exception):
    """A request the rules refuse, with the reason in words for the person who made it.

    `field` names the form field the message belongs next to; None when it is about the request as a whole. A rule
    that finds several problems at once (a form with more than one wrong field) raises one error that carries the
    others in `also`, so that every message is shown together.
    """

    def __init__(self, message: str, field: str | None = None, *, also: Iterable[ServiceError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.also = tuple(also)

    def __str__(self) -> str:
        return self.message

    @property
    def problems(self) -> tuple[ServiceError, ...]:
        """This error and those it carries, in the order they were found."""
        return (self, *self.also)
