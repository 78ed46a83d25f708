"""Command line (in process and through ``accelerate launch``) and the import contract."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import main

REPO = Path(__file__).resolve().parents[2]


def run_cli(args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_train_reward_from_cli_with_preset_config_file_and_max_steps(
    tiny_llama, small_export, tmp_path, capsys
):
    config = tmp_path / "rm.yaml"
    config.write_text("learning_rate: 0.001\nlogging_steps: 1\n")
    code = run_cli(
        [
            "reward",
            "--data",
            str(small_export),
            "--model",
            str(tiny_llama),
            "--out",
            str(tmp_path / "rm"),
            "--preset",
            "tiny-cpu",
            "--config",
            str(config),
            "--max-steps",
            "2",
        ]
    )
    assert code == 0
    assert "reward run done: 2 steps" in capsys.readouterr().out
    resolved = json.loads((tmp_path / "rm" / "run_config.json").read_text())["config"]
    assert resolved["max_steps"] == 2 and resolved["learning_rate"] == 0.001
    assert resolved["lora_r"] == 4  # from the preset


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="bf16 is refused only without CUDA"
)
@pytest.mark.parametrize("kind", ["reward", "dpo"])
def test_bf16_without_cuda_is_a_config_error_naming_precision(
    kind, tiny_llama, small_export, tmp_path, capsys
):
    """Before, TRL refused it deep inside the trainer ("Your setup doesn't support
    bf16/gpu") and the run failed with a traceback instead of naming the field."""
    config = tmp_path / "bf16.json"
    config.write_text(json.dumps({"precision": "bf16"}))
    args = ["--data", str(small_export), "--model", str(tiny_llama), "--config", str(config)]
    code = run_cli([kind, *args, "--out", str(tmp_path / kind)])
    err = capsys.readouterr().err
    assert code == 2 and "error: precision 'bf16' needs a CUDA GPU" in err, err


def test_cli_reports_bad_config_and_bad_data_with_exit_code_2(
    tiny_llama, small_export, tmp_path, capsys
):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"beta": -1}))
    code = run_cli(
        [
            "dpo",
            "--data",
            str(small_export),
            "--model",
            str(tiny_llama),
            "--out",
            str(tmp_path / "d"),
            "--config",
            str(config),
        ]
    )
    assert code == 2 and "error: beta must be > 0" in capsys.readouterr().err
    code = run_cli(
        [
            "ppo",
            "--data",
            str(tmp_path),
            "--model",
            str(tiny_llama),
            "--reward",
            str(tmp_path),
            "--out",
            str(tmp_path / "p"),
        ]
    )
    assert code == 2 and "manifest.json is missing" in capsys.readouterr().err


def test_importing_training_does_not_import_torch():
    code = (
        "import sys, training, training.cli, training.config, training.data; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_accelerate_launch_one_cpu_process(tiny_llama, small_export, tmp_path):
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert launcher, "accelerate is installed with the train extra"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [
            launcher,
            "launch",
            "--num_processes",
            "1",
            "--cpu",
            "-m",
            "training",
            "dpo",
            "--data",
            str(small_export),
            "--model",
            str(tiny_llama),
            "--out",
            str(tmp_path / "dpo"),
            "--preset",
            "tiny-cpu",
            "--max-steps",
            "2",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (tmp_path / "dpo" / "adapter" / "adapter_config.json").is_file()
    steps = [json.loads(x)["step"] for x in (tmp_path / "dpo" / "metrics.jsonl").open()]
    assert max(steps) == 2
