"""The import stores each prompt's agreement figures from a cache keyed by completion
position: exactly the figures ``prompt_figures`` gives with the file's own ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.figures import prompt_figures
from app.domain.importing.rows import CompletionIn, ImportedJudgment, ImportRow
from app.services.importing.writer import _row_figures


@st.composite
def judged_rows(draw: st.DrawFn) -> ImportRow:
    ids = draw(st.lists(st.text(min_size=1, max_size=3), min_size=2, max_size=6, unique=True))
    judgments = []
    for labeler in range(draw(st.integers(2, 4))):
        order = draw(st.permutations(ids))
        cuts = sorted(draw(st.sets(st.integers(1, len(ids) - 1))))
        tiers = [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True)]
        ranking = None if draw(st.integers(0, 5)) == 0 else tiers
        judgments.append(ImportedJudgment(f"ext:l{labeler}", ranking, ranking is None))
    completions = [CompletionIn(cid, "text") for cid in ids]
    return ImportRow(1, "p", "prompt", completions, judgments=judgments)


@settings(max_examples=300, deadline=None)
@given(judged_rows())
def test_cached_figures_are_the_figures_of_the_named_rankings(row: ImportRow) -> None:
    rankings = [j.ranking for j in row.judgments if j.ranking is not None]
    expected = prompt_figures(rankings, [c.external_id for c in row.completions])
    assert _row_figures(row) == expected
