"""``prefloop demo``: an admin, two labelers and a demo project with real prompts, plus two
projects ready for a training run, each with its consensus export: the same prompts already
ranked by two external reviewers, and public preference pairs judged by three annotators
(``app/demo/pandalm-pairs.jsonl``, a subset of PandaLM's test set, Apache-2.0: see
``app/demo/PANDALM.md``), large enough for a small real reward model to learn from.

Idempotent: users and the project are created when missing and left alone when present
(an existing user keeps their password: the demo never resets a real account), and the
import skips the prompts already there. Each step is its own transaction, so a seed
interrupted half-way is completed by running it again.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Export, Project, User
from app.resources import demo_file
from app.services import exports, importing, projects
from app.services.accounts import users
from app.settings import Settings

DEMO_PROMPTS = demo_file("prompts.jsonl")
DEMO_REVIEWS = demo_file("reviews.json")
PUBLIC_PAIRS = demo_file("pandalm-pairs.jsonl")
PROJECT_NAME = "Demo: assistant replies"
REVIEWED_PROJECT_NAME = "Demo: reviewed replies (ready to train)"
PUBLIC_PROJECT_NAME = "Demo: public preference pairs (PandaLM, ready to train)"
TINY_MODEL = Path("models") / "tiny-llama"
"""The demo's tiny random base model, under DATA_DIR (``training/tiny.py`` builds it)."""
REAL_MODEL = "all-MiniLM-L6-v2"  # training.model_wheels.MINILM_DIR
REAL_MODEL_PRESET = "encoder-cpu"
REVIEWERS = ("ext:reviewer-1", "ext:reviewer-2")
DEMO_USERS = (
    ("admin", "admin", "admin-demo-pass"),
    ("alice", "labeler", "alice-demo-pass"),
    ("bob", "labeler", "bob-demo-pass"),
)
GUIDELINES = """\
Rank the replies from **best** to **worst** for the person who asked.

1. **Helpful**: does it answer the question that was asked, completely and concretely?
2. **Honest**: is it correct? A confident wrong answer is worse than a short right one.
3. **Harmless**: would following it hurt the person or anyone else?

Put two replies in the same tier only when you truly cannot choose between them.
If every reply is unacceptable, use *All unacceptable*.
"""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str | None
    """None when the user already existed (their password was left unchanged)."""


@dataclass(frozen=True)
class DemoSeed:
    project_id: int
    logins: list[DemoLogin]
    imported: int
    skipped: int
    reviewed_project_id: int | None = None
    export_id: int | None = None
    """The export of the reviewed project (consensus), ready for a training run."""
    export_pairs: int = 0
    public_project_id: int | None = None
    public_export_id: int | None = None
    """The export of the public pairs (consensus of three annotators), for a real model."""
    public_export_pairs: int = 0


def _ensure_user(session: Session, username: str, role: str, password: str) -> DemoLogin:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return DemoLogin(username, role, None)
    users.create_user(session, username, password, role)
    return DemoLogin(username, role, password)


def _ensure_project(
    session: Session,
    name: str = PROJECT_NAME,
    description: str = "Real questions with replies of mixed quality: rank them.",
) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is not None:
        return project
    return projects.create_project(
        session,
        name,
        {"labels_per_prompt": 2, "guidelines": GUIDELINES},
        description=description,
        status="active",
    )


def reviewed_rows(
    prompts_file: Path = DEMO_PROMPTS, reviews_file: Path = DEMO_REVIEWS
) -> list[dict[str, Any]]:
    """The demo prompts, each with the judgments of the two reviewers (``reviews.json``:
    two rankings per prompt id, best tier first)."""
    reviews = json.loads(reviews_file.read_text(encoding="utf-8"))
    rows = []
    for line in prompts_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rankings = reviews[row["id"]]
        row["judgments"] = [
            {"labeler": reviewer, "ranking": ranking}
            for reviewer, ranking in zip(REVIEWERS, rankings, strict=True)
        ]
        rows.append(row)
    return rows


