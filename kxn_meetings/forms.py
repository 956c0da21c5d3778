"""WTForms classes. Every state-changing request goes through one of these (CSRF included)."""

from __future__ import annotations

import functools
import re

from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, _FlaskFormCSRF
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    fields,
)
from wtforms.csrf.core import CSRF
from wtforms.fields.choices import Choice
from wtforms.utils import unset_value
from wtforms.validators import (
    URL,
    DataRequired,
    EqualTo,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import Select

from .models import Audience, LabelledEnum, Region, Sector, StandingAnswer
from .security import csrf_token, link_csrf_token, link_csrf_token_valid
from .services.feedback import QUESTION, SCORE_LABELS, TEXT_MAX
from .services.rsvps import COMMENT_MAX_LENGTH
from .text import LINE_BREAKS, TEXT_AREA_BREAKS, character_name, first_control, is_email_address


class _SessionTokenCSRF(_FlaskFormCSRF):
    def generate_csrf_token(self, _csrf_token_field) -> str:
        return csrf_token()


class SiteForm(FlaskForm):
    """Every form of the site: Flask-WTF's, with the CSRF token every page of the session shows (security.csrf_token),
    signed once per session rather than once per form."""

    class Meta(FlaskForm.Meta):
        csrf_class = _SessionTokenCSRF


class _OneMessageForABadValue(fields.Field):
    """A value that cannot be read gets one plain message, not WTForms' own followed by the validators' too."""

    default_message = ""

    def __init__(self, *args, invalid_value_message: str | None = None, **kwargs) -> None:
        kwargs["invalid_value_message"] = invalid_value_message or self.default_message
        super().__init__(*args, **kwargs)

    def pre_validate(self, form) -> None:
        if self.process_errors:
            if any(value.strip() for value in self.raw_data or ()):
                raise StopValidation()
            self.errors[:] = []  # left empty: the field's validators say whether it is needed
        super().pre_validate(form)


class DateField(_OneMessageForABadValue, fields.DateField):
    default_message = "Enter a real date, for example 9 March 2027."


class TimeField(_OneMessageForABadValue, fields.TimeField):
    default_message = "Enter a time such as 15:00."


class IntegerField(_OneMessageForABadValue, fields.IntegerField):
    default_message = "Enter a whole number, such as 20."


UNUSABLE = "This contains characters that cannot be used."


def single_line(form, field) -> None:
    if isinstance(field.data, str) and any(c in LINE_BREAKS for c in field.data):
        raise ValidationError("Please keep this on one line.")


def _refuse_controls(field, allow: frozenset[str]) -> None:
    if isinstance(field.data, str) and (char := first_control(field.data, allow=allow)):
        raise ValidationError(f"{UNUSABLE} Remove {character_name(char)}.")


def no_control_chars(form, field) -> None:
    """For one-line fields, beside single_line (which has its own message for line breaks): a tab, NUL or other
    control character is refused too, since names and titles go into email headers, which refuse them."""
    _refuse_controls(field, LINE_BREAKS)


def no_control_chars_in_text(form, field) -> None:
    """For text areas: line breaks and tabs are text there; other control characters are not."""
    _refuse_controls(field, TEXT_AREA_BREAKS)


def email_address(form, field) -> None:
    if isinstance(field.data, str) and field.data and not is_email_address(field.data):
        if not field.data.isascii():
            raise ValidationError(
                "Email to an address with letters such as é cannot be sent from here: enter one with plain letters, "
                "like name@example.org."
            )
        raise ValidationError("Enter an email address like name@example.org.")


def strip(value):
    return value.strip() if isinstance(value, str) else value


_SPACES = re.compile(r"[^\S\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")  # a run of white space within a line


def single_spaced(value):
    """Stripped, and each run of white space within the line (tabs and no-break spaces too) one space. Names and
    titles are kept this way because a display name in a mail header is read back that way."""
    return _SPACES.sub(" ", value).strip() if isinstance(value, str) else value


EMAIL = [
    DataRequired("Enter your email address."),
    single_line,
    no_control_chars,
    email_address,
    Length(max=254),
]


class ConfirmForm(SiteForm):
    """A button that POSTs: used behind every link sent by email."""


class SignInForm(SiteForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    next = HiddenField()


class CodeForm(SiteForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    code = StringField(
        "Six-digit code",
        validators=[
            DataRequired("Enter the code from the email."),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="The code is six digits."),
        ],
    )
    next = HiddenField()


class PasswordSignInForm(SiteForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=500)])
    next = HiddenField()


