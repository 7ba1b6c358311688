#!/usr/bin/env bash
# One time-boxed GPU check of the kit: correctness, throughput/memory table, editing latency,
# data-loading throughput and a short showcase training (maskgan/gpu_check.py says what each is).
#
#   bash scripts/gpu_check.sh OUT_DIR [BUDGET_S] [SECTIONS]
#
# OUT_DIR   where results.json, the figures and the showcase weights go (8 files at most)
# BUDGET_S  seconds of measurement, an integer (default 450: about 8 minutes with start-up and
#           clean-up, which leaves a 15-minute lease time to rerun once with a smaller budget)
# SECTIONS  optional comma-separated subset for a rerun, e.g. throughput,showcase
#           (data_loading, correctness, editing, throughput, showcase)
#
# Runs from a copy of the repository with PYTHONPATH=. and the machine's own Python and PyTorch;
# installs nothing. results.json is rewritten after every measurement, so a run stopped by a time
# limit still leaves what it measured.
set -u
OUT_DIR="${1:?usage: bash scripts/gpu_check.sh OUT_DIR [BUDGET_S] [SECTIONS]}"
BUDGET_S="${2:-${GPU_CHECK_BUDGET_S:-450}}"
ONLY="${3:-}"
case "$BUDGET_S" in
  ''|*[!0-9]*) echo "BUDGET_S must be a whole number of seconds, got '$BUDGET_S'" >&2; exit 2 ;;
esac
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY="${PYTHON:-$(command -v python3 || command -v python)}"

echo "== nvidia-smi"
nvidia-smi || echo "(nvidia-smi is not available)"
echo "== versions"
"$PY" - <<'PYEOF'
import importlib, os, platform, sys
print("python", platform.python_version(), sys.executable)
for name in ("torch", "numpy", "matplotlib", "safetensors", "tqdm", "PIL"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:  # noqa: BLE001
        print(name, "missing:", e)
try:
    import torch
    print("cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    print("cudnn", torch.backends.cudnn.version())
except Exception as e:  # noqa: BLE001
    print("torch/cuda check failed:", e)
print("cpus", len(os.sched_getaffinity(0)))
PYEOF

args=(-m maskgan.gpu_check --out "$OUT_DIR" --budget-s "$BUDGET_S")
if [ -n "$ONLY" ]; then args+=(--only "$ONLY"); fi
echo "== $PY ${args[*]}"
# The module keeps to its budget by itself; the hard stop is a safety net (SIGTERM still writes results.json).
timeout -k 20 $((BUDGET_S + 60)) "$PY" "${args[@]}"
rc=$?
echo "== gpu_check exit code $rc"
ls -l "$OUT_DIR"
exit $rc
