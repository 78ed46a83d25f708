"""Does the loop make a policy better? HH-RLHF harmless-base, judged by a model trained apart.

The 2.3k test pairs of HH-RLHF harmless-base are split BY PROMPT (fixed seed) into A (judge),
B (training) and C (held out). Every model is trained through the CLI users run
(``prefloop train ...`` / ``prefloop generate``, this checkout's code)::

    judge   MiniLM reward model on A            -> pairwise accuracy on C
    dpo     SmolLM2-135M-Instruct + LoRA on B   -> implicit-reward accuracy on C, before/after
    rm      SmolLM2 reward model on B           -> the reward of ...
    ppo     SmolLM2 + LoRA on B's prompts       -> reward and KL by step
    generate  one completion per C prompt from each policy and from the base (same seed and
            sampling, ``-n 1 --mix-base``); the judge scores them -> win-rates over the base
            with 95% Wilson intervals (ties count half), mean lengths, and two length-controlled
            views (pairs of similar length; judge gain at equal length by least squares)

    python bench/loop_improves.py                 # the real run (~30 min on 2 idle cores)
    python bench/loop_improves.py --quick         # smoke run of the whole path (a few minutes)

Needs ``make models`` (``models/``) and ``../shared/data/hh-rlhf``. Artifacts (exports, run
folders, completions, ``results.json``, logs) go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import loop_eval  # noqa: E402 (imports torch only inside its functions)
import loop_stats as st  # noqa: E402

DATA = REPO / ".." / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
POLICY, JUDGE = "SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"
# Judge: the MiniLM recipe of bench/rm_hh_harmless.py (training/README.md, "Benchmark"), one
# epoch instead of two to fit the CPU budget; trained on all of A (C is its held-out set).
JUDGE_CONFIG = {
    "num_train_epochs": 1.0,
    "per_device_batch_size": 16,
    "learning_rate": 2e-3,
    "lora_r": 16,
    "lora_alpha": 32,
    "max_length": 96,
    "lora_layers": 2,
    "modules_to_save": ["pooler"],
    "logging_steps": 20,
    "eval_fraction": 0.0,
    "precision": "fp32",
}
RM_CONFIG = {
    "per_device_batch_size": 8,
    "learning_rate": 5e-4,
    "max_length": 128,
    "lora_layers": 8,
    "logging_steps": 5,
    "eval_fraction": 0.0,
}
DPO_CONFIG = {
    "per_device_batch_size": 4,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "constant",
    "beta": 0.1,
    "max_length": 128,
    "logging_steps": 5,
    "eval_fraction": 0.0,
}
PPO_CONFIG = {
    "rollout_batch_size": 8,
    "mini_batch_size": 4,
    "ppo_epochs": 1,
    "learning_rate": 2e-4,
    "kl_coef": 0.05,
    "max_prompt_length": 128,
    "max_new_tokens": 32,
    "sample_every": 0,
}
SIZES = {  # real run / --quick
    "real": {"rm_steps": 12, "dpo_steps": 60, "ppo_steps": 16, "gen": 100, "dpo_eval": 100},
    "quick": {"rm_steps": 2, "dpo_steps": 2, "ppo_steps": 1, "gen": 6, "dpo_eval": 8},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--out", type=Path, default=Path("/tmp/prefloop-loop"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="0.45,0.30,0.25", help="fractions of prompts A,B,C")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--precision", default="fp32", help="SmolLM2 runs: fp32 or bf16 (GPU)")
    parser.add_argument("--judge-epochs", type=float, default=None)
    parser.add_argument(
        "--lora-layers", type=int, default=8, help="DPO/PPO LoRA on the top N layers (0: all)"
    )
    for name in ("rm-steps", "dpo-steps", "ppo-steps", "gen", "dpo-eval"):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=32, help="for the win-rate")
    parser.add_argument("--max-prompt-chars", type=int, default=400, help="C prompts to sample")
    parser.add_argument("--set", action="append", default=[], metavar="KIND.FIELD=VALUE")
    parser.add_argument(
        "--reuse", action="store_true", help="skip CLI steps already done with the same arguments"
    )
    args = parser.parse_args(argv)
    for key, value in SIZES["quick" if args.quick else "real"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def overrides(values: list[str]) -> dict[str, dict[str, Any]]:
    """``--set dpo.beta=0.2`` -> ``{"dpo": {"beta": 0.2}}`` (values as JSON when they parse)."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        target, _, raw = item.partition("=")
        kind, _, field = target.partition(".")
        if kind not in ("judge", "rm", "dpo", "ppo") or not field:
            raise SystemExit(f"--set {item!r}: expected judge|rm|dpo|ppo.FIELD=VALUE")
        try:
            out.setdefault(kind, {})[field] = json.loads(raw)
        except json.JSONDecodeError:
            out.setdefault(kind, {})[field] = raw
    return out


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Cli:
    """``prefloop`` subcommands run as subprocesses on this checkout's code, logged to files."""

    def __init__(self, out: Path, threads: int, reuse: bool = False) -> None:
        self.reuse = reuse
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        script = Path(sys.executable).parent / "prefloop"
        self.train = (
            [str(script), "train"] if script.exists() else [sys.executable, "-m", "training"]
        )
        self.gen = [*self.train[:-1], "generate"] if script.exists() else [*self.train, "generate"]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        if threads:
            self.env["OMP_NUM_THREADS"] = str(threads)
        self.minutes: dict[str, float] = {}
        self.cpu_minutes: dict[str, float] = {}

    def timed(self, name: str, function: Any, *args: Any) -> Any:
        """Run an in-process evaluation step, recording its wall and CPU minutes."""
        started, cpu = time.monotonic(), _self_cpu()
        result = function(*args)
        self.minutes[name] = (time.monotonic() - started) / 60
        self.cpu_minutes[name] = (_self_cpu() - cpu) / 60
        return result

    def __call__(
        self, name: str, command: list[str], args: list[str], fingerprint: str = "", ok=(0,)
    ) -> None:
        """Run one step; exit codes other than ``ok`` stop the bench with the log's tail."""
        marker = self.logs / f"{name}.done"
        key = json.dumps([command, args, fingerprint])
        if self.reuse and marker.is_file() and marker.read_text() == key:
            print(f"{name}: reused (--reuse)", flush=True)
            return
        marker.unlink(missing_ok=True)
        started, cpu = time.monotonic(), _children_cpu()
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command[1:] + args)}", flush=True)
        with (self.logs / f"{name}.log").open("w") as log:
            done = subprocess.run(
                command + args, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.minutes[name] = (time.monotonic() - started) / 60
        self.cpu_minutes[name] = (_children_cpu() - cpu) / 60
        if done.returncode not in ok:
            tail = (self.logs / f"{name}.log").read_text()[-3000:]
            raise SystemExit(f"{name} failed (exit {done.returncode}):\n{tail}")
        marker.write_text(key)


def train(cli: Cli, kind: str, name: str, export: Path, model: Path, out: Path, config: dict):
    config_file = out / "configs" / f"{name}.json"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(config, indent=2))
    extra = ["--reward", str(out / "rm")] if kind == "ppo" else []
    cli(name, cli.train + [kind], ["--data", str(export), "--model", str(model)]
        + ["--out", str(out / name), "--config", str(config_file), *extra],
        config_file.read_text())  # fmt: skip


