"""Likely mislabels: every pair scored by a reward model that never saw it (kind ``suspects``).

The export's prompts are dealt into ``folds`` folds (every pair of a prompt in one fold, the
deal fixed by ``seed``). For each fold a reward model (the reward run's recipe: Bradley–Terry,
LoRA, ``training.reward``) is trained on the other folds and scores the fold's pairs, so each
pair gets ``p_labeled = σ(r_chosen − r_rejected)`` out of fold: the model's probability that the
labeler's order is right.

Ranking (confident learning, Northcutt et al. 2021, with ``cleanlab``): a pair has no class
axis, only an orientation, so each pair enters twice, once as labeled (class 1, "the first
completion is preferred") and once mirrored (class 0), with mirrored probabilities. Both
classes then share one per-class threshold, the mean self-confidence ``t = mean(p_labeled)``
over all pairs: the model's own held-out calibration. A pair is flagged when the model
backs the reverse order at least that confidently (``1 − p_labeled >= t``, cleanlab's
confident-joint off-diagonal); flagged pairs are ranked by self-confidence, lowest first.

Writes ``suspects.jsonl`` in the run folder: one line per pair, the flagged ones first in
rank order (``rank`` 1, 2, …), then the rest by ``p_labeled``; keys ``rank, flagged,
prompt_id, labeler, chosen_id, rejected_id, fold, chosen_score, rejected_score,
score_margin, p_labeled``. ``labeler`` is the export row's (strategy ``all``), else null.
Final metrics: ``oof_accuracy``, ``calibration_threshold``, ``suspect_pairs``, ``pairs``,
and ``fold<i>_accuracy``.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import SuspectsRunConfig
from training.data import DataError, prompt_key
from training.runtime import SUSPECTS_FILE, Callbacks, Cancelled, RunResult


def assign_folds(rows: Sequence[dict[str, Any]], folds: int, seed: int) -> list[int]:
    """The fold of each row: prompts (sorted, shuffled by ``seed``) dealt round-robin."""
    keys = sorted({prompt_key(r) for r in rows})
    if len(keys) < folds:
        raise DataError(f"a suspects run with {folds} folds needs at least {folds} prompts")
    random.Random(seed).shuffle(keys)
    fold_of = {key: i % folds for i, key in enumerate(keys)}
    return [fold_of[prompt_key(r)] for r in rows]


def rank_suspects(p_labeled: Sequence[float]) -> tuple[list[int], float]:
    """(indices of the flagged pairs, most confident first; the calibration threshold)."""
    import numpy as np
    from cleanlab.filter import find_label_issues

    p = np.clip(np.asarray(p_labeled, dtype=float), 1e-6, 1 - 1e-6)
    n = len(p)
    if n == 0:
        return [], math.nan
    labels = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    first_preferred = np.concatenate([p, 1 - p])  # as labeled, then mirrored
    pred_probs = np.stack([1 - first_preferred, first_preferred], axis=1)
    ranked = find_label_issues(
        labels,
        pred_probs,
        filter_by="confident_learning",
        return_indices_ranked_by="self_confidence",
        n_jobs=1,
    )
    return [int(i) for i in ranked if i < n], float(p.mean())


@dataclass(frozen=True)
class _Setup:
    """What every fold shares."""

    model: str
    config: SuspectsRunConfig
    out: Path
    dtype: Any
    use_bf16: bool
    recorder: Any


def _fold_bridge(recorder: Any, offset: int, fold: int) -> Any:
    """A TrainerCallback forwarding one fold's logs to the run's recorder at steps that go on
    from where the previous fold stopped (``run_metrics`` is unique by step)."""
    from transformers import TrainerCallback

    class FoldBridge(TrainerCallback):
        cancelled = False

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and recorder.log(offset + state.global_step, {**logs, "fold": fold}):
                self.cancelled = True
                control.should_training_stop = True
            return control

    return FoldBridge()


def _train_fold(
    setup: _Setup, rows: list[dict[str, Any]], fold: int, offset: int
) -> tuple[Any, Any, int]:
    """(trained model, tokenizer, steps) of one fold; raises Cancelled on request."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    from training.reward import _peft_config, load_backbone, tokenize_pairs
    from training.trl_common import trainer_arguments

    config = setup.config
    set_seed(config.seed + fold)
    backbone, tokenizer = load_backbone(setup.model, setup.dtype)
    bridge = _fold_bridge(setup.recorder, offset, fold)
    args = RewardConfig(
        **trainer_arguments(config, setup.out, setup.use_bf16, False),
        center_rewards_coefficient=config.center_rewards_coefficient,
    )
    trainer = RewardTrainer(
        model=backbone,
        args=args,
        train_dataset=Dataset.from_list(tokenize_pairs(tokenizer, rows, config)),
        processing_class=tokenizer,
        peft_config=_peft_config(backbone, config),
        callbacks=[bridge],
    )
    trainer.train()
    if bridge.cancelled:
        raise Cancelled(f"run stopped in fold {fold} on request")
    return trainer.model, tokenizer, trainer.state.global_step


