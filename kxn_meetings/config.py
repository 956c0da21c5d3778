"""Settings: code defaults, then instance/config.py, then KXN_* environment variables, then test config."""

from __future__ import annotations

import os
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "KXN_"
PLACEHOLDER_SECRET = "change-me"


class Setting(NamedTuple):
    name: str
    default: Any
    help: str
    declared_kind: type | None = None

    @property
    def kind(self) -> type:
        """How a value from the environment is read: as the default's type, unless declared (a default of None)."""
        if self.declared_kind is not None:
            return self.declared_kind
        return str if self.default is None else type(self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", PLACEHOLDER_SECRET, "Signs sessions and CSRF tokens. Required outside debug and testing."),
    Setting(
        "SQLALCHEMY_DATABASE_URI",
        None,
        "Database URL. Default: SQLite file instance/kxn.sqlite3. PostgreSQL: postgresql+psycopg://user@host/dbname",
    ),
    Setting(
        "BASE_URL",
        "http://127.0.0.1:5000",
        "Public address of the site; every link in email and calendar files is built from it.",
    ),
    Setting("NETWORK_NAME", "Knowledge Exchange Network", "Name shown on every page, in email and calendars."),
    Setting("TIMEZONE", "Europe/London", "IANA time zone offered by default for new meetings."),
    Setting("MAIL_SERVER", "", "SMTP host. Empty: mail is printed to the console and kept on the Outbox page."),
    Setting("MAIL_PORT", 25, "SMTP port."),
    Setting("MAIL_USE_TLS", False, "STARTTLS after connecting."),
    Setting("MAIL_USE_SSL", False, "Implicit TLS (usually port 465)."),
    Setting("MAIL_USERNAME", None, "SMTP user name."),
    Setting("MAIL_PASSWORD", None, "SMTP password."),
    Setting(
        "MAIL_DEFAULT_SENDER", "Knowledge Exchange Network <meetings@kxn.example.org>", "From address of every email."
    ),
    Setting("MAIL_TIMEOUT", 30.0, "Seconds to wait for the SMTP server."),
    Setting(
        "CALENDAR_ADDRESS", "calendar@kxn.example.org", "Organiser address in invitations; calendar replies go here."
    ),
    Setting(
        "REPLIES_TOKEN_ADDRESSES",
        False,
        "Invitations come from and name as organiser a personal reply address "
        "(calendar+TOKEN@domain), so a reply sent from another of the member's addresses still counts. "
        "The mailbox must accept plus addressing.",
    ),
    Setting(
        "REPLIES_REQUIRE_TOKEN",
        False,
        "Strict: a calendar reply counts only when sent to a personal reply address; needs REPLIES_TOKEN_ADDRESSES.",
    ),
    Setting(
        "REPLIES_INBOUND_SECRET",
        "",
        "Shared secret of POST /replies/inbound (Authorization: Bearer ...), "
        "for an inbound-mail service. Empty: the endpoint is off.",
    ),
    Setting("REPLIES_MAX_BYTES", 2 * 1024 * 1024, "Largest calendar reply message accepted, in bytes.", int),
    Setting("REPLIES_IMAP_HOST", "", "IMAP server of the calendar address's mailbox, read by `kxn replies fetch`."),
    Setting("REPLIES_IMAP_PORT", 993, "IMAP port."),
    Setting("REPLIES_IMAP_USER", "", "IMAP user name."),
    Setting("REPLIES_IMAP_PASSWORD", "", "IMAP password."),
    Setting("REPLIES_IMAP_FOLDER", "INBOX", "Folder whose unread messages are processed."),
    Setting(
        "REPLIES_IMAP_SSL",
        True,
        "Implicit TLS. Off: STARTTLS, or plain IMAP when the host is this machine (127.0.0.1, localhost).",
    ),
    Setting(
        "OUTBOX_MAX_ATTEMPTS",
        8,
        "Refusals by the mail server before a message is set aside for an organiser to retry; outages do not count.",
    ),
    Setting(
        "OUTBOX_RETRY_BASE_SECONDS",
        30,
        "First retry delay, doubling with each refusal (capped at six hours); "
        "also the wait while the server is unreachable.",
    ),
    Setting(
        "OUTBOX_LEASE_SECONDS",
        300,
        "How long a worker holds the messages it claims; it sends only in the first half, "
        "and other workers take over what is left once it ends.",
    ),
    Setting(
        "OUTBOX_BATCH_SIZE", 50, "Messages a worker claims at a time; one SMTP connection serves every batch of a pass."
    ),
    Setting("OUTBOX_SEND_RATE", 0.0, "Most messages a second per worker (0 = no limit)."),
    Setting("OUTBOX_POLL_SECONDS", 5.0, "How often an idle worker looks for new mail."),
    Setting(
        "OUTBOX_DELIVER_AFTER_COMMIT", False, "Web process delivers its own mail right after the commit (development)."
    ),
    Setting("UPDATE_WINDOW_SECONDS", 300, "Edits to a meeting within this many seconds are announced as one update."),
    Setting("REMINDER_HOURS", 24, "How long before a meeting its reminder is sent."),
    Setting(
        "FEED_VERSION_SECONDS",
        5.0,
        "How long a web process reuses the calendar feed's version before reading it again (apps poll hourly).",
    ),
    Setting(
        "PUBLIC_PAGE_SECONDS",
        5.0,
        "How long a page the same for every visitor is reused; visitors see a change at most this late. 0: never.",
    ),
    Setting(
        "INSIGHTS_SECONDS",
        60.0,
        "How long a web process reuses the Insights figures of a period; they lag a change by at most this. 0: never.",
    ),
    Setting("LOGIN_TOKEN_MINUTES", 15, "Lifetime of a sign-in link and code."),
    Setting("LOGIN_RATE_LIMIT", 5, "Sign-in emails, codes and passwords tried per email address per window."),
    Setting(
        "LOGIN_RATE_LIMIT_PER_CLIENT",
        50,
        "Sign-in attempts per client (IP) address per window; "
        "higher than per email because a whole office may share one address.",
    ),
    Setting("LOGIN_RATE_WINDOW_SECONDS", 900, "Window of the sign-in rate limit."),
    Setting("NOTES_MAX_UPLOAD_MB", 20, "Largest file, in megabytes, that can be attached to meeting notes."),
    Setting("NOTES_UPLOAD_DIR", "", "Folder for files attached to notes. Empty: uploads/ in the instance folder."),
    Setting("SESSION_COOKIE_SECURE", None, "Secure session cookie. Default: on when BASE_URL is https.", bool),
    Setting("TRUSTED_PROXIES", 0, "Reverse proxies in front of the app whose X-Forwarded-* headers to trust."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    pass


def _coerce(setting: Setting, raw: str) -> Any:
    if setting.kind is bool:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigError(f"{ENV_PREFIX}{setting.name} must be true or false, not {raw!r}")
    if setting.kind in (int, float):
        try:
            return setting.kind(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{setting.name} must be a number, not {raw!r}") from None
    return raw


def defaults() -> dict[str, Any]:
    values = {s.name: s.default for s in SETTINGS}
    values.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="kxn_session",
        PERMANENT_SESSION_LIFETIME=60 * 60 * 24 * 30,
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    return values


def from_environ(environ: os._Environ | dict[str, str] = os.environ) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        setting = _BY_NAME.get(name)
        values[name] = _coerce(setting, raw) if setting else raw
    return values


def finalise(config: dict[str, Any], *, instance_path: str, debug: bool) -> None:
    """Fill derived settings and refuse to start on unusable ones."""
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(instance_path, "kxn.sqlite3")
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = config["BASE_URL"].startswith("https://")
    try:
        ZoneInfo(config["TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"KXN_TIMEZONE {config['TIMEZONE']!r} is not an IANA time zone such as Europe/London"
        ) from None
    for name in (
        "MAIL_PORT",
        "OUTBOX_MAX_ATTEMPTS",
        "OUTBOX_BATCH_SIZE",
        "LOGIN_TOKEN_MINUTES",
        "LOGIN_RATE_LIMIT",
        "LOGIN_RATE_LIMIT_PER_CLIENT",
        "LOGIN_RATE_WINDOW_SECONDS",
        "NOTES_MAX_UPLOAD_MB",
    ):
        if not isinstance(config.get(name), int) or config[name] < 1:
            raise ConfigError(f"{name} must be a whole number of at least 1")
    if not config.get("NOTES_UPLOAD_DIR"):
        config["NOTES_UPLOAD_DIR"] = os.path.join(instance_path, "uploads")
    # Room for the largest attachment plus the rest of the form it comes in.
    upload_request = (config["NOTES_MAX_UPLOAD_MB"] + 1) * 1024 * 1024
    config["MAX_CONTENT_LENGTH"] = max(config.get("MAX_CONTENT_LENGTH") or 0, upload_request)
    if config.get("REPLIES_REQUIRE_TOKEN") and not config.get("REPLIES_TOKEN_ADDRESSES"):
        raise ConfigError(
            "KXN_REPLIES_REQUIRE_TOKEN needs KXN_REPLIES_TOKEN_ADDRESSES: without personal reply "
            "addresses no calendar reply could ever count"
        )
    config.setdefault("MAIL_SUPPRESS_SEND", False)
    if not (debug or config.get("TESTING")):
        secret = config.get("SECRET_KEY") or ""
        if secret == PLACEHOLDER_SECRET or len(str(secret)) < 24:
            raise ConfigError(
                "No real secret key: set KXN_SECRET_KEY, e.g. "
                "export KXN_SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(32))')\""
            )