class SetPasswordForm(SiteForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a password."), Length(min=12, max=500, message="Use at least 12 characters.")],
    )
    confirm = PasswordField("Repeat the password", validators=[EqualTo("password", "The two passwords differ.")])


def required_line(message: str, max_length: int = 200) -> list:
    """A single line that must be filled in; `message` says so when it is left empty."""
    return [DataRequired(message), single_line, no_control_chars, Length(max=max_length)]


def optional_line(max_length: int = 200) -> list:
    return [Optional(), single_line, no_control_chars, Length(max=max_length)]


def text_validators(max_length: int, required: str | None = None) -> list:
    """A text area's checks: optional, or required with `required` as the message when it is left empty."""
    return [DataRequired(required) if required else Optional(), no_control_chars_in_text, Length(max=max_length)]


NAME = required_line("Enter a name.")


OPTIONAL_LINE = optional_line()


def vocabulary_choices(vocabulary: type[LabelledEnum], unset: str) -> list[SelectChoice]:
    """A fixed vocabulary as a select's options, after one meaning "not said" (the value "")."""
    return [SelectChoice("", unset), *(SelectChoice(choice.value, choice.label) for choice in vocabulary)]


def _vocabulary_value(value):
    """A stored vocabulary member, or None, as its option's value ("" for none). Also a filter: WTForms leaves None
    uncoerced (a field left out of a POST, a member who has not said)."""
    return "" if value is None else str(value)


def _not_said_or_one_of(vocabulary: type[LabelledEnum], label: str) -> SelectField:
    return SelectField(
        label,
        choices=vocabulary_choices(vocabulary, "Not said"),
        coerce=_vocabulary_value,
        filters=[_vocabulary_value],
        invalid_choice_message=f"Choose a {label.lower()} from the list.",
    )


class MemberDetailsForm(SiteForm):
    name = StringField("Name", validators=NAME, filters=[single_spaced])
    organisation = StringField("Organisation", validators=OPTIONAL_LINE, filters=[single_spaced])
    job_title = StringField("Job title", validators=OPTIONAL_LINE, filters=[single_spaced])
    sector = _not_said_or_one_of(Sector, "Sector")
    region = _not_said_or_one_of(Region, "Region")


class ProfileForm(MemberDetailsForm):
    show_name_to_attendees = BooleanField("Show my name to the other members going to the same meeting")


class MemberForm(MemberDetailsForm):
    email = EmailField(
        "Email address", validators=[DataRequired("Enter an email address."), *EMAIL[1:]], filters=[strip]
    )
    is_organiser = BooleanField("Organiser (can manage meetings, members and mail)")
    active = BooleanField("Active (can sign in and receives invitations)", default=True)


class CsvImportForm(SiteForm):
    file = FileField(
        "CSV file", validators=[FileRequired("Choose a CSV file."), FileAllowed(["csv", "txt"], "Choose a .csv file.")]
    )


class CsvConfirmForm(SiteForm):
    payload = HiddenField(validators=[DataRequired()])


class DeleteAccountForm(SiteForm):
    email = EmailField("Type your email address to confirm", validators=EMAIL, filters=[strip])


# Meetings and RSVPs --------------------------------------------------------------------------------


@functools.cache
def time_zone_choices() -> list[SelectChoice]:
    from zoneinfo import available_timezones

    zones = sorted(
        z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    )
    return [SelectChoice(z, z.replace("_", " ")) for z in zones]


