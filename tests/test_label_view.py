"""The labeler page's view is one unit of work (issue 10 §3): the project, the lease and
the labeler's progress are read and written in one transaction, committed once."""

from __future__ import annotations

from sqlalchemy import event

from app.services.labeling.page import label_view
from tests.factories import make_project, make_prompts


def transactions(db) -> list[str]:
    """Records each transaction the session begins and how it ends."""
    log: list[str] = []
    event.listen(db, "after_begin", lambda *_: log.append("begin"))
    event.listen(db, "after_commit", lambda *_: log.append("commit"))
    event.listen(db, "after_rollback", lambda *_: log.append("rollback"))
    return log


def test_the_page_view_leases_and_counts_in_one_committed_transaction(db, make_user):
    user = make_user("labeler")
    project = make_project(db, members=[user])
    make_prompts(db, project, 3)
    log = transactions(db)
    view = label_view(db, user, project.id)
    assert view.task is not None
    assert (view.progress.done, view.progress.remaining) == (0, 3)
    assert log == ["begin", "commit"]


def test_a_closed_project_gives_no_task_in_one_transaction(db, make_user):
    user = make_user("labeler")
    project = make_project(db, members=[user], status="paused")
    make_prompts(db, project, 1)
    log = transactions(db)
    view = label_view(db, user, project.id)
    assert view.task is None and not view.project.active
    assert log == ["begin", "commit"]
