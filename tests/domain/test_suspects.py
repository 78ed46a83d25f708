"""A suspects run's file to flagged judgments: grouped by judgment, ranked, counted."""

from __future__ import annotations

import json

import pytest

from app.domain.errors import ValidationFailed
from app.domain.suspects import flagged_judgments, flagged_per_labeler


def line(rank, prompt, labeler, chosen="a", rejected="b", p=0.1, flagged=True) -> str:
    return json.dumps(
        {
            "rank": rank,
            "flagged": flagged,
            "prompt_id": prompt,
            "labeler": labeler,
            "chosen_id": chosen,
            "rejected_id": rejected,
            "fold": 0,
            "chosen_score": 0.0,
            "rejected_score": 1.0,
            "score_margin": -1.0,
            "p_labeled": p,
        }
    )


def test_a_judgment_is_shown_once_with_its_most_contradicted_pair():
    lines = [
        line(1, "p1", "ann", "c", "a", p=0.05),
        line(2, "p2", "bob", p=0.1),
        line(3, "p1", "ann", "b", "a", p=0.2),
        line(None, "p3", "ann", p=0.9, flagged=False),
        line(4, "p4", None, p=0.3),  # a consensus export's row names no labeler
        "",
    ]
    found = flagged_judgments(lines)
    assert [(j.rank, j.key, j.pairs) for j in found] == [
        (1, ("p1", "ann"), 2),
        (2, ("p2", "bob"), 1),
    ]
    assert (found[0].chosen_id, found[0].rejected_id, found[0].confidence) == ("c", "a", 0.95)
    assert flagged_per_labeler(found) == {"ann": 1, "bob": 1}


def test_ranks_are_renumbered_by_judgment():
    found = flagged_judgments([line(5, "p1", "ann"), line(9, "p2", "ann"), line(7, "p1", "ann")])
    assert [(j.rank, j.prompt_id) for j in found] == [(1, "p1"), (2, "p2")]


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "line 2 is not JSON"), ('{"flagged": true, "labeler": "x"}', "line 2 lacks")],
)
def test_a_broken_line_is_named(text, says):
    with pytest.raises(ValidationFailed) as caught:
        flagged_judgments([line(1, "p1", "ann"), text])
    assert says in str(caught.value.details)
