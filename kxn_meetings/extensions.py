"""Every Flask extension object, created once and bound in create_app()."""

from __future__ import annotations

from typing import TYPE_CHECKING

import flask_login
from flask import current_app, g, session
from flask_mail import Mail
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