def _scores(model: Any, tokenizer: Any, ids: list[list[int]], batch_size: int) -> list[float]:
    import torch

    model.eval()
    device = next(model.parameters()).device
    scores: list[float] = []
    for start in range(0, len(ids), batch_size):
        batch = tokenizer.pad(
            {"input_ids": ids[start : start + batch_size]}, padding=True, return_tensors="pt"
        ).to(device)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        scores.extend(logits.logits[:, 0].float().tolist())
    return scores


def _score_fold(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: SuspectsRunConfig
) -> list[tuple[float, float]]:
    """(chosen score, rejected score) of each held-out row."""
    from training.reward import tokenize_pairs

    examples = tokenize_pairs(tokenizer, rows, config)
    size = config.per_device_batch_size
    chosen = _scores(model, tokenizer, [e["chosen_ids"] for e in examples], size)
    rejected = _scores(model, tokenizer, [e["rejected_ids"] for e in examples], size)
    return list(zip(chosen, rejected, strict=True))


def _sigmoid(x: float) -> float:
    """σ(x) without overflow for any margin."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    z = math.exp(x)
    return z / (1 + z)


def _line(row: dict[str, Any], fold: int, scores: tuple[float, float]) -> dict[str, Any]:
    chosen, rejected = scores
    margin = chosen - rejected
    return {
        "rank": None,
        "flagged": False,
        "prompt_id": row.get("prompt_id"),
        "labeler": row.get("labeler"),
        "chosen_id": row.get("chosen_id"),
        "rejected_id": row.get("rejected_id"),
        "fold": fold,
        "chosen_score": round(chosen, 6),
        "rejected_score": round(rejected, 6),
        "score_margin": round(margin, 6),
        "p_labeled": round(_sigmoid(margin), 6),
    }


def _write_lines(out: Path, lines: list[dict[str, Any]]) -> Path:
    """suspects.jsonl, written whole (a temporary file renamed into place)."""
    target = out / SUSPECTS_FILE
    partial = target.with_suffix(".jsonl.partial")
    with partial.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return target


def _ordered(lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Flag and rank the lines (see the module docstring); flagged first, in rank order."""
    flagged, threshold = rank_suspects([line["p_labeled"] for line in lines])
    for rank, index in enumerate(flagged, start=1):
        lines[index].update(rank=rank, flagged=True)
    chosen = set(flagged)
    rest = sorted(
        (i for i in range(len(lines)) if i not in chosen), key=lambda i: lines[i]["p_labeled"]
    )
    return [lines[i] for i in [*flagged, *rest]], threshold


def train_suspects(
    data: Path, model: str, out: Path, config: SuspectsRunConfig, callbacks: Callbacks | None = None
) -> RunResult:
    """Score every pair of an export out of fold and rank the likely mislabels."""
    from training.trl_common import start_run

    export, dtype, use_bf16, recorder = start_run("suspects", data, model, out, config, callbacks)
    setup = _Setup(model, config, Path(out), dtype, use_bf16, recorder)
    rows = export.rows
    fold_of = assign_folds(rows, config.folds, config.seed)
    scored: dict[int, tuple[float, float]] = {}
    final: dict[str, float] = {}
    offset = 0
    for fold in range(config.folds):
        train = [r for r, f in zip(rows, fold_of, strict=True) if f != fold]
        held = [i for i, f in enumerate(fold_of) if f == fold]
        trained, tokenizer, steps = _train_fold(setup, train, fold, offset)
        fold_scores = _score_fold(trained, tokenizer, [rows[i] for i in held], config)
        scored.update(zip(held, fold_scores, strict=True))
        offset += steps
        final[f"fold{fold}_accuracy"] = sum(c > r for c, r in fold_scores) / len(fold_scores)
        del trained
        gc.collect()
    lines = [_line(row, fold_of[i], scored[i]) for i, row in enumerate(rows)]
    ordered, threshold = _ordered(lines)
    final.update(
        oof_accuracy=sum(line["score_margin"] > 0 for line in lines) / len(lines),
        calibration_threshold=threshold,
        suspect_pairs=float(sum(line["flagged"] for line in lines)),
        pairs=float(len(lines)),
    )
    recorder.log(offset, final)
    artifact = _write_lines(Path(out), ordered) if recorder.main else Path(out) / SUSPECTS_FILE
    return recorder.finish(final, offset, artifact=artifact)
