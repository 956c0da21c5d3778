"""Markdown written by organisers, turned into HTML that is safe to show to everyone.

Markdown is rendered with raw HTML switched off (typed HTML appears as text), then the result is
sanitised against a short allowlist. Headings get stable ids after sanitising so they can be linked to.

markdown-it and nh3 are loaded on first use: a web process that only serves what was rendered when it was saved
(notes, meeting descriptions) never holds them (README, "What each web process keeps").
"""

from __future__ import annotations

import functools
import html
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .text import slugify

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_core import StateCore
    from markdown_it.token import Token

ALLOWED_TAGS = frozenset(
    {
        "p",
        "h2",
        "h3",
        "h4",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "a",
        "blockquote",
        "code",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "hr",
        "br",
        "del",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"
# Removed together with everything inside them, rather than leaving their text behind.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "iframe",
        "svg",
        "math",
        "noscript",
        "template",
        "object",
        "embed",
        "textarea",
        "title",
    }
)
# Ids the page layout already uses; a heading called "Content" must not steal the skip link's target.
RESERVED_IDS = frozenset({"content"})

_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+")
_HEADING = re.compile(r"<(h[234])>(.*?)</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _adjust_tokens(state: StateCore) -> None:
    """Keep headings within h2-h4 (the page owns h1), use <del> for strikethrough, show images as their alt text."""
    from markdown_it.token import Token

    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(max(int(token.tag[1]), 2), 4)
            token.tag = f"h{level}"
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        for child in token.children:
            if child.type in ("s_open", "s_close"):
                child.tag = "del"
            if child.type == "image":
                alt = "".join(grandchild.content for grandchild in child.children or [])
                children.append(Token("text", "", 0, content=alt))
                continue
            children.append(child)
        token.children = children


@functools.cache
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.core.ruler.push("kxn_adjust", _adjust_tokens)
    return parser


def _is_safe_href(value: str) -> bool:
    """A relative link, or one whose scheme is allowed however it is encoded or padded."""
    decoded = value
    for _ in range(3):
        decoded = unquote(html.unescape(decoded))
    compact = _INVISIBLE.sub("", decoded).lower()
    match = _SCHEME.match(compact)
    if match:
        return match.group(1) in URL_SCHEMES
    # A colon before any path, query or fragment marks a scheme, even a malformed one.
    head = re.split(r"[/?#]", compact, maxsplit=1)[0]
    return ":" not in head


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href" and not _is_safe_href(value):
        return None
    return value


def sanitise_html(fragment: str) -> str:
    """Reduce any HTML to the allowlist: no scripts, handlers, styles, frames or unsafe URLs."""
    import nh3

    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def _heading_text(inner_html: str) -> str:
    return " ".join(html.unescape(_TAG.sub("", inner_html)).split())


def _add_heading_ids(fragment: str) -> str:
    used = set(RESERVED_IDS)

    def with_id(match: re.Match[str]) -> str:
        base = slugify(_heading_text(match.group(2)), max_length=80, fallback="section")
        anchor, n = base, 1
        while anchor in used:
            n += 1
            anchor = f"{base}-{n}"
        used.add(anchor)
        tag = match.group(1)
        return f'<{tag} id="{anchor}">{match.group(2)}</{tag}>'

    return _HEADING.sub(with_id, fragment)


@functools.lru_cache(maxsize=256)
def render_markdown(source: str) -> str:
    """Markdown to sanitised HTML with linkable headings."""
    if not source or not source.strip():
        return ""
    return _add_heading_ids(sanitise_html(_markdown().render(source)))


class _HeadingCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str, str]] = []
        self._current: tuple[int, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "h3"):
            anchor = dict(attrs).get("id") or ""
            self._current = (int(tag[1]), anchor) if anchor else None
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3") and self._current is not None:
            level, anchor = self._current
            self.headings.append((level, anchor, " ".join("".join(self._text).split())))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)


def table_of_contents(rendered_html: str) -> list[tuple[int, str, str]]:
    """(level, id, text) for every h2 and h3 with an id, in document order."""
    collector = _HeadingCollector()
    collector.feed(rendered_html)
    collector.close()
    return collector.headings


def _link_address(href: str) -> str:
    """What a reader without the link needs to follow it: a web address as it is, an email address without
    "mailto:", nothing for a link that only works on the site's own pages."""
    scheme = href.split(":", 1)[0].lower() if ":" in href else ""
    if scheme == "mailto":
        return unquote(href.split(":", 1)[1])
    return href if scheme in ("http", "https") and _is_safe_href(href) else ""


def _inline_text(token: Token, *, addresses: bool = False) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif addresses and child.type == "link_open":
            links.append((str(child.attrs.get("href") or ""), len(parts)))
        elif addresses and child.type == "link_close" and links:
            href, start = links.pop()
            address = _link_address(href)
            if address and address != "".join(parts[start:]).strip():
                parts.append(f" ({address})")
    return "".join(parts)


def plain_text_summary(source: str, length: int = 300, *, addresses: bool = False) -> str:
    """The words of the Markdown without markup, cut at a word boundary to at most `length` characters. With
    `addresses` (for email, where the text cannot carry links), each link's web or email address follows its words
    in brackets."""
    parts: list[str] = []
    for token in _markdown().parse(source or ""):
        if token.type == "inline":
            parts.append(_inline_text(token, addresses=addresses))
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
    text = " ".join(" ".join(parts).split())
    if len(text) <= length:
        return text
    cut = text[: max(length - 1, 0)]
    if text[len(cut)] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-\u2013\u2014") + "\u2026"
