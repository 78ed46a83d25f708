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
from functools import cache, cached_property
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

    ``completion_ids`` are sorted. ``above[a * K + b]`` counts the rankings that put
    ``completion_ids[a]`` strictly above ``completion_ids[b]``; ties are what is left
    of ``n_rankings``. ``doubled_points`` are twice the Borda points (exact integers)
    and ``ranked`` the consensus order as indices into ``completion_ids``.
    """

    method: str
    completion_ids: tuple[str, ...]
    n_rankings: int
    above: tuple[int, ...] = field(repr=False)
    doubled_points: tuple[int, ...] = field(repr=False)
    ranked: tuple[int, ...] = field(repr=False)

    @cached_property
    def order(self) -> tuple[str, ...]:
        """The consensus order, best first; equal scores broken by completion id."""
        return tuple(self.completion_ids[i] for i in self.ranked)

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
        return {cid: d / 2 for cid, d in zip(self.completion_ids, self.doubled_points, strict=True)}

    @cached_property
    def scores(self) -> dict[str, float]:
        """Per completion: BT log-strength, or mean Borda points per ranking (see module doc)."""
        ids, n = self.completion_ids, self.n_rankings
        if self.method == BORDA:
            return {cid: self.points[cid] / max(n, 1) for cid in ids}
        k = len(ids)
        above = self.above
        wins = [
            [(above[a * k + b] + (n - above[b * k + a])) / 2 if a != b else 0.0 for b in range(k)]
            for a in range(k)
        ]
        strengths = bradley_terry_strengths(wins)
        return {cid: math.log(p) for cid, p in zip(ids, strengths, strict=True)}


@cache
def _pair_slots(k: int) -> tuple[tuple[int, int, int, int], ...]:
    """(a, b, a * K + b, b * K + a) for every pair a < b of K items."""
    return tuple((a, b, a * k + b, b * k + a) for a in range(k) for b in range(a + 1, k))


def _tally(
    rankings: Sequence[Sequence[Sequence[str]]], ids: tuple[str, ...]
) -> tuple[list[int], list[int]]:
    """Flat K x K counts of 'a strictly above b', and twice each item's Borda points."""
    k = len(ids)
    index = {cid: i for i, cid in enumerate(ids)}
    above, doubled = [0] * (k * k), [0] * k
    slots = _pair_slots(k)
    for tiers in rankings:
        tier_of = [-1] * k
        seen = 0
        for number, tier in enumerate(tiers):
            size = len(tier)
            share = 2 * (k - seen - size) + size - 1  # 2 x below + tied others
            seen += size
            for cid in tier:
                if cid not in index:
                    raise ValueError(f"ranking names unknown completion {cid!r}")
                m = index[cid]
                tier_of[m] = number
                doubled[m] += share
        if seen != k or -1 in tier_of:
            raise ValueError(f"a ranking does not cover exactly the completions {list(ids)}")
        for a, b, ab, ba in slots:
            if tier_of[a] < tier_of[b]:
                above[ab] += 1
            elif tier_of[b] < tier_of[a]:
                above[ba] += 1
    return above, doubled


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
    above, doubled = _tally(rankings, ids)
    # ids are sorted and the sort is stable (also in reverse), so equal points keep id order
    ranked = sorted(range(len(ids)), key=doubled.__getitem__, reverse=True)
    return Consensus(method, ids, len(rankings), tuple(above), tuple(doubled), tuple(ranked))


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
