"""The labeler page shows texts as Markdown in a real browser: highlighted code, long
completions scrolled within their card or shown full width, hostile Markdown that runs
nothing (no dialog ever opens) and shows as text, and raw text when the project says plain."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.factories import make_project, make_prompts
from tests.helpers.pages import blur, log_in

pytestmark = pytest.mark.browser

CODE = (
    "Here is a function:\n\n```python\ndef add(a, b):\n    # the sum\n    return a + b"
    "  # " + "a long line " * 30 + "\n```\n\n| n | add(n, 1) |\n|--:|--:|\n| 1 | 2 |"
)
LONG = "\n\n".join(f"Paragraph {i}: " + "words to judge carefully " * 12 for i in range(40))
HOSTILE = [
    "<script>alert('script')</script>",
    "<img src=x onerror=\"alert('img')\">",
    "[x](javascript:alert('link'))",
    "<!--></p><img src=x onerror=\"alert('comment')\">-->",
]


@pytest.fixture
def seed(live_server) -> Iterator[Callable[..., int]]:
    """``seed(texts, n=1, prompt=None, **settings)``: a project for the labeler "ada" with
    ``n`` prompts of these completions; returns the project id."""
    engine = create_engine(live_server.database_url)
    with Session(engine, expire_on_commit=False) as session:
        user = users.create_user(session, "ada", PASSWORD, "labeler")

        def make(texts: list[str], n: int = 1, prompt=None, **settings) -> int:
            project = make_project(session, k=1, members=[user], rating_axes=[], **settings)
            make_prompts(session, project, n, prompt=prompt, texts=texts)
            return project.id

        yield make
    engine.dispose()


def open_label_page(page, url: str, project_id: int) -> None:
    log_in(page, url, "ada")
    page.goto(f"{url}/projects/{project_id}/label")
    page.wait_for_selector("#pool .chip")


def card_with(page, text: str):
    return page.locator(".completion", has_text=text)


def width(locator) -> float:
    return locator.bounding_box()["width"]


def scrolls_within(locator) -> bool:
    return locator.evaluate("e => e.scrollHeight > e.clientHeight + 1")


def test_highlighted_code_and_a_long_completion_full_width(page, live_server, seed):
    project_id = seed([CODE, LONG, "Short and **bold**."], n=2)
    open_label_page(page, live_server.url, project_id)
    code = card_with(page, "Here is a function").locator("pre code")
    keyword = code.locator("span.k", has_text="def")
    expect(keyword).to_have_count(1)
    colour = "e => getComputedStyle(e).color"
    assert keyword.evaluate(colour) == "rgb(0, 128, 0)"  # Pygments' keyword green
    assert code.evaluate(colour) != keyword.evaluate(colour)
    assert code.locator("span.c1").first.evaluate(colour) != code.evaluate(colour)
    assert card_with(page, "Here is a function").locator("table td").count() == 2
    assert card_with(page, "Short and").locator("strong").inner_text() == "bold"
    # A long code line scrolls inside its block, not the page.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280

    long_card, row = card_with(page, "Paragraph 0"), page.locator(".completions")
    text = long_card.locator(".text")
    assert scrolls_within(text) and width(long_card) < width(row) / 2  # side by side
    toggle = long_card.get_by_role("button", name="full width")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert width(long_card) > 0.95 * width(row) and not scrolls_within(text)
    assert "Paragraph 39" in text.inner_text()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert width(long_card) < width(row) / 2 and scrolls_within(text)

    # The keyboard flow is untouched: rank all three, Enter, the next task swaps in.
    toggle.click()
    title = page.locator("#task-title").inner_text()
    blur(page)
    for key in ["1", "2", "3", "Enter"]:
        page.keyboard.press(key)
    expect(page.locator("#task-title")).not_to_have_text(title, timeout=60_000)
    expect(page.locator(".completion.wide")).to_have_count(0)
    expect(page.locator(".completion pre code span.k").first).to_be_visible()


def test_hostile_markdown_runs_nothing_and_shows_as_text(page, live_server, seed):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    project_id = seed(
        HOSTILE,
        n=2,
        prompt=[{"role": "user", "content": "<svg onload=\"alert('svg')\"></svg> **Rank**"}],
        guidelines="<img src=x onerror=\"alert('guidelines')\"> [y](javascript:alert('g'))",
    )
    open_label_page(page, live_server.url, project_id)
    page.click(".guidelines summary")
    for n in range(2):  # the page as loaded, then the task htmx swapped in
        page.wait_for_load_state("load")
        assert dialogs == []
        task = page.locator("#task")
        assert sorted(task.locator(".completion .text").all_inner_texts()) == sorted(HOSTILE)
        assert "<svg onload" in task.locator(".msg .text").inner_text()
        assert task.locator(".msg strong").inner_text() == "Rank"
        assert page.locator("main img, main script, main svg, main iframe").count() == 0
        assert page.locator("main a[href^='javascript'], main [onerror]").count() == 0
        for card in task.locator(".completion .text").all():
            card.click()  # a click on the text (e.g. on "x") runs nothing either
        if n == 0:
            title = page.locator("#task-title").inner_text()
            blur(page)
            for key in ["1", "2", "3", "4", "Enter"]:
                page.keyboard.press(key)
            expect(page.locator("#task-title")).not_to_have_text(title, timeout=60_000)
    assert dialogs == []


def test_plain_render_shows_the_raw_text(page, live_server, seed):
    texts = [CODE, "Short and **bold**.", "<b>as written</b>"]
    project_id = seed(texts, prompt="Say *hi*", render="plain")
    open_label_page(page, live_server.url, project_id)
    assert page.locator(".prompt pre.text").inner_text() == "Say *hi*"
    assert sorted(page.locator(".completion pre.text").all_inner_texts()) == sorted(texts)
    assert page.locator("#task .md, #task code, #task strong, #task em, #task b").count() == 0
