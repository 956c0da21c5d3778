"""Subject and address headers written so that every reader gets back exactly the text that was typed.

Plain, short ASCII goes as it is. Anything else (non-ASCII, specials in a name, a long value, leading or trailing
space, text that looks like an encoded-word) is written as RFC 2047 encoded-words that cover the whole text,
its spaces included; one word ends and the next begins only between two characters, and the words are separated
by folding white space alone, which readers drop (RFC 2047 6.2). So no space is lost between words, no
encoded-word is empty and no line starts with a space that belongs to the text. Python's email package (the
default and the compat32 readers) and mailparser read these headers back unchanged; tests hold them to it.
"""

from __future__ import annotations

import binascii
import re

LINE = 78  # RFC 5322 2.1.1: lines of at most 78 characters
HARD_LINE = 998  # RFC 5322 2.1.1: and never more than 998
MAX_ADDRESS = 256  # <address> (RFC 5321 4.5.3.1.3: 254 characters at most)
WORD = 75  # RFC 2047 2: an encoded-word is at most 75 characters
_WRAPPING = len("=?utf-8?b?") + len("?=")
# RFC 2047 5(3): the only characters a "Q" word may carry as they are when it stands in a phrase (a display
# name). They are safe in a Subject too, so one set serves both.
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TEXT = {byte: chr(byte) if byte in _Q_LITERAL else f"={byte:02X}" for byte in range(256)}
_Q_TEXT[0x20] = "_"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOMS = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")  # a display name that needs neither quotes nor encoding
_SPECIALS = frozenset('()<>@,:;.\\"[]')
_QUOTED_NAME = re.compile(r'"((?:[^"\\]|\\.)*)" <(.*)>', re.DOTALL)


def text_header(name: str, value: str) -> str:
    """`Name: value` for unstructured text (Subject), folded to 78 characters."""
    if _plain(value) and len(name) + 2 + len(value) <= LINE:
        return f"{name}: {value}"
    return f"{name}: " + "\r\n ".join(encoded_words(value, len(name) + 2))


def address_header(name: str, value: str) -> str | None:
    """`Name: display name <address>` for one mailbox as services.outbox.format_address() writes it, with the
    display name plain or encoded. None when the address itself is not ASCII (the email package writes that)."""
    display, address = split_address(value)
    if not address.isascii() or not address.isprintable():
        return None
    if not display:
        return f"{name}: {address}"
    return _folded(f"{name}:", [*_phrase(display), f"<{address}>"])


def _phrase(display: str) -> list[str]:
    """A display name as words to be separated by one space each: plain atoms as they are, and each run of words
    that are not plain atoms as one encoded-word, the spaces inside it encoded.

    One encoded-word per run, never two side by side: between two adjacent encoded-words in a display name
    Python's email package (3.11) reads a space, where RFC 2047 and every other reader read none. An encoded-word
    may therefore exceed 75 characters; only a run that would not fit on a 998-character line is split."""
    words: list[str] = []
    run: list[str] = []
    for word in display.split(" "):
        if _ATOMS.fullmatch(word) and "=?" not in word:
            if run:
                words += _run(" ".join(run))
                run = []
            words.append(word)
        else:
            run.append(word)
    if run:
        words += _run(" ".join(run))
    return words


def _run(text: str) -> list[str]:
    [word] = encoded_words(text, 0, word=None)
    if len(word) + 1 + MAX_ADDRESS <= HARD_LINE:
        return [word]
    return encoded_words(text, 1)


def _folded(head: str, words: list[str]) -> str:
    """`head` and the words separated by single spaces, a line broken before a word that would pass 78 characters
    (never straight after `head`)."""
    lines = [f"{head} {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= LINE:
            lines[-1] += f" {word}"
        else:
            lines.append(f" {word}")
    return "\r\n".join(lines)


def split_address(value: str) -> tuple[str, str]:
    """Display name and address of `value` as email.headerregistry.Address writes one: the display name quoted
    (backslash before `"` and `\\`) when it holds a special character, plain otherwise."""
    if not value.endswith(">"):
        return "", value
    if value.startswith('"'):
        quoted = _QUOTED_NAME.fullmatch(value)
        if quoted:
            return re.sub(r"\\(.)", r"\1", quoted[1], flags=re.DOTALL), quoted[2]
    else:
        display, separator, address = value.partition(" <")
        if separator and _SPECIALS.isdisjoint(display):
            return display, address[:-1]
    return _parsed(value)


def _parsed(value: str) -> tuple[str, str]:
    """Anything else: as the email package reads it."""
    import email.policy

    [address] = email.policy.default.header_factory("To", value).addresses
    return address.display_name, address.addr_spec


def _plain(value: str) -> bool:
    """Text every reader takes literally: printable ASCII, no space at either end, nothing like an encoded-word."""
    return value.isascii() and value.isprintable() and value.strip(" ") == value and "=?" not in value


def encoded_words(text: str, used: int, word: int | None = WORD) -> list[str]:
    """`text` as encoded-words ("B" or "Q", whichever is shorter), one per line; the first line already holds
    `used` characters. Each word is at most `word` characters (one word when None) and ends on a character
    boundary."""
    data = text.encode("utf-8")
    if not data:
        return []
    q_length = sum(len(_Q_TEXT[byte]) for byte in data)
    kind = "q" if q_length <= 4 * -(-len(data) // 3) else "b"
    if word is None:
        return [_encoded_word(kind, data)]
    words: list[str] = []
    start = 0
    room = min(word, LINE - used) - _WRAPPING
    while start < len(data):
        end = _b_end(data, start, room) if kind == "b" else _q_end(data, start, room)
        words.append(_encoded_word(kind, data[start:end]))
        start = end
        room = min(word, LINE - 1) - _WRAPPING
    return words


def _encoded_word(kind: str, chunk: bytes) -> str:
    if kind == "b":
        return f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode('ascii')}?="
    return f"=?utf-8?q?{''.join(_Q_TEXT[byte] for byte in chunk)}?="


def _boundary(data: bytes, start: int, end: int) -> int:
    """`end` moved back to the start of a UTF-8 character, keeping at least one character."""
    if end >= len(data):
        return len(data)
    while end > start and data[end] & 0xC0 == 0x80:
        end -= 1
    if end == start:  # a single character longer than the room (cannot happen with 75-character words)
        end += 1
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end += 1
    return end


def _b_end(data: bytes, start: int, room: int) -> int:
    return _boundary(data, start, start + room // 4 * 3)


def _q_end(data: bytes, start: int, room: int) -> int:
    end = start
    length = 0
    while end < len(data):
        length += len(_Q_TEXT[data[end]])
        if length > room:
            break
        end += 1
    return _boundary(data, start, end)
