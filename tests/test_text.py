"""The small text rules every layer applies (kxn_meetings.text): each tested once here, with the characters that
used to be treated differently from one place to another."""

from __future__ import annotations

import pytest

from kxn_meetings.text import (
    LINE_BREAKS,
    TEXT_AREA_BREAKS,
    character_name,
    first_control,
    is_control,
    is_email_address,
    slugify,
    without_controls,
)

# Refused everywhere a value must be text: C0 (NUL, tab, CR, LF, ESC), DEL, C1 (NEL, CSI) and the Unicode line
# and paragraph separators.
CONTROLS = ["\x00", "\t", "\r", "\n", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]
# Not controls, but invisible: bidi overrides and isolates, zero-width space, joiner and non-joiner, soft hyphen,
# byte-order mark, a private-use character. Refused only where `invisible` is asked for (addresses, file names).
INVISIBLE = ["\u202e", "\u202a", "\u2066", "\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff", "\ue000"]
TEXT = ["a", " ", "\u00a0", "é", "ß", "\u05d0", "\u4e2d", "😀"]


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_controls_and_line_separators_are_controls_either_way(char):
    assert is_control(char)
    assert is_control(char, invisible=True)
    assert first_control(f"Ann{char}Lee") == char


@pytest.mark.parametrize("char", INVISIBLE, ids=repr)
def test_invisible_characters_are_refused_only_when_asked(char):
    assert not is_control(char)
    assert first_control(f"Ann{char}Lee") is None
    assert first_control(f"Ann{char}Lee", invisible=True) == char


@pytest.mark.parametrize("char", TEXT, ids=repr)
def test_letters_spaces_and_emoji_are_text(char):
    assert not is_control(char, invisible=True)
    assert first_control(f"Ann{char}Lee", invisible=True) is None


def test_what_is_allowed_is_skipped_and_the_first_other_is_named():
    assert first_control("a\nb\tc", allow=TEXT_AREA_BREAKS) is None
    assert first_control("a\nb\x00c\x07", allow=TEXT_AREA_BREAKS) == "\x00"
    # A text area keeps tabs and line breaks; a vertical tab, form feed and NEL are control characters there.
    for char in LINE_BREAKS - TEXT_AREA_BREAKS:
        assert first_control(f"a{char}b", allow=TEXT_AREA_BREAKS) == char


def test_without_controls_drops_or_replaces_what_first_control_finds():
    value = "Ann\x00 Lee\u202e\tnotes\u2028end"
    assert without_controls(value) == "Ann Lee\u202enotesend"
    assert without_controls(value, allow=TEXT_AREA_BREAKS) == "Ann Lee\u202e\tnotes\u2028end"
    assert without_controls(value, invisible=True, replacement=" ") == "Ann  Lee  notes end"
    assert without_controls("plain text") == "plain text"


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\t", "a tab"),
        ("\n", "a line break"),
        ("\x00", "a NUL character"),
        ("\x7f", "a DEL character"),
        ("\u2028", "a line separator"),
        ("\x1b", "a control character (U+001B)"),
        ("\x9b", "a control character (U+009B)"),
        ("\u202e", "an invisible formatting character (U+202E)"),
        ("\u200b", "an invisible formatting character (U+200B)"),
    ],
)
def test_a_character_nobody_can_see_is_named_so_it_can_be_found(char, name):
    assert character_name(char) == name


@pytest.mark.parametrize(
    "email", ["ann@example.org", "ann.lee+kxn@vru.example.org", "O'Brien@example.org", "a" * 64 + "@example.org"]
)
def test_usable_email_addresses(email):
    """Usable means the outbox can write it into a message's headers too."""
    from kxn_meetings.services.outbox import format_address

    assert is_email_address(email)
    assert email in format_address("Ann Lee", email)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ann",
        "ann@",
        "@example.org",
        "ann@localhost",
        "ann@kxn.test",
        "ann@@example.org",
        '"a@b"@example.org',
        "ann lee@example.org",
        "Ann <ann@example.org>",
        "ann@example.org\r\nBcc: x@example.org",
        "ann\x00@example.org",
        "ann\u200b@example.org",
        "ann\u202e@example.org",
        "a@" + "b" * 250 + ".org",
        "é@exämple.org",
        "élodie@example.org",
        "ÜÜ@example.org",
        "ann@exämple.org",
    ],
    ids=repr,
)
def test_unusable_email_addresses(email):
    assert not is_email_address(email)


@pytest.mark.parametrize(
    ("text", "max_length", "slug"),
    [
        ("Lessons learned & future development", 80, "lessons-learned-future-development"),
        ("Café Réunion", 80, "cafe-reunion"),
        ("  --Hello--  ", 80, "hello"),
        ("one two three", 7, "one-two"),
        ("中文", 80, "fallback"),
        ("", 80, "fallback"),
    ],
)
def test_slugs(text, max_length, slug):
    assert slugify(text, max_length=max_length, fallback="fallback") == slug
