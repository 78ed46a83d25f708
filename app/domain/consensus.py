"""Consensus of several rankings of one prompt: Bradley–Terry or Borda (SPEC §4).

Every judgment ranks all completions of its prompt, so each judgment compares
every pair once: a win counts 1, a tie half a win each way. From those counts:

* **Borda**: a completion's points are the completions ranked below it plus half
  the completions tied with it, summed over judgments. ``scores`` are the mean
  points per ranking judgment (0 .. K-1).
* **Bradley–Terry**: maximum likelihood strengths ``p`` with
  ``P(i beats j) = p_i / (p_i + p_j)``, ties as half a win each way, plus a
  small symmetric prior: every completion also plays one virtual game, tied,
  against a pseudo-opponent of fixed strength 1. The prior keeps the estimate
  finite when a completion wins (or loses) every comparison and fixes the
  scale. Solved by Newton–Raphson on the log-strengths (the MM iterations of
  Hunter 2004 reach the same maximum, more slowly). ``scores`` are log-strengths
  (0 = even with the pseudo-opponent).

**Consensus order**: completions sorted by score, best first; equal scores are
broken by completion id. Because every ranking compares every pair, each
completion plays every other equally often, and then the Bradley–Terry
strength is a strictly increasing function of the Borda points (the MLE
equation ``W_i = sum_j n p_i/(p_i+p_j) + prior`` grows strictly with ``p_i``).
Both methods therefore give the same order; the order is computed exactly from
the (half-integer) points, and Bradley–Terry strengths are fitted only when
``scores`` is read.

Judgments with ``reject_all`` carry no ranking and are not passed here; they
cast no pair votes (they still count in ``n_judgments`` of an export row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

BRADLEY_TERRY = "bradley_terry"
BORDA = "borda"
METHODS = (BRADLEY_TERRY, BORDA)

BT_PRIOR_GAMES = 1.0
BT_TOLERANCE = 1e-12
BT_MAX_ITERATIONS = 100


class PairVotes(NamedTuple):
    """Votes of the ranking judgments on the unordered pair ``(first, second)``, first < second."""

    first: str
    second: str
    first_over_second: int
    second_over_first: int
    ties: int


@dataclass(frozen=True)
class Consensus:
    """The combined view of all ranking judgments of one prompt.

    ``completion_ids`` are sorted; ``order`` is the consensus order, best first.
    ``above[a * K + b]`` counts the rankings that put ``completion_ids[a]`` strictly
    above ``completion_ids[b]``; ties are what is left of ``n_rankings``.
    """

    method: str
    completion_ids: tuple[str, ...]
    n_rankings: int
    above: tuple[int, ...] = field(repr=False)
    order: tuple[str, ...]

    @cached_property
    def index(self) -> dict[str, int]:
        """Completion id -> its position in ``completion_ids``."""
        return {cid: i for i, cid in enumerate(self.completion_ids)}

    def pair(self, chosen: str, rejected: str) -> tuple[int, int, int]:
        """``(votes_for, votes_against, votes_tie)`` for ``chosen`` over ``rejected``."""
        k = len(self.completion_ids)
        c, r = self.index[chosen], self.index[rejected]
        votes_for, votes_against = self.above[c * k + r], self.above[r * k + c]
        return votes_for, votes_against, self.n_rankings - votes_for - votes_against

    @cached_property
    def votes(self) -> dict[tuple[str, str], PairVotes]:
        """Every unordered pair ``(i, j)``, ``i < j``, with its votes."""
        ids = self.completion_ids
        return {
            (first, second): PairVotes(first, second, *self.pair(first, second))
            for a, first in enumerate(ids)
            for second in ids[a + 1 :]
        }

    @cached_property
    def points(self) -> dict[str, float]:
        """Borda points summed over rankings: completions below plus half the tied ones."""
        return {
            cid: _doubled_points(self.above, len(self.completion_ids), self.n_rankings, i) / 2
            for i, cid in enumerate(self.completion_ids)
        }

    @cached_property
    def scores(self) -> dict[str, float]:
        """Per completion: BT log-strength, or mean Borda points per ranking (see module doc)."""
        if self.method == BORDA:
            n = max(self.n_rankings, 1)
            return {cid: self.points[cid] / n for cid in self.completion_ids}
        k = len(self.completion_ids)
        wins = [
            [
                self.above[a * k + b]
                + 0.5 * self.pair(self.completion_ids[a], self.completion_ids[b])[2]
                if a != b
                else 0.0
                for b in range(k)
            ]
            for a in range(k)
        ]
        strengths = bradley_terry_strengths(wins)
        return {cid: math.log(p) for cid, p in zip(self.completion_ids, strengths, strict=True)}


def _doubled_points(above: Sequence[int], k: int, n: int, i: int) -> int:
    """Twice the Borda points of item i: 2 wins + ties = wins - losses + n (k - 1)."""
    wins = sum(above[i * k : i * k + k])
    losses = sum(above[i::k])
    return wins - losses + n * (k - 1)


def _tally(rankings: Sequence[Sequence[Sequence[str]]], ids: tuple[str, ...]) -> list[int]:
    """Flat K x K counts of 'a strictly above b' over all rankings."""
    k = len(ids)
    index = {cid: i for i, cid in enumerate(ids)}
    above = [0] * (k * k)
    for tiers in rankings:
        higher: list[int] = []
        seen = 0
        for tier in tiers:
            try:
                members = [index[cid] for cid in tier]
            except KeyError as exc:
                raise ValueError(f"ranking names unknown completion {exc.args[0]!r}") from None
            for m in members:
                for h in higher:
                    above[h * k + m] += 1
            higher.extend(members)
            seen += len(members)
        if seen != k or len(set(higher)) != k:
            raise ValueError(f"a ranking does not cover exactly the completions {list(ids)}")
    return above


def consensus(
    rankings: Sequence[Sequence[Sequence[str]]],
    completion_ids: Sequence[str],
    method: str = BRADLEY_TERRY,
) -> Consensus:
    """Combine the rankings of one prompt (each covering every completion exactly once).

    Raises ValueError for an unknown method or a ranking that does not cover the
    completions exactly once (rankings are validated before they are stored).
    """
    if method not in METHODS:
        raise ValueError(f"unknown consensus method {method!r}; use one of {METHODS}")
    ids = tuple(sorted(completion_ids))
    above = _tally(rankings, ids)
    k, n = len(ids), len(rankings)
    doubled = [_doubled_points(above, k, n, i) for i in range(k)]
    order = tuple(ids[i] for i in sorted(range(k), key=lambda i: (-doubled[i], ids[i])))
    return Consensus(method, ids, n, tuple(above), order)


def _log_likelihood(theta: np.ndarray, wins: np.ndarray, prior_games: float) -> float:
    diff = theta[:, None] - theta[None, :]
    pairs = float((wins * -np.logaddexp(0.0, -diff)).sum())
    prior = prior_games / 2 * (-np.logaddexp(0.0, -theta) - np.logaddexp(0.0, theta)).sum()
    return pairs + float(prior)


def bradley_terry_strengths(
    wins: Sequence[Sequence[float]], prior_games: float = BT_PRIOR_GAMES
) -> list[float]:
    """Bradley–Terry maximum likelihood strengths, with a symmetric tie prior.

    ``wins[i][j]`` is how often i beat j (ties counted as 0.5 each way). Every item
    also plays ``prior_games`` virtual games against a pseudo-opponent of strength 1
    and wins half of them, which makes the log-likelihood strictly concave in the
    log-strengths: the maximum is unique and finite. Found by Newton–Raphson with
    step halving, stopping when the score equations hold to ``BT_TOLERANCE``.
    """
    w = np.asarray(wins, dtype=float)
    games = w + w.T
    theta = np.zeros(len(w))
    for _ in range(BT_MAX_ITERATIONS):
        p_win = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))
        p_prior = 1.0 / (1.0 + np.exp(-theta))
        gradient = w.sum(axis=1) - (games * p_win).sum(axis=1) + prior_games * (0.5 - p_prior)
        if np.abs(gradient).max() < BT_TOLERANCE:
            break
        curvature = games * p_win * (1.0 - p_win)
        hessian = curvature - np.diag(curvature.sum(axis=1) + prior_games * p_prior * (1 - p_prior))
        step = np.linalg.solve(hessian, gradient)
        current = _log_likelihood(theta, w, prior_games)
        while (
            _log_likelihood(theta - step, w, prior_games) < current and np.abs(step).max() > 1e-12
        ):
            step /= 2
        theta = theta - step
    return [float(x) for x in np.exp(theta)]
