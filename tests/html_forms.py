"""Reading pages in tests: what a browser would submit from a form, field errors, and the text a person reads."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ParsedForm:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)

    def values(self) -> dict[str, str]:
        """Single-valued view (the last value wins), as most tests want it."""
        return dict(self.fields)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[ParsedForm] = []
        self._form: ParsedForm | None = None
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._option: list | None = None
        self._textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = ParsedForm(action=a.get("action") or "", method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = (a.get("type") or "text").lower()
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"radio", "checkbox"} and "checked" not in a:
                return
            self._form.fields.append((name, a.get("value") or ("on" if kind in {"radio", "checkbox"} else "")))
        elif tag == "select" and name:
            self._select = (name, [])
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = (name, [])

    def handle_data(self, data):
        if self._option is not None:
            self._option[2] += data
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None and self._select is not None:
            value, selected, label = self._option
            self._select[1].append((label if value is None else value, selected))
            self._option = None
        elif tag == "select" and self._select is not None and self._form is not None:
            name, options = self._select
            chosen = [v for v, s in options if s] or [v for v, _ in options[:1]]
            self._form.fields.extend((name, v) for v in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            name, parts = self._textarea
            value = "".join(parts)
            # Like a browser, drop the one line break that may follow <textarea>.
            value = value[2:] if value.startswith("\r\n") else value.removeprefix("\n")
            self._form.fields.append((name, value))
            self._textarea = None
        elif tag == "form":
            self._form = None


def forms(page: str) -> list[ParsedForm]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def form_values(page: str, *, with_field: str = "title") -> dict[str, str]:
    """What the first POST form that has the named field would submit, as a browser would (buttons left out)."""
    for form in forms(page):
        if form.method == "post" and any(name == with_field for name, _ in form.fields):
            return form.values()
    raise AssertionError(f"no POST form with a {with_field!r} field on the page")


def field_error(page: str, field_id: str) -> str | None:
    """The error shown next to a field (the paragraph the field points at with aria-describedby)."""
    match = re.search(rf'<p class="error-message" id="{re.escape(field_id)}-error">(.*?)</p>', page, re.S)
    return text(match.group(1)) if match else None


def text(page: str) -> str:
    """What a person reads: tags removed, entities decoded, white space collapsed."""
    without_tags = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    without_tags = re.sub(r"<[^>]+>", " ", without_tags)
    return " ".join(html_lib.unescape(without_tags).split())
