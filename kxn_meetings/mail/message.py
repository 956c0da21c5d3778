"""The MIME layout of every email, built from an outbox row as the bytes handed to the SMTP server."""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import functools
import uuid
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import Row

from ..models import OutboxMessage, utcnow
from . import headers as mail_headers


def message_bytes(row: OutboxMessage | Row) -> bytes:
    """The one place that decides the MIME layout, as the bytes handed to the SMTP server.

    multipart/mixed
      multipart/alternative: text/plain, text/html, text/calendar; method=X (last, preferred by calendars)
      application/ics "invite.ics" (the same calendar, for clients that only look at attachments)
    Without a calendar: multipart/alternative of text/plain and text/html.

    Text parts are quoted-printable, so long HTML lines never break the 998-octet SMTP line limit; the
    calendar is base64, so its CRLF line endings arrive byte for byte. Every line is 7-bit and at most 78
    octets, but for a List-Unsubscribe link. Assembled directly (the email package's builder costs milliseconds a
    message, which an invitation round to the whole network feels); build_message() reads the result back for
    inspection.
    """
    # The Date is the time of this try, not of queueing: spam filters count a Date hours behind Received
    # against it. Retries are recognised by the unchanged Message-ID instead.
    headers = [_header("Subject", row.subject), _header("From", row.sender), _header("To", row.recipient)]
    if row.reply_to:
        headers.append(_header("Reply-To", row.reply_to))
    headers += [
        f"Date: {email.utils.format_datetime(utcnow())}",
        _header("Message-ID", row.message_id),
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
    ]
    if row.list_unsubscribe:
        # RFC 8058: mail clients show an unsubscribe button that POSTs `List-Unsubscribe=One-Click` to the link.
        # A URL cannot be folded: its line may pass 78 octets (RFC 5322 allows 998).
        headers += [f"List-Unsubscribe: {row.list_unsubscribe}", "List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    parts = [_text_part("plain", row.text_body)]
    if row.html_body:
        parts.append(_text_part("html", row.html_body))
    if row.calendar is not None and row.calendar_method:
        calendar = _base64(bytes(row.calendar))
        method = row.calendar_method
        parts.append(
            f'Content-Type: text/calendar; method="{method}"; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{calendar}"
        )
        attachment = (
            "Content-Type: application/ics\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n{calendar}'
        )
        body = _multipart("mixed", [_multipart("alternative", parts), attachment])
    elif len(parts) > 1:
        body = _multipart("alternative", parts)
    else:
        body = parts[0]
    return ("\r\n".join(headers) + "\r\n" + body).encode("ascii")


def build_message(row: OutboxMessage) -> EmailMessage:
    """The message as mail clients read it (message_bytes() parsed): for the Outbox page and the console."""
    return email.message_from_bytes(message_bytes(row), policy=email.policy.SMTP)


@functools.lru_cache(maxsize=1024)  # an invitation round repeats its subject and sender for every message
def _header(name: str, value: str) -> str:
    if name == "Subject":
        return mail_headers.text_header(name, value)
    if name in _ADDRESS_HEADERS:
        header = mail_headers.address_header(name, value)
        if header is not None:
            return header
    if value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}"
    # A non-ASCII address: the email package writes it as the header's kind requires.
    policy = email.policy.SMTP
    return policy.header_factory(name, value).fold(policy=policy).rstrip("\r\n")


_ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To"})


def _text_part(subtype: str, text: str) -> str:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
        f"\r\n\r\n{encoded.decode('ascii')}"
    )


def _base64(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(f"{encoded[start : start + 76]}\r\n" for start in range(0, len(encoded), 76))


def _multipart(subtype: str, parts: list[str]) -> str:
    # "=_" never occurs in quoted-printable or base64 text, so the boundary cannot appear inside a part.
    boundary = f"=_kxn{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{part.rstrip(chr(13) + chr(10))}\r\n" for part in parts)
    return f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n\r\n{inner}--{boundary}--\r\n'


def new_message_id() -> str:
    domain = urlsplit(current_app.config["BASE_URL"]).hostname or "kxn.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"
