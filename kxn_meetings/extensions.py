"""Every Flask extension object, created once and bound in create_app()."""

from __future__ import annotations

import smtplib
import ssl
from typing import TYPE_CHECKING

import flask_login
import flask_mail
from flask import current_app, g, session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class LoginManager(flask_login.LoginManager):
    """Flask-Login, leaving the session alone on requests that never asked who is signed in: calendar apps and
    feed readers get answers without `Vary: Cookie`, and without the session-protection fingerprint (a SHA-512
    of address and browser) computed for a session that holds nothing to protect."""

    def _session_protection_failed(self) -> bool:
        if not session:
            return False
        return super()._session_protection_failed()

    def _update_remember_cookie(self, response):
        # Signing in or out, the only steps that ask for a remember-me cookie change, both load the user.
        if "_login_user" not in g and not current_app.config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST"):
            return response
        return super()._update_remember_cookie(response)


class MailConnection(flask_mail.Connection):
    """Flask-Mail's connection to the server its settings name, set up in Flask-Mail's order (implicit TLS or plain,
    then STARTTLS, then login) with what Flask-Mail's own set-up leaves out: MAIL_TIMEOUT, so a silent server cannot
    hang a worker or a request; verified TLS certificates (smtplib's default context verifies none, which would hand
    the password to whoever answers); and the socket closed when a step fails."""

    def configure_host(self) -> smtplib.SMTP:
        settings = self.mail
        timeout, context = current_app.config["MAIL_TIMEOUT"], ssl.create_default_context()
        host: smtplib.SMTP
        if settings.use_ssl:
            host = smtplib.SMTP_SSL(settings.server, settings.port, timeout=timeout, context=context)
        else:
            host = smtplib.SMTP(settings.server, settings.port, timeout=timeout)
        try:
            if settings.use_tls:
                host.starttls(context=context)
            if settings.username and settings.password:
                host.login(settings.username, settings.password)
        except BaseException:
            host.close()
            raise
        return host


class Mail(flask_mail.Mail):
    """Flask-Mail, the mail transport: its MAIL_* settings and its connection, under the outbox's pipelined sending."""

    def connect(self) -> MailConnection:
        # The settings are read when connecting, as every other setting is read when used, so the app's config stays
        # their one source (Flask-Mail would keep a copy made at start-up).
        app = current_app
        state = self.init_mail(app.config, app.debug, app.testing)
        return MailConnection(state)  # type: ignore[arg-type]  # Flask-Mail types its state as Mail; it is a _Mail


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# What models derive from: Flask-SQLAlchemy's db.Model, which type checkers see as the declarative Base it extends.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
mail = Mail()
csrf = CSRFProtect()
login_manager = LoginManager()
