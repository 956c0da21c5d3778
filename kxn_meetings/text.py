"""Small rules about text that forms, services, mail and models all apply: which characters a value may hold,
whether an email address is usable, and slugs. Pure functions, importable from every layer."""

from __future__ import annotations

import re
import unicodedata

# Everything str.splitlines() breaks at: a one-line value that holds one would become two lines in an email
# header, a calendar file or a CSV export.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# What a text area keeps as text: tabs and line breaks as browsers send them, and the line and paragraph
# separators word processors paste. Everything else LINE_BREAKS holds is a control character.
TEXT_AREA_BREAKS = frozenset("\t\r\n\u2028\u2029")

EMAIL_MAX = 254

_NAMES = {
    "\t": "tab",
    "\n": "line break",
    "\r": "line break",
    "\x00": "NUL character",
    "\x7f": "DEL character",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}


def is_control(char: str, *, invisible: bool = False) -> bool:
    """A control character (C0, DEL, C1: tab, CR and LF included) or a line or paragraph separator (U+2028/2029).

    With `invisible`, also every other character that is not text: format characters (bidi overrides, zero-width
    spaces and joiners, the soft hyphen, the byte-order mark), private-use, unassigned and lone surrogates. Those
    are fine inside names and notes (a zero-width joiner is part of some scripts and emoji), but not in an email
    address or a file name, where they only disguise one value as another.
    """
    category = unicodedata.category(char)
    return category in ("Cc", "Zl", "Zp") or (invisible and category[0] == "C")


def first_control(text: str, *, allow: frozenset[str] = frozenset(), invisible: bool = False) -> str | None:
    """The first character of `text` that is_control() and `allow` does not hold, or None."""
    if text.isprintable():  # printable text holds none: only the rest needs the closer look
        return None
    return next((c for c in text if c not in allow and is_control(c, invisible=invisible)), None)


def without_controls(
    text: str, *, allow: frozenset[str] = frozenset(), invisible: bool = False, replacement: str = ""
) -> str:
    """`text` with every character first_control() would find replaced by `replacement`."""
    if text.isprintable():
        return text
    return "".join(replacement if c not in allow and is_control(c, invisible=invisible) else c for c in text)


def character_name(char: str) -> str:
    """How a message names a character a person cannot see: 'a tab', 'a control character (U+001B)'."""
    if char in _NAMES:
        return f"a {_NAMES[char]}"
    kind = "an invisible formatting character" if unicodedata.category(char) == "Cf" else "a control character"
    return f"{kind} (U+{ord(char):04X})"


def is_email_address(email: str) -> bool:
    """One mailbox address that mail servers take: a single @, at most 254 characters, a domain with a dot that is
    not reserved (example.test, localhost), no white space or control characters, and ASCII only: an address with
    letters such as é needs SMTPUTF8 of every server on its way, which the outbox does not ask for (its headers
    would refuse it). Deliverability is not asked."""
    if not email or len(email) > EMAIL_MAX or email.count("@") != 1 or not email.isascii():
        return False
    # Imported on first use: a web worker that serves pages, files and answers never needs it (half a MiB).
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def slugify(text: str, *, max_length: int, fallback: str) -> str:
    """'Lessons learned & future development' -> 'lessons-learned-future-development': ASCII letters and digits
    joined by hyphens, at most `max_length` characters; `fallback` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or fallback
