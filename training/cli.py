"""Command line: ``train_app`` (reward | dpo | ppo) and ``generate_command``.

The app mounts them as ``prefloop train ...`` and ``prefloop generate ...``;
``python -m training`` runs the same commands without the app::

    python -m training reward --data exports/7 --model models/SmolLM2-135M-Instruct --out runs/rm
    python -m training ppo --data exports/7 --model M --reward runs/rm --out runs/ppo \\
        --preset small-gpu
    python -m training generate --model M --adapter runs/ppo --prompts prompts.jsonl -n 2 \\
        --mix-base --out next_round.jsonl

Several GPUs (one process each)::

    accelerate launch --num_processes 4 -m training dpo --data ... --model ... --out ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

train_app = typer.Typer(
    help="Train a reward model, DPO or PPO policy (LoRA) from an export.", no_args_is_help=True
)

DataOpt = Annotated[Path, typer.Option("--data", help="export folder (manifest + pairs.jsonl)")]
ModelOpt = Annotated[str, typer.Option("--model", help="base model: a local folder or hub id")]
OutOpt = Annotated[Path, typer.Option("--out", help="run folder to write")]
StepsOpt = Annotated[int | None, typer.Option("--max-steps", help="stop after N steps")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML or JSON config file")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="tiny-cpu | small-gpu | 7b-24gb")]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _train(
    kind: str,
    data: Path,
    model: str,
    out: Path,
    max_steps: int | None,
    config: Path | None,
    preset: str | None,
    reward: Path | None = None,
) -> None:
    import training

    overrides: dict[str, Any] = {} if max_steps is None else {"max_steps": max_steps}
    try:
        resolved = training.build_config(kind, preset=preset, file=config, overrides=overrides)
        result = training.run(kind, data=data, model=model, out=out, config=resolved, reward=reward)
    except training.Cancelled as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc), code=2)
    typer.echo(f"{kind} run done: {result.steps} steps, artifact {result.artifact}")
    for name, value in sorted(result.metrics.items()):
        typer.echo(f"  {name}: {value:.4g}")


@train_app.command("reward")
def reward_command(
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    max_steps: StepsOpt = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
) -> None:
    """Train a reward model (Bradley–Terry, LoRA) on an export."""
    _train("reward", data, model, out, max_steps, config, preset)


@train_app.command("dpo")
def dpo_command(
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    max_steps: StepsOpt = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
) -> None:
    """Train a policy with DPO (LoRA; the reference is the adapter-free base)."""
    _train("dpo", data, model, out, max_steps, config, preset)


@train_app.command("ppo")
def ppo_command(
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    reward: Annotated[Path, typer.Option("--reward", help="reward run folder")],
    max_steps: StepsOpt = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
) -> None:
    """Train a policy with PPO against a trained reward model, on the export's prompts."""
    _train("ppo", data, model, out, max_steps, config, preset, reward=reward)


def generate_command(
    model: ModelOpt,
    prompts: Annotated[Path, typer.Option("--prompts", help="JSONL of {id, prompt} rows")],
    out: Annotated[Path, typer.Option("--out", help="import JSONL to write")],
    n: Annotated[
        int, typer.Option("-n", help="completions per prompt (per model with --mix-base)")
    ] = 3,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="run or adapter folder")] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    mix_base: Annotated[
        bool,
        typer.Option("--mix-base", help="also sample n from the base model, shuffled together"),
    ] = False,
    engine: Annotated[
        str | None, typer.Option("--engine", help="transformers (default) or vllm (CUDA)")
    ] = None,
    prompt_format: Annotated[
        str | None,
        typer.Option(
            "--prompt-format",
            help="auto (default): a plain-string prompt is one user turn of the chat template "
            "when the model has one; chat: always; raw: the text as it is (base models)",
        ),
    ] = None,
) -> None:
    """Sample completions into the import format (SPEC §3). Exit code 3: some prompt still
    had an empty completion after resampling (the file is written; the ids are printed)."""
    from training.config import build_config
    from training.generate import EmptyCompletionsError, generate_to_file

    given = {
        "n": n,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "mix_base": mix_base,
        "prompt_format": prompt_format,
        "engine": engine,
    }
    try:
        config = build_config(
            "generate", overrides={k: v for k, v in given.items() if v is not None}
        )
        count = generate_to_file(model, prompts, out, config, adapter=adapter)
    except EmptyCompletionsError as exc:
        _fail(str(exc), code=3)
    except ValueError as exc:
        _fail(str(exc), code=2)
    typer.echo(f"wrote {count} prompts to {out}")


def job_command(
    spec: Annotated[Path, typer.Argument(help="job.json written by the worker")],
) -> None:
    """One process of a worker's job (``accelerate launch -m training job SPEC``): the worker
    writes the job file and reads the run folder back (``training.jobs``)."""
    from training.jobs import run_job

    raise typer.Exit(run_job(spec))


def main(argv: list[str] | None = None) -> None:
    """``python -m training``: the train commands plus ``generate`` (and the worker's
    ``job``)."""
    app = typer.Typer(help="Prefloop training (no database needed).", no_args_is_help=True)
    app.registered_commands.extend(train_app.registered_commands)
    app.command("generate")(generate_command)
    app.command("job", hidden=True)(job_command)
    app(args=argv if argv is not None else sys.argv[1:], prog_name="python -m training")
