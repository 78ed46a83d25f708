"""Many labelers at once over real HTTP: no prompt over-assigned, no judgment lost."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.db.engine import make_engine, make_sessionmaker
from app.db.models import User
from app.domain.figures import prompt_figures
from app.services.accounts import tokens
from app.services.accounts.security import hash_password
from app.services.labeling.assignment import lease_task, next_task
from tests.factories import make_project, make_prompts
from tests.helpers.live import live_server  # noqa: F401  (fixture)

LABELERS = 64
PROMPTS = 500
K = 3


@pytest.fixture
def live_db(live_server) -> Iterator[Session]:  # noqa: F811
    engine = create_engine(live_server.database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def make_labelers(db: Session, n: int) -> list[tuple[User, str]]:
    """``n`` labelers with API tokens (one password hash shared, for speed)."""
    digest = hash_password("not-used-in-this-test")
    people = [User(username=f"crowd{i}", password_hash=digest, role="labeler") for i in range(n)]
    db.add_all(people)
    db.commit()
    return [(u, tokens.create_token(db, u.username)) for u in people]


class Crowd:
    """Labeler threads that loop next -> judge (sometimes skip, sometimes resubmit)."""

    def __init__(self, base_url: str, project_id: int) -> None:
        self.base_url, self.project_id = base_url, project_id
        self.acknowledged: list[int] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def judge(self, client: httpx.Client, task: dict, rng: random.Random) -> None:
        ids = [c["id"] for c in task["completions"]]
        rng.shuffle(ids)
        body = {"ranking": [[ids[0]], ids[1:]], "duration_ms": rng.randint(1, 9000)}
        url = f"/api/v1/assignments/{task['assignment_id']}/judgment"
        first = client.post(url, json=body)
        if first.status_code != 201:
            raise AssertionError(f"judgment: {first.status_code} {first.text}")
        if rng.random() < 0.1:  # a retry after a lost response must give the same judgment
            again = client.post(url, json=body)
            if again.json() != first.json():
                raise AssertionError(f"resubmit gave {again.text}, first {first.text}")
        with self.lock:
            self.acknowledged.append(first.json()["judgment_id"])

    def work(self, token: str, seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60) as client:
            try:
                while True:
                    response = client.get(f"/api/v1/projects/{self.project_id}/tasks/next")
                    if response.status_code == 204:
                        return
                    if response.status_code != 200:
                        raise AssertionError(f"next: {response.status_code} {response.text}")
                    task = response.json()
                    if rng.random() < 0.03:
                        skip = client.post(f"/api/v1/assignments/{task['assignment_id']}/skip")
                        assert skip.status_code == 204, skip.text
                    else:
                        self.judge(client, task, rng)
            except Exception as exc:  # reported by the test, not lost in a thread
                with self.lock:
                    self.errors.append(repr(exc))


def test_concurrent_labelers_fill_every_prompt_exactly_k_times(live_server, live_db):  # noqa: F811
    crowd_members = make_labelers(live_db, LABELERS)
    project = make_project(live_db, k=K, members=[u for u, _ in crowd_members])
    make_prompts(live_db, project, PROMPTS, completions=4)

    crowd = Crowd(live_server.url, project.id)
    threads = [
        threading.Thread(target=crowd.work, args=(token, i))
        for i, (_, token) in enumerate(crowd_members)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert crowd.errors == []

    q = lambda sql: live_db.execute(text(sql), {"p": project.id}).all()  # noqa: E731
    per_prompt = q(
        "SELECT p.n_judgments, p.slots_taken, p.target_labels, count(j.id) "
        "FROM prompts p LEFT JOIN judgments j ON j.prompt_id = p.id "
        "WHERE p.project_id = :p GROUP BY p.id"
    )
    assert len(per_prompt) == PROMPTS
    assert Counter(tuple(r) for r in per_prompt) == {(K, K, K, K): PROMPTS}
    stored = {r[0] for r in q("SELECT id FROM judgments WHERE project_id = :p")}
    assert len(crowd.acknowledged) == len(set(crowd.acknowledged)) == PROMPTS * K
    assert set(crowd.acknowledged) == stored
    assert (
        q(
            "SELECT prompt_id, labeler_id FROM judgments WHERE project_id = :p "
            "GROUP BY 1, 2 HAVING count(*) > 1"
        )
        == []
    )
    assert q("SELECT count(*) FROM assignments WHERE project_id = :p AND status = 'active'") == [
        (0,)
    ]
    statuses = dict(
        q("SELECT status, count(*) FROM assignments WHERE project_id = :p GROUP BY status")
    )
    assert statuses["submitted"] == PROMPTS * K
    # figures kept in each judgment's transaction equal a recomputation from scratch
    for agreement, kendall, rankings, ids in q(
        "SELECT p.agreement, p.kendall_w, array_agg(j.ranking ORDER BY j.id), "
        "(SELECT array_agg(c.external_id) FROM completions c WHERE c.prompt_id = p.id) "
        "FROM prompts p JOIN judgments j ON j.prompt_id = p.id "
        "WHERE p.project_id = :p GROUP BY p.id"
    ):
        expected = prompt_figures(rankings, ids)
        assert (agreement, kendall) == pytest.approx(
            (expected["pairwise_agreement"], expected["kendall_w"])
        )


def test_one_labeler_racing_themself_gets_one_lease(live_server, live_db):  # noqa: F811
    ((user, token),) = make_labelers(live_db, 1)
    project = make_project(live_db, members=[user])
    make_prompts(live_db, project, 20)
    barrier = threading.Barrier(12)
    got: list[int] = []

    def take() -> None:
        with httpx.Client(
            base_url=live_server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            barrier.wait()
            response = client.get(f"/api/v1/projects/{project.id}/tasks/next")
            got.append(response.json()["assignment_id"])

    threads = [threading.Thread(target=take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(got) == 12 and len(set(got)) == 1
    rows = live_db.execute(
        text(
            "SELECT count(*), sum(slots_taken) FROM assignments, prompts "
            "WHERE prompts.id = assignments.prompt_id"
        )
    ).one()
    assert tuple(rows) == (1, 1)


def test_a_second_concurrent_next_waits_for_the_first_and_returns_its_lease(databases):
    engine = make_engine(databases.new(), pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as db:
            ((user, _),) = make_labelers(db, 1)
            project = make_project(db, members=[user])
            make_prompts(db, project, 5)
        first = sessions()
        held = lease_task(first, user, project.id)  # leased, not committed yet
        result: dict = {}
        second = threading.Thread(
            target=lambda: result.update(task=next_task(sessions(), user, project.id))
        )
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # waiting on the one-active-lease index
        first.commit()
        second.join(timeout=30)
        assert result["task"].assignment_id == held.assignment_id
    finally:
        engine.dispose()
