"""Pages that hold a form, and the one answer to a form that is refused.

A submission that fails validation gets the same page back with each message next to its field and status 422
(Unprocessable Content): the request was understood, its content was not acceptable. Browsers show the page
as they would a 200, while tests, monitoring and scripts can tell a refusal from a success without reading the
HTML. 400 stays for requests that cannot be understood at all (a form that had expired or came from elsewhere).
"""

from __future__ import annotations

from flask import abort, render_template, request
from wtforms import Field, FieldList, FormField
from wtforms.form import BaseForm

from ..forms import ConfirmForm

REFUSED = 422


def has_errors(form: BaseForm) -> bool:
    """Whether any field, including those of nested rows, holds a message (added by validation or by a view)."""
    return bool(getattr(form, "form_errors", None)) or any(_field_has_errors(field) for field in form)


def _field_has_errors(field: Field) -> bool:
    if isinstance(field, FormField):
        return has_errors(field.form)
    if isinstance(field, FieldList):
        return any(_field_has_errors(entry) for entry in field.entries)
    return bool(field.errors)


def refused(*forms: BaseForm) -> bool:
    return request.method == "POST" and any(has_errors(form) for form in forms)


def render_form(template: str, *, refused_anyway: bool = False, **context):
    """The page with its forms: status 422 after a POST in which any form shown has a message, or when the view
    refused the submission for a reason it flashed (refused_anyway), 200 otherwise."""
    forms = [value for value in context.values() if isinstance(value, BaseForm)]
    status = REFUSED if refused_anyway or refused(*forms) else 200
    return render_template(template, **context), status


def require_confirmation() -> None:
    """A one-button form (ConfirmForm: the CSRF token alone) that does not check out is a bad request."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
