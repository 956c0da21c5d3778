"""The radio groups' options are written by the template, not by WTForms' widgets, for speed: the markup must stay
exactly what the widgets write, in every state a page shows (nothing chosen, one chosen, a refused choice)."""

from __future__ import annotations

import re

import pytest
from flask import render_template_string
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import RadioField, SelectChoice

from kxn_meetings.forms import FeedbackForm, FollowForm, MessageMembersForm, RsvpForm

GROUP = '{% from "_macros.html" import radio_group %}{{ radio_group(form[name]) }}'


def widget_markup(field) -> list[str]:
    return [f"{option()} {option.label()}" for option in field]


def template_markup(form, name: str) -> list[str]:
    html = render_template_string(GROUP, form=form, name=name)
    return re.findall(r'<div class="choice">(.*?)</div>', html)


@pytest.mark.parametrize(
    ("form_class", "name"),
    [(RsvpForm, "answer"), (FeedbackForm, "score"), (FollowForm, "standing"), (MessageMembersForm, "audience")],
)
def test_radio_options_are_written_as_the_widgets_write_them(app, form_class, name):
    with app.test_request_context(method="POST"):
        choices = [value for value, *_ in form_class(formdata=None)[name].iter_choices()]
        for chosen in [None, *choices, "not-a-choice", "<script>"]:
            data = MultiDict() if chosen is None else MultiDict({name: chosen})
            form = form_class(formdata=data)
            form.validate()
            assert template_markup(form, name) == widget_markup(form[name]), chosen
            assert len(template_markup(form, name)) == len(choices)
            if chosen in choices:
                assert [f'value="{chosen}"' in part for part in template_markup(form, name)] == [
                    "<input checked " in part for part in template_markup(form, name)
                ]


def test_a_radio_field_with_extra_attributes_is_written_by_its_widgets(app):
    class Extra(FlaskForm):
        plain = RadioField("Plain", choices=[SelectChoice("a", "A"), SelectChoice("b", "B", render_kw={"title": "B"})])
        styled = RadioField(
            "Styled", choices=[SelectChoice("a", "A"), SelectChoice("b", "B")], render_kw={"class": "wide"}
        )

    with app.test_request_context(method="POST"):
        form = Extra(formdata=MultiDict({"plain": "a", "styled": "b"}))
        for name in ("plain", "styled"):
            assert template_markup(form, name) == widget_markup(form[name])
        assert 'class="wide"' in "".join(template_markup(form, "styled"))
