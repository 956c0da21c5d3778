"""The one way a request that changes something ends: commit when its work is done, roll back when it is not.

A view puts the service calls that change state inside `with transaction(form) as outcome:`. Leaving the block
commits. A ServiceError raised inside rolls back, each of its messages goes next to the form field it names
(flashed when it names none, the form has no such field, or there is no form), and `outcome.refused` is true: the
view then shows the form again with render_form() (status 422) or redirects. Any other exception rolls back too and
goes on to the error pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from flask import flash
from wtforms.form import BaseForm

from ..database import roll_back
from ..extensions import db
from ..services.errors import ServiceError

T = TypeVar("T")


@dataclass
class Outcome:
    """What became of a transaction: `error` holds the ServiceError that refused it, None once committed."""

    error: ServiceError | None = None

    @property
    def refused(self) -> bool:
        return self.error is not None


@contextmanager
def transaction(form: BaseForm | None = None, *, show: bool = True) -> Iterator[Outcome]:
    """Commit the block's work, or roll it back and show why (see the module). `show=False` leaves a refusal's
    message to the view, for answers that are not pages (a plain-text endpoint, a 413 page)."""
    outcome = Outcome()
    try:
        yield outcome
        db.session.commit()
    except ServiceError as error:
        roll_back()
        outcome.error = error
        if show:
            show_refusal(error, form)
    except BaseException:
        roll_back()
        raise


def show_refusal(error: ServiceError, form: BaseForm | None = None) -> None:
    """Each message of `error` next to its field of `form`; flashed when it has no field there. A message without a
    field is also kept as a form error, so that render_form() answers 422."""
    for problem in error.problems:
        field = form[problem.field] if form is not None and problem.field and problem.field in form else None
        if field is not None:
            field.errors = [*field.errors, problem.message]  # a tuple until the form is validated
            continue
        if form is not None:
            form.form_errors.append(problem.message)
        flash(problem.message, "error")


def created(form: BaseForm, create: Callable[[], T]) -> T | None:
    """A form page that adds something: when the submitted form checks out, `create()` in one transaction and what it
    made once committed; None on a GET, or when the form or the service refused (the messages are on the form)."""
    if not form.validate_on_submit():
        return None
    with transaction(form) as outcome:
        made = create()
    return None if outcome.refused else made
