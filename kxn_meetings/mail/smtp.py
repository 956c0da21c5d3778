"""The SMTP session: messages handed over one after another on one connection, the server's verdict on each read
only once the next is ready to go (pipelined sending). Flask-Mail makes the connection; its own send() would wait
for each verdict in turn."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import re
import smtplib

import flask_mail

from ..extensions import mail


def _connect() -> smtplib.SMTP:
    """An authenticated SMTP connection, made by Flask-Mail from its MAIL_* settings (see extensions.Mail)."""
    return mail.connect().configure_host()


def _disconnect(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@functools.lru_cache(maxsize=1024)  # every message of an invitation round has the same sender
def _envelope(address: str) -> str:
    """The address of `Name <address>` for MAIL FROM or RCPT TO; a non-ASCII one as Flask-Mail sends it (IDNA
    domain)."""
    _, bracket, tail = address.rpartition("<")
    if bracket and tail.endswith(">") and not any(c in tail for c in '"<\\ ()'):
        bare = tail[:-1]
    else:
        bare = email.utils.parseaddr(address)[1]
    return bare if bare.isascii() else flask_mail.sanitize_address(("", bare))


def _start(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """MAIL, RCPT, DATA and the message, the commands smtplib's sendmail() sends, except that the server's
    verdict on the message is left for _finish() to read. Raises as sendmail() does for a refusal before that.
    The addresses come from _envelope(), worked out before, while the server was busy."""
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.docmd("mail", f"from:<{sender}>")
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.docmd("rcpt", f"to:<{recipient}>")
    if code not in (250, 251):
        _after_refusal(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.docmd("data")
    if code != 354:
        _after_refusal(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    smtp.send(_dot_stuffed(data))


def _finish(smtp: smtplib.SMTP) -> None:
    """The server's verdict on the message _start() sent; raises SMTPDataError for a refusal."""
    code, reply = smtp.getreply()
    if code != 250:
        _after_refusal(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _after_refusal(smtp: smtplib.SMTP, code: int) -> None:
    """421: the server is closing the connection. Otherwise RSET, so the next message starts clean."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2): leading dots doubled, a line with one dot at the end."""
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


_LEADING_DOT = re.compile(rb"(?m)^\.")
