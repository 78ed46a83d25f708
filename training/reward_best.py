"""Best-on-dev model selection for reward training (``dev_fraction``/``early_stopping_patience``).

The dev split is carved from the TRAINING prompts, so the held-out split stays untouched until
the one final evaluation. Every ``eval_steps``, and after the last step, the trainer evaluates
the dev split (logged as ``eval_dev_accuracy``, ``eval_dev_loss``...); this callback keeps a
copy of the trainable weights of the best evaluation (higher accuracy, then lower loss), stops
after ``patience`` evaluations without a gain, and at the end of training puts the best weights
back and points the trainer's ``eval_dataset`` at the held-out split for the final evaluation.

Imported only inside run functions: it imports torch and transformers at module level.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback


class KeepBestOnDev(TrainerCallback):
    """Select the trainable weights of the best dev evaluation; optional early stopping."""

    def __init__(self, patience: int | None, heldout: Any, log: Any = None) -> None:
        self.patience = patience
        self.heldout = heldout  # the final evaluation's dataset (None: no held-out split)
        self.log = log  # log(step, metrics) for the selection's summary, e.g. RunRecorder.log
        self.trainer: Any = None  # set after the trainer is built (to swap its eval_dataset)
        self.best_key: tuple[float, float] | None = None
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] = {}
        self.without_gain = 0

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if state.global_step >= state.max_steps:  # the final weights are candidates too
            control.should_evaluate = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        """TRL names its dev metrics like held-out ones (``eval_accuracy``): rename them
        ``eval_dev_*`` for the callbacks after this one (the run's metrics.jsonl)."""
        if logs and "eval_dev_loss" in logs:
            for key in [k for k in logs if k.startswith("eval_") and "_dev_" not in k]:
                logs["eval_dev_" + key[len("eval_") :]] = logs.pop(key)
        return control

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):  # noqa: ANN001
        if not metrics or "eval_dev_loss" not in metrics:  # not a dev evaluation
            return control
        accuracy = metrics.get("eval_dev_accuracy", metrics.get("eval_accuracy", 0.0))
        key = (accuracy, -metrics["eval_dev_loss"])
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_step, self.without_gain = key, state.global_step, 0
            self.best_state = {
                name: param.detach().to("cpu", copy=True)
                for name, param in model.named_parameters()
                if param.requires_grad
            }
        else:
            self.without_gain += 1
            if self.patience is not None and self.without_gain >= self.patience:
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        if self.best_state:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in self.best_state:
                        param.copy_(self.best_state[name].to(param.device))
            if self.log is not None:
                summary = {"best_dev_step": self.best_step, "best_dev_accuracy": self.best_key[0]}
                self.log(state.global_step, summary)
        if self.trainer is not None:
            self.trainer.eval_dataset = self.heldout
        return control