def generation_prompts(rows: list[dict], count: int, max_chars: int, seed: int) -> list[dict]:
    """``count`` distinct C prompts of at most ``max_chars`` characters, in seeded order."""
    seen: dict[str, Any] = {}
    for row in rows:
        if sum(len(m["content"]) for m in row["prompt"]) <= max_chars:
            seen.setdefault(row["prompt_id"], row["prompt"])
    keys = sorted(seen)
    random.Random(seed).shuffle(keys)
    return [{"id": k, "prompt": seen[k]} for k in keys[:count]]


def read_generations(path: Path, base: str) -> tuple[list[Any], list[str], list[str]]:
    """(prompts, policy texts, base texts) of a ``-n 1 --mix-base`` generate file."""
    prompts, policy, reference = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_model = {c["model"] == base: c["text"] for c in row["completions"]}
        prompts.append(row["prompt"])
        policy.append(by_model[False])
        reference.append(by_model[True])
    return prompts, policy, reference


def prepare(args: argparse.Namespace) -> dict[str, list[dict]]:
    fractions = [float(f) for f in args.split.split(",")]
    parts = st.split_three(st.read_hh(args.data), fractions, args.seed)
    if args.quick:  # a few pairs per part: the whole path, not the figures
        parts = {"A": parts["A"][:48], "B": parts["B"][:24], "C": parts["C"]}
    for name in ("A", "B"):
        st.write_export(parts[name], args.out / f"export_{name}", f"hh-harmless-{name}")
    counts = {k: (len({r["prompt_id"] for r in v}), len(v)) for k, v in parts.items()}
    print("split (prompts, pairs):", counts, flush=True)
    return parts


