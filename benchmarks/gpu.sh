#!/usr/bin/env bash
# The GPU benchmark of the paper path in one command (< 8 min on one H100/H200): fusion fwd+bwd (fp32/bf16, paper
# and released variants), cached training windows/s (K=300, batch 12 and the largest batch that fits), end-to-end
# frames/s (IR-50 40x40 + VGGish 96x64, bf16), preprocessing encoder frames/s, a two-epoch paper-recipe run on a
# generated store, peak memory of each.
#
#   bash benchmarks/gpu.sh [OUT_DIR] [--append]    # gpu.json + gpu.md in OUT_DIR (default _build/bench-gpu);
#                                                  # --append adds gpu.md as a section to benchmarks/RESULTS.md
#   bash benchmarks/gpu.sh --smoke [OUT_DIR]       # every section at toy size on the CPU (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=_build/bench-gpu
APPEND=0
ARGS=()
for a in "$@"; do
  case "$a" in
    --append) APPEND=1 ;;
    --smoke) ARGS+=(--smoke) ;;
    -*) ARGS+=("$a") ;;
    *) OUT=$a ;;
  esac
done
if [ "${#ARGS[@]}" = 0 ] || [ "${ARGS[0]}" != --smoke ]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' || {
    echo "gpu.sh: no CUDA device visible to torch; run with --smoke for the CPU dry run" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
fi
mkdir -p "$OUT"
# hard stop well inside 8 minutes: the script skips late sections past its own budget (420 s) already
timeout 470 "$PY" benchmarks/gpu_bench.py --out "$OUT" "${ARGS[@]}"
echo "gpu.sh: wrote $OUT/gpu.json and $OUT/gpu.md"
if [ "$APPEND" = 1 ]; then
  { echo; cat "$OUT/gpu.md"; } >> benchmarks/RESULTS.md
  echo "gpu.sh: appended the section to benchmarks/RESULTS.md"
fi