class LongListSelect(Select):
    """A select whose long list is the same on every page (the time zones): each option's markup is written once per
    process and reused, instead of being escaped and assembled again at every render of the meeting form."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        if kwargs or choice.render_kw:
            return super().render_option(choice, **kwargs)
        return _option_markup(choice.value, choice.label, bool(choice.selected))


@functools.lru_cache(maxsize=4096)
def _option_markup(value: str, label: str, selected: bool) -> str:
    return Select.render_option(Choice(value, label, selected, {}))


class AgendaItemForm(Form):
    start_time = TimeField("Time", validators=[Optional()])
    title = StringField("Item", validators=optional_line(300), filters=[single_spaced])
    speaker_name = StringField("Speaker", validators=OPTIONAL_LINE, filters=[single_spaced])
    speaker_role = StringField("Speaker's role", validators=OPTIONAL_LINE, filters=[single_spaced])
    speaker_organisation = StringField("Speaker's organisation", validators=OPTIONAL_LINE, filters=[single_spaced])

    def is_blank(self) -> bool:
        return not any(
            (
                self.title.data,
                self.speaker_name.data,
                self.speaker_role.data,
                self.speaker_organisation.data,
                self.start_time.data,
            )
        )


class WorkshopRoomForm(Form):
    name = StringField("Room name", validators=OPTIONAL_LINE, filters=[single_spaced])
    questions = TextAreaField("Questions for this room (one per line)", validators=text_validators(5000))

    def is_blank(self) -> bool:
        return not (self.name.data or (self.questions.data or "").strip())


CAPACITY_MESSAGE = "Capacity is a whole number of at least 1, or empty for no limit."


class BoundedFieldList(FieldList):
    """A FieldList that refuses more rows than `max_entries`, saying so with `limit` (worded with the limit in place
    of {}) and how many to remove, where WTForms would keep the first ones and drop the rest without a word. Up to
    SHOWN_AGAIN times the limit are kept, to be shown again with the refusal; rows beyond that are only counted, so a
    request of a hundred thousand rows builds no more fields than a form the page could have sent. `full_message` is
    what a press of "Add another" at the limit is told."""

    SHOWN_AGAIN = 2
    max_entries: int | None

    def __init__(self, unbound_field, limit: str, *args, **kwargs) -> None:
        super().__init__(unbound_field, *args, **kwargs)
        self.limit = limit
        self.sent = 0

    def process(self, formdata, data=unset_value, extra_filters=None) -> None:
        self.sent = len(set(self._extract_indices(self.name, formdata))) if formdata else 0
        limit = self.max_entries
        if limit is not None:
            self.max_entries = limit * self.SHOWN_AGAIN
        try:
            super().process(formdata, data, extra_filters)
        finally:
            self.max_entries = limit

    @property
    def at_limit(self) -> bool:
        return self.max_entries is not None and len(self.entries) >= self.max_entries

    @property
    def full_message(self) -> str:
        return self.limit.format(self.max_entries)

    def validate(self, form, extra_validators=()) -> bool:
        valid = super().validate(form, extra_validators)
        rows = max(self.sent, len(self.entries))
        if self.max_entries is not None and rows > self.max_entries:
            extra = rows - self.max_entries
            self.errors.append(f"{self.full_message} This form has {rows}: remove {extra} to save it.")
            return False
        return valid


class MeetingForm(SiteForm):
    title = StringField("Title", validators=required_line("Enter a title.", 300), filters=[single_spaced])
    theme = StringField("Theme", validators=optional_line(500), filters=[single_spaced])
    description = TextAreaField("Description (Markdown)", validators=text_validators(20000))
    date = DateField("Date", validators=[DataRequired("Enter the date, for example 9 March 2027.")])
    start_time = TimeField("Starts at", validators=[DataRequired("Enter a start time such as 15:00.")])
    end_time = TimeField("Ends at", validators=[DataRequired("Enter an end time such as 17:00.")])
    end_date = DateField("Ends on (date)", validators=[Optional()])
    # Offered when the clocks go back and the time given happens twice; the choices name both (see the view).
    start_fold = RadioField("Which start time?", choices=[], validators=[Optional()], validate_choice=False)
    end_fold = RadioField("Which end time?", choices=[], validators=[Optional()], validate_choice=False)
    timezone = SelectField(
        "Time zone",
        validators=[DataRequired()],
        choices=time_zone_choices,
        invalid_choice_message="Choose a time zone from the list.",
        widget=LongListSelect(),
    )
    join_url = StringField(
        "Online join link",
        validators=[
            Optional(),
            single_line,
            no_control_chars,
            Length(max=1000),
            URL(message="Enter a full link starting with https://"),
        ],
        filters=[strip],
    )
    location = StringField("Address (for an in-person meeting)", validators=optional_line(500), filters=[single_spaced])
    capacity = IntegerField(
        "Capacity",
        invalid_value_message=CAPACITY_MESSAGE,
        validators=[Optional(), NumberRange(min=1, max=100000, message=CAPACITY_MESSAGE)],
    )
    rsvp_deadline_date = DateField("Answer by: date", validators=[Optional()])
    rsvp_deadline_time = TimeField("Answer by: time", validators=[Optional()])
    visibility = RadioField(
        "Who can see it",
        choices=[SelectChoice("public", "Everyone (public)"), SelectChoice("members", "Members only (sign-in needed)")],
        default="public",
        invalid_choice_message="Choose who can see the meeting: everyone, or members only.",
    )
    contact_id = SelectField(
        "Contact",
        coerce=int,
        validators=[Optional()],
        invalid_choice_message="Choose a contact from the list, or no contact.",
    )
    series_id = SelectField(
        "Series",
        coerce=int,
        validators=[Optional()],
        invalid_choice_message="Choose a series from the list.",
    )
    agenda = BoundedFieldList(
        FormField(AgendaItemForm), "A meeting has at most {} agenda items.", min_entries=1, max_entries=40
    )
    rooms = BoundedFieldList(
        FormField(WorkshopRoomForm), "A meeting has at most {} workshop rooms.", min_entries=1, max_entries=20
    )
    minor_correction = BooleanField("Don't notify: minor correction (members are not emailed about this edit)")
    move_agenda = BooleanField("Move the agenda times with the meeting", default=True)
    # Rows whose time falls outside the meeting's, by index: shown as a warning, never refused (see the view).
    agenda_outside: frozenset[int] = frozenset()


class WalkInForm(SiteForm):
    member_id = SelectField(
        "Member who came without answering",
        coerce=int,
        validators=[DataRequired("Choose a member from the list.")],
        invalid_choice_message="Choose a member from the list.",
    )


class CancelMeetingForm(SiteForm):
    reason = TextAreaField(
        "Reason (sent to everyone invited)",
        validators=text_validators(2000, "Say briefly why the meeting is cancelled."),
    )


class RsvpForm(SiteForm):
    answer = RadioField(
        "Your answer",
        choices=[SelectChoice("going", "Going"), SelectChoice("maybe", "Maybe"), SelectChoice("declined", "Can't go")],
        validators=[DataRequired("Choose Going, Maybe or Can't go.")],
        invalid_choice_message="Choose Going, Maybe or Can't go.",
    )
    access_needs = TextAreaField("Access needs (only organisers see this)", validators=text_validators(2000))
    comment = TextAreaField("Comment", validators=text_validators(COMMENT_MAX_LENGTH))


class _LinkTokenCSRF(CSRF):
    """The CSRF check of a personal link's form (security.link_csrf_token): a token missing, made for another link
    or expired is refused as Flask-WTF refuses a session's, with the 400 page that says nothing was changed."""

    def setup_form(self, form):
        self.link_token = form.meta.csrf_context
        return super().setup_form(form)

    def generate_csrf_token(self, _csrf_token_field) -> str:
        return link_csrf_token(self.link_token)

    def validate_csrf_token(self, _form, field) -> None:
        if not link_csrf_token_valid(self.link_token, field.data):
            raise CSRFError("The CSRF token is missing, expired or not this link's.")


