"""Markdown notes: hostile input never yields anything executable; ordinary Markdown renders as expected."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kxn_meetings.rendering import plain_text_summary, render_markdown, sanitise_html, table_of_contents

BLOCKS = {"p", "h2", "h3", "h4", "blockquote", "pre", "hr", "br"}
LISTS_AND_TABLES = {"ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"}
TAGS = BLOCKS | LISTS_AND_TABLES | {"strong", "em", "a", "code", "del"}
ATTRIBUTES = {"a": {"href", "title", "rel"}, "h2": {"id"}, "h3": {"id"}, "h4": {"id"}}
DANGEROUS_TAG_TEXT = (
    "<script",
    "<svg",
    "<iframe",
    "<img",
    "<style",
    "<object",
    "<embed",
    "<form",
    "<meta",
    "<base",
    "<link",
    "<math",
    "<body",
    "<input",
    "<button",
    "<noscript",
    "<template",
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.found.append((tag, attrs))


def tags_in(output: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Tags()
    parser.feed(output)
    parser.close()
    return parser.found


def href_allowed(value: str) -> bool:
    decoded = value
    for _ in range(3):
        decoded = unquote(html.unescape(decoded))
    squashed = re.sub(r"[\s\x00-\x1f\x7f-\x9f]+", "", decoded).lower()
    if any(bad in squashed for bad in ("javascript", "vbscript", "data:", "livescript")):
        return False
    return squashed.startswith(("http://", "https://", "mailto:", "/", "#")) or ":" not in squashed


def assert_nothing_executable(output: str) -> None:
    lowered = output.lower()
    for text in DANGEROUS_TAG_TEXT:
        assert text not in lowered, f"{text!r} survived in {output!r}"
    for tag, attrs in tags_in(output):
        assert tag in TAGS, f"<{tag}> is not allowed: {output!r}"
        for name, value in attrs:
            assert name in ATTRIBUTES.get(tag, set()), f"{name}= on <{tag}> survived: {output!r}"
            assert value is not None
            if name == "href":
                assert href_allowed(value), f"unsafe href {value!r}"
            if name == "rel":
                assert value == "noopener noreferrer"
            if name == "id":
                assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value), f"unsafe id {value!r}"


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<ScRiPt>alert(1)</sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<body onload=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<div onclick="alert(1)">**bold**</div>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;vascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](<java\tscript:alert(1)>)",
    "[x](jav&#x09;ascript:alert(1))",
    "[x](jav%09ascript:alert(1))",
    "[x](%6Aavascript:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<data:text/html,alert(1)>",
    "[x][evil]\n\n[evil]: javascript:alert(1)",
    '[x][e]\n\n[e]: <javascript:alert(1)> "title"',
    "[x]\n\n[x]: &#106;avascript:alert(1)",
    "![x](javascript:alert(1))",
    '![x" onerror="alert(1)](https://img.example/a.png)',
    '[x](https://ok.example/" onmouseover="alert(1))',
    '[x](https://ok.example "t\\" onclick=\\"alert(1)")',
    '<a href="javascript:alert(1)">x</a>',
    "<a href=JaVaScRiPt:alert(1)>x</a>",
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="java&Tab;script:alert(1)">x</a>',
    '<a href="java&NewLine;script:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="mailto:a@example.org" onclick="alert(1)">x</a>',
    "<scr<script>ipt>alert(1)</script>",
    "<<img src=x onerror=alert(1)>>",
    '<img src="x` `" onerror="alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="//evil.example/x.css">',
    "<style>body { display: none }</style>",
    '<base href="javascript:/">',
    "<!-- <script>alert(1)</script> -->",
    '<h2 id="content" onclick="alert(1)">Heading</h2>',
    '## "><script>alert(1)</script>',
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:alert(1)) |",
    "> <iframe src=//evil.example></iframe>\n> [x](javascript:alert(1))",
    "* <svg/onload=alert(1)>\n* ~~<script>alert(1)</script>~~",
    '<input autofocus onfocus="alert(1)">',
    "<template><img src=x onerror=alert(1)></template>",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_renders_nothing_executable(source):
    assert_nothing_executable(render_markdown(source))


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_html_is_sanitised_even_without_markdown(source):
    """The sanitiser alone holds, should raw HTML ever reach it."""
    assert_nothing_executable(sanitise_html(source))


FRAGMENTS = [
    "<",
    ">",
    '"',
    "'",
    "=",
    "&#",
    ";",
    ":",
    "(",
    ")",
    "[",
    "]",
    "\t",
    "\n",
    "javascript",
    "JaVaScRiPt",
    "data",
    "script",
    "img",
    "svg",
    "iframe",
    "onerror",
    "onload",
    "style",
    "href",
    "src",
    "a ",
    "alert(1)",
    "#",
    "!",
    "`",
    "*",
    "~~",
    "## ",
    "|",
    "-",
    "%0a",
    "&colon;",
]


@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40))
def test_any_mix_of_dangerous_fragments_stays_inert(pieces):
    source = "".join(pieces)
    assert_nothing_executable(render_markdown(source))
    assert_nothing_executable(sanitise_html(source))


def test_raw_html_in_markdown_is_shown_as_text():
    output = render_markdown("Try <b>bold</b> and <script>alert(1)</script>")
    assert "&lt;b&gt;bold&lt;/b&gt;" in output
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in output


def test_unsafe_markdown_link_is_not_a_link():
    output = render_markdown("[click](javascript:alert(1))")
    assert "<a" not in output
    assert "click" in output


def test_hostile_heading_text_gets_a_plain_id():
    output = render_markdown('## "><img src=x onerror=alert(1)>')
    assert output.startswith('<h2 id="img-src-x-onerror-alert-1">')
    assert "&lt;img" in output


def test_headings_get_unique_slug_anchors():
    output = render_markdown(
        "## Lessons learned & future development\n\ntext\n\n"
        "## Emerging practice\n\n### Working in schools\n\n## Emerging practice\n\n## Café réunion"
    )
    assert '<h2 id="lessons-learned-future-development">Lessons learned &amp; future development</h2>' in output
    assert '<h2 id="emerging-practice">Emerging practice</h2>' in output
    assert '<h2 id="emerging-practice-2">Emerging practice</h2>' in output
    assert '<h3 id="working-in-schools">Working in schools</h3>' in output
    assert '<h2 id="cafe-reunion">' in output


def test_heading_levels_stay_between_h2_and_h4():
    output = render_markdown("# Page title\n\n##### Small print\n\n###### Smaller")
    assert '<h2 id="page-title">Page title</h2>' in output
    assert '<h4 id="small-print">Small print</h4>' in output
    assert '<h4 id="smaller">Smaller</h4>' in output
    assert "<h1" not in output and "<h5" not in output and "<h6" not in output


def test_heading_does_not_take_an_id_the_page_layout_uses():
    output = render_markdown("## Content")
    assert '<h2 id="content-2">Content</h2>' in output


def test_tables_render_without_inline_styles():
    output = render_markdown("| Time | Speaker |\n|---:|:---|\n| 15:10 | Stan Gilmour |")
    for tag in ("<table>", "<thead>", "<tbody>", "<th>Time</th>", "<td>15:10</td>", "<td>Stan Gilmour</td>"):
        assert tag in output
    assert "style" not in output


def test_links_keep_safe_urls_and_get_rel():
    output = render_markdown(
        '[network](https://kxn.example.org/ "About the network") [mail](mailto:stephen@example.org) '
        "[notes](/meetings/kxn) [top](#actions) <https://auto.example/link>"
    )
    tags = [(tag, dict(attrs)) for tag, attrs in tags_in(output) if tag == "a"]
    assert [attrs["href"] for _, attrs in tags] == [
        "https://kxn.example.org/",
        "mailto:stephen@example.org",
        "/meetings/kxn",
        "#actions",
        "https://auto.example/link",
    ]
    assert all(attrs["rel"] == "noopener noreferrer" for _, attrs in tags)
    assert tags[0][1]["title"] == "About the network"


def test_everyday_markdown_survives():
    output = render_markdown(
        "Some **bold**, *emphasis*, `code` and ~~old~~ text.  \nNext line\n\n"
        "> quoted\n\n1. one\n2. two\n\n- a\n- b\n\n---\n\n```\nblock\n```"
    )
    for fragment in (
        "<strong>bold</strong>",
        "<em>emphasis</em>",
        "<code>code</code>",
        "<del>old</del>",
        "<br>",
        "<blockquote>",
        "<ol>",
        "<ul>",
        "<li>one</li>",
        "<hr>",
        "<pre><code>block",
    ):
        assert fragment in output
    assert_nothing_executable(output)


def test_images_are_shown_as_their_description():
    output = render_markdown("![Chart of hospital admissions](https://img.example/chart.png)")
    assert output == "<p>Chart of hospital admissions</p>\n"


def test_empty_markdown_renders_nothing():
    assert render_markdown("") == ""
    assert render_markdown("  \n ") == ""


def test_table_of_contents_lists_h2_and_h3_in_order():
    output = render_markdown("## Speakers\n\n### Stan *Gilmour*\n\n#### Detail\n\n## Actions & next steps")
    assert table_of_contents(output) == [
        (2, "speakers", "Speakers"),
        (3, "stan-gilmour", "Stan Gilmour"),
        (2, "actions-next-steps", "Actions & next steps"),
    ]


def test_table_of_contents_of_nothing_is_empty():
    assert table_of_contents("") == []
    assert table_of_contents("<p>No headings</p>") == []


def test_plain_text_summary_drops_markup():
    source = "## Speakers\n\n**Stan Gilmour** spoke about [the model](https://x.example).\n\n- one\n- two"
    assert plain_text_summary(source) == "Speakers Stan Gilmour spoke about the model. one two"


def test_plain_text_summary_keeps_typed_html_as_text():
    assert plain_text_summary("a <b>b</b> &amp; c") == "a <b>b</b> & c"


def test_plain_text_summary_cuts_at_a_word_within_the_length():
    source = "Prevention takes a long time and there need to be interim outcome measures. " * 10
    summary = plain_text_summary(source, length=50)
    assert len(summary) <= 50
    assert summary.endswith("\u2026")
    assert summary == "Prevention takes a long time and there need to be\u2026"
    assert plain_text_summary(source, length=49) == "Prevention takes a long time and there need to\u2026"
    assert plain_text_summary("Short text.", length=50) == "Short text."
