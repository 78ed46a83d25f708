"""The labeler page over HTTP (no browser): rendering, htmx submit/skip, errors."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select, text

from app.db.models import Assignment, Judgment
from tests.factories import make_project, make_prompts
from tests.helpers.pages import csrf_of, login

XSS = "<script>window.__xss = 1</script><img src=x onerror=alert(1)>"


@pytest.fixture
def labeler_client(client, make_user):
    """A labeler logged in through the login form (the client keeps the cookie)."""
    user = make_user("labeler")
    assert login(client, user.username).status_code == 303
    return user


def open_page(client, project_id):
    page = client.get(f"/projects/{project_id}/label")
    assert page.status_code == 200, page.text
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf_of(page.text)}
    return page.text, headers


def assignment_of(html: str) -> int:
    return int(re.search(r'hx-post="/projects/\d+/label/(\d+)"', html).group(1))


def cids_of(html: str) -> list[str]:
    return re.findall(r'name="cid-\d+" value="([^"]+)"', html)


def test_page_renders_the_task_escaped(client, db, labeler_client):
    project = make_project(
        db, members=[labeler_client], guidelines="**Rank** well <img src=x onerror=alert(1)>"
    )
    make_prompts(
        db,
        project,
        1,
        prompt=[{"role": "user", "content": XSS}],
        texts=[XSS, "two\nlines", "three"],
    )
    html, _ = open_page(client, project.id)
    assert "<script>window.__xss" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "<strong>Rank</strong>" in html  # guidelines: sanitized Markdown
    assert 'class="msg role-user"' in html
    assert html.count('class="chip"') == 3
    assert "/static/vendor/sortable-1.15.7.min.js" in html and "/static/js/label.js" in html
    assert "gold" not in html.lower()


def test_htmx_submit_records_and_swaps_in_the_next_task(client, db, labeler_client):
    project = make_project(db, members=[labeler_client], rating_axes=["helpful", "honest"])
    make_prompts(db, project, 2)
    html, headers = open_page(client, project.id)
    first, cids = assignment_of(html), cids_of(html)
    form = {
        "ranking": json.dumps([[cids[1]], [cids[0], cids[2]]]),
        "rationale": "why",
        "duration_ms": "1234",
        "cid-1": cids[0],
        "cid-2": cids[1],
        "cid-3": cids[2],
        "axis-1": "helpful",
        "axis-2": "honest",
        "rating-2-2": "5",
        "flag-3": "unsafe",
    }
    response = client.post(f"/projects/{project.id}/label/{first}", data=form, headers=headers)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="task"')
    assert assignment_of(response.text) != first
    assert "1 done" in response.text
    judgment = db.scalar(select(Judgment).where(Judgment.assignment_id == first))
    assert judgment.ranking == [[cids[1]], [cids[0], cids[2]]]
    assert judgment.ratings == {cids[1]: {"honest": 5}}
    assert judgment.flags == {cids[2]: ["unsafe"]}
    assert (judgment.rationale, judgment.duration_ms) == ("why", 1234)


def test_htmx_invalid_submit_lists_errors_in_place(client, db, labeler_client):
    project = make_project(db, members=[labeler_client], require_rationale=True)
    make_prompts(db, project, 1)
    html, headers = open_page(client, project.id)
    cids = cids_of(html)
    response = client.post(
        f"/projects/{project.id}/label/{assignment_of(html)}",
        data={"ranking": json.dumps([[cids[0]]])},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#task-errors"
    assert "<code>ranking</code>" in response.text and "<code>rationale</code>" in response.text
    bad_json = client.post(
        f"/projects/{project.id}/label/{assignment_of(html)}",
        data={"ranking": "[[", "rationale": "x"},
        headers=headers,
    )
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.text
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 0


def test_expired_lease_moves_on_with_a_notice(client, db, labeler_client):
    project = make_project(db, members=[labeler_client])
    make_prompts(db, project, 2)
    html, headers = open_page(client, project.id)
    first = assignment_of(html)
    db.execute(text("UPDATE assignments SET expires_at = now() - interval '1 minute'"))
    db.commit()
    ranking = json.dumps([[c] for c in cids_of(html)])
    response = client.post(
        f"/projects/{project.id}/label/{first}", data={"ranking": ranking}, headers=headers
    )
    assert response.status_code == 200
    assert "expired" in json.loads(response.headers["HX-Trigger"])["prefloop:toast"]["message"]
    assert assignment_of(response.text) != first
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 0


def test_skip_and_all_done(client, db, labeler_client):
    project = make_project(db, members=[labeler_client])
    make_prompts(db, project, 1)
    html, headers = open_page(client, project.id)
    response = client.post(
        f"/projects/{project.id}/label/{assignment_of(html)}/skip", headers=headers
    )
    assert response.status_code == 200 and "All done" in response.text
    assert db.scalar(select(Assignment.status)) == "skipped"


def test_plain_form_post_redirects_back_to_the_page(client, db, labeler_client):
    project = make_project(db, members=[labeler_client])
    make_prompts(db, project, 2)
    html, _ = open_page(client, project.id)
    form = {"ranking": json.dumps([cids_of(html)]), "csrf_token": csrf_of(html)}
    response = client.post(
        f"/projects/{project.id}/label/{assignment_of(html)}", data=form, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/projects/{project.id}/label"
    assert db.scalar(text("SELECT count(*) FROM judgments")) == 1


def test_closed_and_foreign_projects(client, db, labeler_client):
    paused = make_project(db, members=[labeler_client], status="paused")
    make_prompts(db, paused, 1)
    html, _ = open_page(client, paused.id)
    assert "This project is paused" in html and "task-form" not in html
    foreign = make_project(db)
    assert client.get(f"/projects/{foreign.id}/label").status_code == 404


def test_page_needs_login(client, db):
    response = client.get("/projects/1/label", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


CODE = "Use this:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n| a |\n|---|\n| 1 |"


@pytest.mark.parametrize("render", ["markdown", "plain"])
def test_texts_are_markdown_or_plain_as_the_project_says(client, db, labeler_client, render):
    project = make_project(db, members=[labeler_client], render=render)
    make_prompts(
        db,
        project,
        1,
        prompt=[{"role": "user", "content": "**Add** <b>two</b> numbers"}],
        texts=[CODE, XSS, "[x](javascript:alert(1)) ![i](https://t.example/p.png)"],
    )
    html, _ = open_page(client, project.id)
    assert "<script>window.__xss" not in html and "<img" not in html
    assert 'href="javascript' not in html
    if render == "markdown":
        assert html.count('<div class="text md">') == 4
        assert '<span class="k">def</span>' in html and "<table>" in html
        assert "<strong>Add</strong> &lt;b&gt;two&lt;/b&gt; numbers" in html
        assert '<a href="https://t.example/p.png"' in html and ">image: i</a>" in html
    else:
        assert html.count('<pre class="text">') == 4 and '<span class="k">' not in html
        assert "**Add** &lt;b&gt;two&lt;/b&gt; numbers" in html and "```python" in html
        assert "<a href=" not in html.split('id="task"')[1]