def top_layer_targets(model: Path, count: int) -> list[str] | str:
    """LoRA target names of the Llama-style linears in the top ``count`` layers: the backward
    pass then stops there (the project's ``lora_layers`` for reward runs, spelled out)."""
    if count <= 0:
        return "all-linear"
    layers = json.loads((model / "config.json").read_text())["num_hidden_layers"]
    names = [f"self_attn.{p}_proj" for p in "qkvo"] + [
        f"mlp.{p}_proj" for p in ("gate", "up", "down")
    ]
    return [f"model.layers.{i}.{n}" for i in range(max(0, layers - count), layers) for n in names]


def train_judge(cli: Cli, args: argparse.Namespace) -> None:
    judge = {**JUDGE_CONFIG, "seed": args.seed}
    if args.judge_epochs is not None:
        judge["num_train_epochs"] = args.judge_epochs
    if args.quick:
        judge["max_steps"] = 3
    judge.update(overrides(args.set).get("judge", {}))
    train(cli, "reward", "judge", args.out / "export_A", args.models / JUDGE, args.out, judge)


def train_on_b(cli: Cli, args: argparse.Namespace, kind: str, name: str) -> None:
    """The SmolLM2 runs on B: ``dpo``, ``rm`` (reward) or ``ppo``."""
    base, steps = {
        "dpo": (DPO_CONFIG, args.dpo_steps),
        "rm": (RM_CONFIG, args.rm_steps),
        "ppo": (PPO_CONFIG, args.ppo_steps),
    }[name]
    policy = args.models / POLICY
    config = {**base, "seed": args.seed, "precision": args.precision, "max_steps": steps}
    if kind != "reward":
        config["lora_target_modules"] = top_layer_targets(policy, args.lora_layers)
    config.update(overrides(args.set).get(name, {}))
    train(cli, kind, name, args.out / "export_B", policy, args.out, config)


def generate_all(cli: Cli, args: argparse.Namespace, rows_c: list[dict]) -> Path:
    prompts = generation_prompts(rows_c, args.gen, args.max_prompt_chars, args.seed)
    prompts_file = args.out / "prompts_C.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in prompts), encoding="utf-8")
    for name in ("dpo", "ppo"):
        cli(f"generate_{name}", cli.gen,
            ["--model", str(args.models / POLICY), "--adapter", str(args.out / name),
             "--prompts", str(prompts_file), "-n", "1", "--mix-base",
             "--max-new-tokens", str(args.max_new_tokens),
             "--out", str(args.out / f"generated_{name}.jsonl")],
            cli.logs.joinpath(f"{name}.done").read_text(), ok=(0, 3))  # fmt: skip
    # exit 3: some completions stayed empty after resampling (file written; counted below)
    return prompts_file


