"""Markdown for untrusted text (prompts, chat turns, completions, guidelines): CommonMark with
tables and strikethrough, fenced code highlighted by Pygments on the server, sanitized by nh3.

Nothing a text holds reaches the page as markup of its own: raw HTML is escaped by the parser
(``html`` off), a link keeps only an ``http``, ``https`` or ``mailto`` target (anything else,
relative ones included, stays text), an image is shown as a link to it (loading it would tell
its host the labeler's address), and nh3 cleans the result against an allow-list of tags,
attributes and Pygments' token classes. Highlighting happens here, not in the browser, so the
sanitizer sees the final markup and no script ever parses a text as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

HIGHLIGHT_STYLE = "default"
HIGHLIGHT_SCOPE = ".md pre"  # the CSS rules of static/css/highlight.css apply under this
MAX_HIGHLIGHT = 10_000  # characters: a longer code block is shown unhighlighted
MAX_MARKDOWN = 50_000  # characters: a longer text is shown as written (parsing time is bounded)
SCHEMES = frozenset({"http", "https", "mailto"})
TOKEN_CLASSES = frozenset(name for name in STANDARD_TYPES.values() if name)

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code",
    "pre", "span", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th",
    "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "span": {"class"}}
ALIGN = {"th": {"style"}, "td": {"style"}}
ALIGN_VALUES = {f"text-align:{side}" for side in ("left", "center", "right")}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_FORMATTER = HtmlFormatter(nowrap=True)  # bare spans with Pygments' short token classes


def _valid_link(url: str) -> bool:
    """Only absolute http(s) and mailto targets become links."""
    match = _SCHEME.match(url.strip())
    return bool(match) and match.group(1).lower() in SCHEMES


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments' spans for a fenced block naming a known language; "" leaves it plain."""
    if not lang or len(code) > MAX_HIGHLIGHT:
        return ""
    try:
        lexer = get_lexer_by_name(lang, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _FORMATTER)


def _image_as_link(_self: Any, tokens: Sequence[Token], idx: int, _options: Any, _env: Any) -> str:
    """An image is never loaded: it becomes a link to it, its alt text as the label."""
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or [])
    href = escape(str(token.attrGet("src") or ""))
    return f'<a href="{href}">image: {escape(alt or "untitled")}</a>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.validateLink = _valid_link
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _parser()


def _keep(element: str, attribute: str, value: str) -> str | None:
    """Spans keep only Pygments' token classes, table cells only a text-align style."""
    if attribute == "class":
        kept = [name for name in value.split() if name in TOKEN_CLASSES]
        return " ".join(kept) or None
    if attribute == "style":
        return value if value.replace(" ", "") in ALIGN_VALUES else None
    return value


def sanitize(html: str) -> str:
    """nh3 with the allow-list above: no raw HTML, scripts, images or foreign schemes."""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes={**ATTRIBUTES, **ALIGN},
        attribute_filter=_keep,
        url_schemes=set(SCHEMES),
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


def markdown(text: str | None) -> Markup:
    """Markdown to sanitized HTML; a text over MAX_MARKDOWN characters is shown as written
    (escaped): some inputs cost the parser tens of µs a character (bench/markdown_bench.py)."""
    if text and len(text) > MAX_MARKDOWN:
        return Markup('<pre class="as-written">') + escape(text) + Markup("</pre>")
    return Markup(sanitize(_MD.render(text or "")))


def highlight_css() -> str:
    """The rules of static/css/highlight.css (a test checks the file is up to date)."""
    formatter = HtmlFormatter(style=HIGHLIGHT_STYLE)
    rules = "\n".join(  # scoped rules only (not Pygments' global ones for line numbers)
        formatter.get_background_style_defs(HIGHLIGHT_SCOPE)
        + formatter.get_token_style_defs(HIGHLIGHT_SCOPE)
    )
    header = f"/* Pygments' {HIGHLIGHT_STYLE!r} style, from app.web.markdown.highlight_css() */"
    return f"{header}\n{rules}\n"
