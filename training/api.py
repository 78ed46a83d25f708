"""``training.run``: the one entry point the DB worker and the CLI call.

    result = training.run("reward", data=Path("exports/7"), model="models/SmolLM2-135M-Instruct",
                          out=Path("runs/12"), config={"max_steps": 100}, callbacks=my_callbacks)

``kind`` is ``reward | dpo | ppo | generate | suspects``. ``config`` is a dict of fields of
that kind (see ``training.config``; unknown fields raise ValueError) or a ready config object.
Arguments by kind:

- reward, dpo, suspects: ``data`` (export folder); suspects writes ``out/suspects.jsonl``.
- ppo: ``reward`` (a reward run folder, or a callable ``(prompts, completions) -> scores``)
  and prompts from ``data`` (the export's distinct prompts) or ``prompts`` (a JSONL file).
- generate: ``prompts`` (JSONL) and optionally ``adapter`` (a run folder or adapter folder);
  writes ``out/completions.jsonl``.

Each run writes ``out`` (see ``training.runtime``) and returns a ``RunResult``. When
``callbacks.should_stop()`` turns true at a logging step the run stops and raises
``training.Cancelled``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.config import RunConfig, coerce_config, config_class
from training.runtime import Callbacks, RunResult


def _require(value: Any, name: str, kind: str) -> Any:
    if value is None:
        raise ValueError(f"{name} is required for a {kind} run")
    return value


def _ppo(
    data: Path | None,
    model: str,
    out: Path,
    config: RunConfig,
    reward: Path | Callable | None,
    prompts: Path | None,
    callbacks: Callbacks | None,
) -> RunResult:
    from training.data import load_export, load_prompts, unique_prompts
    from training.ppo import train_ppo

    _require(reward, "reward", "ppo")
    if data is None and prompts is None:
        raise ValueError("data or prompts is required for a ppo run (where its prompts come from)")
    info: dict[str, Any] = {"reward": None if callable(reward) else str(reward)}
    if data is not None:
        export = load_export(data)
        rows, info["path"], info["sha256"] = unique_prompts(export.rows), str(data), export.sha256
    else:
        rows, info["prompts"] = load_prompts(prompts), str(prompts)
    reward_source = reward if callable(reward) else Path(reward)
    return train_ppo(rows, model, Path(out), config, reward_source, callbacks, data=info)


def run(
    kind: str,
    *,
    data: Path | None = None,
    model: str,
    out: Path,
    config: dict[str, Any] | RunConfig | None = None,
    reward: Path | Callable | None = None,
    prompts: Path | None = None,
    callbacks: Callbacks | None = None,
    adapter: Path | None = None,
) -> RunResult:
    """Run one training (or generation) job; see the module docstring."""
    config_class(kind)  # an unknown kind is refused before anything is written
    resolved = coerce_config(kind, config)
    out = Path(out)
    if kind == "reward":
        from training.reward import train_reward

        return train_reward(Path(_require(data, "data", kind)), model, out, resolved, callbacks)
    if kind == "suspects":
        from training.suspects import train_suspects

        return train_suspects(Path(_require(data, "data", kind)), model, out, resolved, callbacks)
    if kind == "dpo":
        from training.dpo import train_dpo

        return train_dpo(Path(_require(data, "data", kind)), model, out, resolved, callbacks)
    if kind == "ppo":
        return _ppo(data, model, out, resolved, reward, prompts, callbacks)
    from training.generate import run_generate

    return run_generate(
        model,
        Path(_require(prompts, "prompts", kind)),
        out,
        resolved,
        adapter=adapter,
        callbacks=callbacks,
    )