def judge_accuracy(args: argparse.Namespace, rows_c: list[dict]) -> dict[str, float]:
    from training.data import completion_text

    prompts = [r["prompt"] for r in rows_c]
    scores = loop_eval.judge_scores(
        args.out / "judge",
        prompts + prompts,
        [completion_text(r["chosen"]) for r in rows_c]
        + [completion_text(r["rejected"]) for r in rows_c],
    )
    n = len(rows_c)
    return st.win_rate(scores[:n], scores[n:])


def dpo_accuracy(args: argparse.Namespace, rows_c: list[dict]) -> dict[str, Any]:
    sample = list(rows_c)
    random.Random(args.seed).shuffle(sample)
    sample = sample[: args.dpo_eval]
    max_length = int(overrides(args.set).get("dpo", {}).get("max_length", DPO_CONFIG["max_length"]))
    found = loop_eval.implicit_reward_accuracy(
        str(args.models / POLICY), args.out / "dpo" / "adapter", sample, max_length
    )
    zeros = [0.0] * len(sample)
    return {
        "before": st.win_rate(zeros, zeros),  # adapter == reference: every margin is 0
        "after": st.win_rate(found["margins"], zeros),
        "reference_loglik": st.win_rate(found["reference_margins"], zeros),
        "mean_margin": sum(found["margins"]) / len(sample),
    }


def win_rates(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    policy_name = str(args.models / POLICY)
    results = {}
    for name in ("dpo", "ppo"):
        prompts, texts, base = read_generations(args.out / f"generated_{name}.jsonl", policy_name)
        scores = loop_eval.judge_scores(args.out / "judge", prompts + prompts, texts + base)
        lengths = loop_eval.token_lengths(policy_name, texts + base)
        n = len(texts)
        p, b, lp, lb = scores[:n], scores[n:], lengths[:n], lengths[n:]
        results[name] = {
            "win": st.win_rate(p, b),
            "matched": st.matched_win_rate(p, b, lp, lb, 0.2),
            "gain": st.length_adjusted_gain(p, b, lp, lb) if n >= 3 else None,
            "len_policy": sum(lp) / n,
            "len_base": sum(lb) / n,
            "empty": (sum(not t for t in texts), sum(not t for t in base)),
            "judge_mean": (sum(p) / n, sum(b) / n),
        }
    return results


def ppo_curve(run: Path, rows: int = 8) -> list[dict[str, float]]:
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [s for s in steps if "reward" in s]
    every = max(1, len(steps) // rows)
    return [s for i, s in enumerate(steps) if i % every == 0 or i == len(steps) - 1]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.data.is_file():
        sys.exit(f"missing {args.data} (the shared data folder beside the repo)")
    for name in (POLICY, JUDGE):
        if not (args.models / name).is_dir():
            sys.exit(f"missing {args.models / name}: run `make models`")
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    cli = Cli(args.out, args.threads, args.reuse)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    parts = prepare(args)
    found: dict[str, Any] = {}
    train_judge(cli, args)
    found["judge"] = cli.timed("judge accuracy", judge_accuracy, args, parts["C"])
    print("judge accuracy on C:", st.interval(found["judge"]), flush=True)
    train_on_b(cli, args, "dpo", "dpo")
    found["dpo"] = cli.timed("dpo accuracy", dpo_accuracy, args, parts["C"])
    print("DPO implicit-reward accuracy on C:", st.interval(found["dpo"]["after"]), flush=True)
    train_on_b(cli, args, "reward", "rm")
    train_on_b(cli, args, "ppo", "ppo")
    found["ppo_curve"] = ppo_curve(args.out / "ppo")
    generate_all(cli, args, parts["C"])
    found["wins"] = cli.timed("win-rates", win_rates, args)
    timing = {k: (cli.minutes[k], cli.cpu_minutes[k]) for k in cli.minutes}
    timing["total"] = ((time.monotonic() - started) / 60, (_self_cpu() + _children_cpu()) / 60)
    (args.out / "results.json").write_text(json.dumps({**found, "timing": timing}, indent=2))
    print(st.report(found, timing))


if __name__ == "__main__":
    main()
