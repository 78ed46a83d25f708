"""The dashboard's prompt-level views: the disagreement list, one prompt's judgments side
by side, and the progress of adaptive overlap.

They read the per-prompt figures the judgment and import services keep up to date in
``prompts.agreement`` (pairwise agreement) and ``prompts.kendall_w``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlalchemy.orm import Session

from app.db.models import Completion, Judgment, Project, Prompt, User
from app.domain.consensus import consensus
from app.domain.errors import NotFound
from app.services.projects import settings_of

PER_PAGE = 20


@dataclass(frozen=True)
class DisagreementRow:
    id: int
    external_id: str
    preview: str
    n_judgments: int
    agreement: float
    kendall_w: float | None
    is_gold: bool


@dataclass(frozen=True)
class DisagreementPage:
    rows: list[DisagreementRow]
    page: int
    pages: int
    total: int


def prompt_preview(prompt: Any, limit: int = 140) -> str:
    """A one-line preview: the text, or the last user message of a chat prompt."""
    if isinstance(prompt, list):
        messages = [m for m in prompt if isinstance(m, dict)]
        asked = [m for m in messages if m.get("role") == "user"] or messages
        prompt = asked[-1].get("content", "") if asked else ""
    text = " ".join(str(prompt).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def disagreements(
    session: Session, project_id: int, page: int = 1, per_page: int = PER_PAGE
) -> DisagreementPage:
    """Prompts with a known agreement, lowest first (ties by id), one page of them."""
    where = (Prompt.project_id == project_id, Prompt.agreement.is_not(None))
    total = session.scalar(select(func.count()).select_from(Prompt).where(*where)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(
            Prompt.id,
            Prompt.external_id,
            Prompt.prompt,
            Prompt.n_judgments,
            Prompt.agreement,
            Prompt.kendall_w,
            Prompt.is_gold,
        )
        .where(*where)
        .order_by(Prompt.agreement, Prompt.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        DisagreementRow(pid, ext, prompt_preview(text), n, agreement, w, gold)
        for pid, ext, text, n, agreement, w, gold in rows
    ]
    return DisagreementPage(items, page, pages, total)


@dataclass(frozen=True)
class JudgmentView:
    labeler: str
    ranking: list[list[str]] | None
    reject_all: bool
    ratings: dict[str, dict[str, int]]
    flags: dict[str, list[str]]
    rationale: str
    seconds: float | None


@dataclass(frozen=True)
class PromptDetail:
    prompt: Prompt
    completions: list[Completion]
    judgments: list[JudgmentView]
    consensus_order: list[str]


def prompt_detail(session: Session, project_id: int, prompt_id: int) -> PromptDetail:
    """One prompt with its completions and every judgment (by labeler name)."""
    prompt = session.get(Prompt, prompt_id)
    if prompt is None or prompt.project_id != project_id:
        raise NotFound(f"prompt {prompt_id} not found in this project")
    completions = list(
        session.scalars(
            select(Completion)
            .where(Completion.prompt_id == prompt_id)
            .order_by(Completion.position)
        )
    )
    rows = session.execute(
        select(User.username, Judgment)
        .join(User, User.id == Judgment.labeler_id)
        .where(Judgment.prompt_id == prompt_id)
        .order_by(User.username)
    )
    judgments = [
        JudgmentView(
            labeler=name,
            ranking=j.ranking,
            reject_all=j.reject_all,
            ratings=j.ratings or {},
            flags=j.flags or {},
            rationale=j.rationale or "",
            seconds=None if j.duration_ms is None else j.duration_ms / 1000,
        )
        for name, j in rows
    ]
    rankings = [j.ranking for j in judgments if j.ranking and not j.reject_all]
    ids = [c.external_id for c in completions]
    order = list(consensus(rankings, ids).order) if rankings else []
    return PromptDetail(prompt, completions, judgments, order)


def overlap_progress(session: Session, project: Project) -> dict[str, Any]:
    """Labels per prompt: k, the adaptive setting, and how many prompts got or await more.

    ``raised``: prompts whose target was raised above k (contested ones); ``waiting``:
    raised prompts still short of their target; ``extra_judgments``: judgments beyond k.
    """
    settings = settings_of(project)
    k = settings.labels_per_prompt
    raised = Prompt.target_labels > k
    counts = session.execute(
        select(
            func.count(),
            func.count().filter(raised),
            func.count().filter(raised, Prompt.n_judgments < Prompt.target_labels),
            func.coalesce(
                func.sum(case((Prompt.n_judgments > k, Prompt.n_judgments - k), else_=0)), 0
            ).cast(Integer),
            func.count().filter(Prompt.n_judgments >= k),
        ).where(Prompt.project_id == project.id, Prompt.is_gold.is_(False))
    ).one()
    adaptive = settings.adaptive
    return {
        "k": k,
        "adaptive": adaptive.model_dump() if adaptive else None,
        "prompts": counts[0],
        "raised": counts[1],
        "waiting": counts[2],
        "extra_judgments": counts[3],
        "reached_k": counts[4],
    }
