"""WTForms classes. Every state-changing request goes through one of these (CSRF included)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp, ValidationError


def single_line(form, field) -> None:
    if field.data and ("\r" in field.data or "\n" in field.data):
        raise ValidationError("Please keep this on one line.")


def no_control_chars(form, field) -> None:
    if field.data and any(ord(c) < 32 and c not in "\r\n\t" for c in field.data):
        raise ValidationError("This contains characters that cannot be used.")


def strip(value):
    return value.strip() if isinstance(value, str) else value


EMAIL = [DataRequired("Enter your email address."), single_line,
         Email("Enter an email address like name@example.org.", check_deliverability=False), Length(max=254)]


class ConfirmForm(FlaskForm):
    """A button that POSTs: used behind every link sent by email."""


class SignInForm(FlaskForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    next = HiddenField()


class CodeForm(FlaskForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    code = StringField("Six-digit code", validators=[DataRequired("Enter the code from the email."),
                                                     Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="The code is six digits.")])
    next = HiddenField()


class PasswordSignInForm(FlaskForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=500)])
    next = HiddenField()


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("Enter a password."), Length(min=12, max=500, message="Use at least 12 characters.")])
    confirm = PasswordField("Repeat the password", validators=[EqualTo("password", "The two passwords differ.")])


NAME = [DataRequired("Enter a name."), single_line, no_control_chars, Length(max=200)]
OPTIONAL_LINE = [Optional(), single_line, no_control_chars, Length(max=200)]


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=NAME, filters=[strip])
    organisation = StringField("Organisation", validators=OPTIONAL_LINE, filters=[strip])
    job_title = StringField("Job title", validators=OPTIONAL_LINE, filters=[strip])


class MemberForm(ProfileForm):
    email = EmailField("Email address", validators=EMAIL, filters=[strip])
    is_organiser = BooleanField("Organiser (can manage meetings, members and mail)")
    active = BooleanField("Active (can sign in and receives invitations)", default=True)


class CsvImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file."),
                                              FileAllowed(["csv", "txt"], "Choose a .csv file.")])


class CsvConfirmForm(FlaskForm):
    payload = HiddenField(validators=[DataRequired()])


class DeleteAccountForm(FlaskForm):
    email = EmailField("Type your email address to confirm", validators=EMAIL, filters=[strip])
