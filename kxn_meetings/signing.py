"""Signatures the site makes under its secret key, for links and tokens that name one thing and cannot be forged:
series follow links, scribe links, the CSRF token of a personal link's form."""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app


def signature(message: str, *, key: str | bytes | None = None, size: int | None = None) -> str:
    """URL-safe base64, without padding, of the HMAC-SHA256 of `message` under `key` (the app's secret key when not
    given), cut to its first `size` bytes when given. Compare with hmac.compare_digest."""
    secret = current_app.secret_key if key is None else key
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    digest = hmac.new(raw, message.encode(), hashlib.sha256).digest()[:size]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
