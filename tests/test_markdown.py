"""Markdown for untrusted text (app/web/markdown.py): CommonMark with tables and highlighted
code, and nothing hostile gets through (no raw HTML, script links, images or event handlers)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.web.markdown import (
    MAX_HIGHLIGHT,
    MAX_MARKDOWN,
    TAGS,
    TOKEN_CLASSES,
    highlight_css,
    markdown,
    sanitize,
)
from tests.conftest import ROOT

ALIGNED = {f"text-align:{side}" for side in ("left", "right", "center")}

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#115;cript:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](&#x6a;avascript:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    "![x](https://tracker.example/pixel.png)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "<!-- --><script>alert(1)</script>",
    "<!--></p><img src=x onerror=alert(1)>-->",
    "<!--</code></pre><svg onload=alert(1)>-->",
    '```"><script>alert(1)</script>\ncode\n```',
    '<a href="javascript:alert(1)">x</a>',
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '[x](https://ok.example "t" onmouseover=alert(1))',
    '[x](https://ok.example/"onmouseover="alert(1))',
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
]


class Audit(HTMLParser):
    """Every way the output could run script, load something or escape the allow-list."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in ("src", "srcset", "formaction", "xlink:href"):
                self.problems.append(f"{tag} {name}")
            if name == "href" and not value.startswith(("http://", "https://", "mailto:")):
                self.problems.append(f"href {value}")
            if name == "style" and value not in ALIGNED:
                self.problems.append(f"style {value}")
            if name == "class" and not set(value.split()) <= TOKEN_CLASSES:
                self.problems.append(f"class {value}")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data}")


def problems_of(html: str) -> list[str]:
    audit = Audit()
    audit.feed(html)
    audit.close()
    return audit.problems


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_as_harmless_text(text):
    html = str(markdown(text))
    assert problems_of(html) == []
    assert "<script" not in html and "<img" not in html  # as text (escaped), if at all


def test_raw_html_is_shown_as_its_text():
    escaped = "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    assert str(markdown("<script>alert(1)</script>")) == escaped
    comment = str(markdown("<!--></p><img src=x onerror=alert(1)>-->"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in comment


def test_only_absolute_web_and_mail_links_become_links():
    html = str(markdown("[a](https://a.example) [b](mailto:b@b.example) [c](/admin) [d](#top)"))
    assert html.count("<a ") == 2
    assert 'href="https://a.example"' in html and 'href="mailto:b@b.example"' in html
    assert "[c](/admin)" in html and "[d](#top)" in html  # relative: text, not a link
    assert 'rel="noopener noreferrer nofollow"' in html and 'target="_blank"' in html


def test_an_image_is_a_link_to_it_never_loaded():
    html = str(markdown("![a chart](https://tracker.example/p.png)"))
    assert "<img" not in html
    assert '<a href="https://tracker.example/p.png"' in html and ">image: a chart</a>" in html


def test_sanitizer_cleans_html_the_parser_would_never_make():
    dirty = (
        '<a href="javascript:alert(1)" onclick="x()">a</a><img src=x>'
        '<span class="k evil">def</span><td style="color:red">c</td>'
        '<div onclick="x()">d</div><iframe src="https://e.example"></iframe>'
        "<script>alert(1)</script><!-- note -->"
    )
    assert len(problems_of(dirty)) >= 8  # the audit sees each of them
    clean = sanitize(dirty)
    assert problems_of(clean) == []
    assert '<span class="k">def</span>' in clean
    assert "alert(1)" not in clean and "note" not in clean


def test_tables_strikethrough_and_lists():
    html = str(markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n\n~~old~~ 1. *x*"))
    assert '<th style="text-align:left">a</th>' in html
    assert '<td style="text-align:right">2</td>' in html
    assert "<s>old</s>" in html and "<em>x</em>" in html


def test_fenced_python_is_highlighted():
    html = str(markdown("```python\ndef add(a, b):\n    return a + b  # sum\n```"))
    assert '<span class="k">def</span>' in html and '<span class="nf">add</span>' in html
    assert '<span class="c1"># sum</span>' in html
    assert html.startswith("<pre><code>") and problems_of(html) == []


def test_unknown_missing_or_huge_code_is_shown_plain():
    for fence in ("```no-such-language\n", "```\n"):
        html = str(markdown(f"{fence}def f(): pass\n```"))
        assert "<span" not in html and "def f(): pass" in html
    huge = "x = 1\n" * (MAX_HIGHLIGHT // 6 + 1)
    html = str(markdown(f"```python\n{huge}```"))
    assert "<span" not in html and html.count("x = 1") == huge.count("x = 1")


def test_a_text_too_long_to_parse_is_shown_as_written():
    text = "**not bold** <script>alert(1)</script> [" * (MAX_MARKDOWN // 40 + 1)
    html = str(markdown(text))
    assert html.startswith('<pre class="as-written">**not bold** &lt;script&gt;alert(1)')
    assert "<strong>" not in html and "<script" not in html
    assert html.count("**not bold**") == text.count("**not bold**")
    assert "<strong>" in str(markdown(text[:MAX_MARKDOWN]))


def test_empty_text():
    assert str(markdown(None)) == "" and str(markdown("")) == ""


def test_highlight_css_matches_the_installed_pygments():
    assert (ROOT / "static" / "css" / "highlight.css").read_text() == highlight_css()


PIECES = st.sampled_from(HOSTILE + ["**b**", "`c`", "```python\n", "```\n", "\n", "> ", "- ", "|"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=12))
def test_any_mix_of_hostile_pieces_stays_clean(pieces):
    assert problems_of(str(markdown("".join(pieces)))) == []