def demo_texts(prompts_file: Path = DEMO_PROMPTS) -> list[str]:
    """Every prompt message and completion of the demo (the tiny model's vocabulary)."""
    texts = []
    for line in prompts_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            prompt = row["prompt"]
            messages = [prompt] if isinstance(prompt, str) else [m["content"] for m in prompt]
            texts.extend(messages + [c["text"] for c in row["completions"]])
    return texts


def tiny_model_folder(settings: Settings) -> Path:
    return (settings.data_dir / TINY_MODEL).resolve()


def real_model_folder(settings: Settings) -> Path | None:
    """all-MiniLM-L6-v2 in MODELS_DIR (``make models``), or None when it is not there."""
    folder = (settings.models_dir / REAL_MODEL).resolve()
    return folder if (folder / "config.json").is_file() else None


def real_model_hint(settings: Settings) -> str:
    """What to do when only the tiny model is there (the demo's output and the run page)."""
    return (
        "The demo's tiny model is random: its accuracy is chance, it only shows the loop runs. "
        f"For a real reward model, fetch {REAL_MODEL} with `python -m training.model_wheels "
        f"--dest {settings.models_dir} --only minilm` (in a checkout: `make models`) and run "
        "`prefloop demo` again: its link then trains it on the public pairs in about a minute."
    )


def _seed_ranked(
    session: Session, settings: Settings, name: str, description: str, body: bytes
) -> tuple[int, Export]:
    """A project whose prompts arrive already judged (``body``, import format) and its
    consensus export, each created when missing."""
    project = _ensure_project(session, name, description)
    importing.import_file(session, project, io.BytesIO(body))
    export = session.scalar(
        select(Export)
        .where(Export.project_id == project.id, Export.strategy == "consensus")
        .order_by(Export.id.desc())
        .limit(1)
    )
    if export is None or not (Path(export.path) / exports.MANIFEST_FILE).is_file():
        export = exports.create_export(session, settings, project, "consensus")
    return project.id, export


def _pairs(export: Export) -> int:
    return int(export.manifest.get("counts", {}).get("pairs", 0))


def seed_demo(
    session: Session,
    prompts_file: Path = DEMO_PROMPTS,
    settings: Settings | None = None,
    reviews_file: Path = DEMO_REVIEWS,
) -> DemoSeed:
    """Create (when missing) the demo users and project, and import the demo prompts.

    With ``settings`` (for ``DATA_DIR``), also the two ready-to-train projects and exports.
    """
    logins = [_ensure_user(session, *spec) for spec in DEMO_USERS]
    project = _ensure_project(session)
    for login in logins:
        if login.role == "labeler":
            projects.add_member(session, project, login.username)
    with prompts_file.open("rb") as stream:
        result = importing.import_file(session, project, stream)
    seed = DemoSeed(project.id, logins, result.imported, result.skipped)
    if settings is None:
        return seed
    reviewed = "".join(
        json.dumps(row, ensure_ascii=False) + "\n"
        for row in reviewed_rows(prompts_file, reviews_file)
    )
    reviewed_id, export = _seed_ranked(
        session,
        settings,
        REVIEWED_PROJECT_NAME,
        "The demo prompts, already ranked by two reviewers: export them and train.",
        reviewed.encode("utf-8"),
    )
    public_id, public = _seed_ranked(
        session,
        settings,
        PUBLIC_PROJECT_NAME,
        "Public preference pairs (PandaLM test set, Apache-2.0), each judged by three "
        "annotators: enough to train a small real reward model.",
        PUBLIC_PAIRS.read_bytes(),
    )
    return DemoSeed(
        project.id,
        logins,
        result.imported,
        result.skipped,
        reviewed_id,
        export.id,
        _pairs(export),
        public_id,
        public.id,
        _pairs(public),
    )
