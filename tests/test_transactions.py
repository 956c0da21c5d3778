"""The one way a request ends (views/transactions.transaction): commit on success; roll back on a ServiceError and
show its message next to its field, or flash it; roll back on anything else and let it go on."""

from __future__ import annotations

import pytest
from flask import get_flashed_messages
from sqlalchemy import select
from wtforms import Form, StringField

from kxn_meetings.extensions import db
from kxn_meetings.models import Member
from kxn_meetings.services.errors import ServiceError
from kxn_meetings.views.form_pages import has_errors
from kxn_meetings.views.transactions import transaction


class NameForm(Form):
    name = StringField("Name")


def names() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(select(Member.name).order_by(Member.name)))


def add(name: str) -> None:
    db.session.add(Member(name=name, email=f"{name.lower()}@example.org"))
    db.session.flush()


def test_the_work_is_committed_when_the_block_ends(app):
    with app.test_request_context(method="POST"):
        with transaction(NameForm()) as outcome:
            add("Ann")
        assert not outcome.refused and outcome.error is None
        assert names() == ["Ann"]
        assert get_flashed_messages() == []


def test_a_refusal_rolls_back_and_its_message_goes_next_to_its_field(app):
    form = NameForm()
    with app.test_request_context(method="POST"):
        with transaction(form) as outcome:
            add("Ann")
            raise ServiceError("That name is taken.", field="name")
        assert outcome.refused and outcome.error is not None and outcome.error.field == "name"
        assert names() == []
        assert list(form.name.errors) == ["That name is taken."]
        assert get_flashed_messages() == []
        assert has_errors(form)


def test_a_refusal_without_a_field_of_the_form_is_flashed_and_still_refuses_the_form(app):
    form = NameForm()
    with app.test_request_context(method="POST"):
        with transaction(form) as outcome:
            add("Ann")
            raise ServiceError("Nothing can be saved now.", also=[ServiceError("Nor later.", field="colour")])
        assert outcome.refused and names() == []
        assert get_flashed_messages(with_categories=True) == [
            ("error", "Nothing can be saved now."),
            ("error", "Nor later."),
        ]
        assert form.form_errors == ["Nothing can be saved now.", "Nor later."]
        assert has_errors(form)


def test_every_problem_a_refusal_carries_is_shown(app):
    class TwoFields(NameForm):
        email = StringField("Email")

    form = TwoFields()
    with app.test_request_context(method="POST"):
        with transaction(form):
            raise ServiceError("Enter a name.", field="name", also=[ServiceError("Enter an email.", field="email")])
        assert (list(form.name.errors), list(form.email.errors)) == (["Enter a name."], ["Enter an email."])


def test_without_a_form_a_refusal_is_flashed_or_left_to_the_view(app):
    with app.test_request_context(method="POST"):
        with transaction() as outcome:
            raise ServiceError("Flashed.", field="name")
        with transaction(show=False) as quiet:
            raise ServiceError("Left to the view.")
        assert get_flashed_messages() == ["Flashed."]
        assert outcome.refused and quiet.refused and str(quiet.error) == "Left to the view."


def test_any_other_error_rolls_back_and_goes_on(app):
    with app.test_request_context(method="POST"):
        with pytest.raises(ZeroDivisionError), transaction(NameForm()):
            add("Ann")
            _ = 1 / 0
        assert names() == []
        assert get_flashed_messages() == []