class LinkRsvpForm(RsvpForm):
    """The answer form on a personal link's page, whose CSRF token belongs to the link (`link_token`), not to a
    session: neither the page nor the answer sets or needs a cookie."""

    class Meta(RsvpForm.Meta):
        csrf_class = _LinkTokenCSRF

    def __init__(self, link_token: str, **kwargs) -> None:
        super().__init__(meta={"csrf_context": link_token}, **kwargs)


class InviteForm(SiteForm):
    recipients = RadioField(
        "Who to invite",
        default="all",
        choices=[
            SelectChoice("all", "All active members"),
            SelectChoice("followers", "All followers of the series"),
            SelectChoice("organisations", "Members of chosen organisations"),
            SelectChoice("addresses", "These email addresses"),
        ],
        invalid_choice_message=(
            "Choose who to invite: all members, the series' followers, chosen organisations or these addresses."
        ),
    )
    organisations = SelectMultipleField("Organisations", choices=[], validate_choice=False)
    addresses = TextAreaField(
        "Email addresses (one per line, or separated by commas; 'Name <email>' works too)",
        validators=text_validators(100_000),
    )
    create_members = BooleanField("Add the addresses that are not members yet as new members")


class MessageMembersForm(SiteForm):
    audience = RadioField(
        "Send to",
        choices=[SelectChoice(a.value, a.label) for a in Audience],
        validators=[DataRequired("Choose who gets it.")],
    )
    subject = StringField("Subject", validators=required_line("Write a subject."), filters=[single_spaced])
    body = TextAreaField("Message", validators=text_validators(5000, "Write the message."))
    send_key = HiddenField()


class FeedbackForm(SiteForm):
    score = RadioField(
        QUESTION,
        coerce=int,
        choices=[SelectChoice(score, f"{score}: {label}") for score, label in SCORE_LABELS.items()],
        validators=[DataRequired("Choose how useful the meeting was, from 1 to 5.")],
        invalid_choice_message="Choose how useful the meeting was, from 1 to 5.",
    )
    do_differently = TextAreaField("What will you do differently? (optional)", validators=text_validators(TEXT_MAX))
    future_topics = TextAreaField(
        "What should a future meeting cover? (optional)", validators=text_validators(TEXT_MAX)
    )


def _not_before_start(form, field) -> None:
    if form.start.data and field.data and field.data < form.start.data:
        raise ValidationError("The end of the period comes before its start.")


# The years a period may reach: the page counts a day either side of it and a year back from its end, which the
# calendar's first and last years (1 and 9999) leave no room for.
PERIOD_YEARS = (1900, 2999)


def _year_in_range(form, field) -> None:
    first, last = PERIOD_YEARS
    if field.data and not first <= field.data.year <= last:
        raise ValidationError(f"Enter a date between {first} and {last}.")


class InsightsPeriodForm(Form):
    """The period the Insights page counts, read from the query string (GET changes nothing: no CSRF token)."""

    start = DateField("From", validators=[Optional(), _year_in_range])
    end = DateField("To", validators=[Optional(), _year_in_range, _not_before_start])
    series = SelectField(
        "Series",
        default="",
        choices=[SelectChoice("", "All series")],
        invalid_choice_message="Choose a series from the list.",
    )


class SeriesForm(SiteForm):
    name = StringField("Name", validators=required_line("Give the series a name."), filters=[single_spaced])
    description = TextAreaField(
        "Description (shown on the series page and in its calendar)", validators=text_validators(5000)
    )


class FollowForm(SiteForm):
    standing = RadioField(
        "When a meeting of this series is published",
        default=StandingAnswer.INVITE.value,
        choices=[SelectChoice(s.value, s.label) for s in StandingAnswer],
        validators=[DataRequired("Choose how to follow the series.")],
        invalid_choice_message="Choose how to follow the series.",
    )
    in_feed = BooleanField("Put every meeting of the series in my personal calendar feed, not only those I go to")
