#!/usr/bin/env bash
# Reproduce the mesh-initialisation numbers of docs/RESULTS.md (issue 4).
#
#   bash tools/make_results_mi.sh [FP32_MODELS_DIR]
#
# Test split: `angio-deploy synth data_cache/test500 --count 500 --seed 2000000` (generator
# version 1, seeds 2000000-2000499). Results go to docs/results/ (JSON, committed) and the
# per-case outputs to $OUT (default /tmp/results_mi, not committed). FP32_MODELS_DIR, if
# given, holds an fp32 export of the same checkpoint (python -m export.onnx_export
# runs/seg/avg789 DIR/segmenter.onnx --register) for the fp16-vs-fp32 rows. Runs two jobs at a
# time (this machine has 2 cores). SECONDARY_LIMIT=N evaluates the comparison rows (no
# geometry refinement, true geometry, Frangi, fp32) on the first N cases only: each full
# evaluation takes ~25 min here (exact point-to-surface distances dominate).
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-data_cache/test500}
OUT=${OUT:-/tmp/results_mi}
RES=docs/results
M32=${1:-}
LIM=()
[ -n "${SECONDARY_LIMIT:-}" ] && LIM=(--limit "$SECONDARY_LIMIT")
mkdir -p "$RES" "$OUT"
[ -d "$CASES" ] || angio-deploy synth "$CASES" --count 500 --seed 2000000

ev() {  # label, extra args...
  local label=$1; shift
  angio-deploy evaluate "$CASES" --no-surface-refinement --quiet --json "$RES/mi_$label.json" \
    --out-root "$OUT/$label" "$@" > "$OUT/$label.log" 2>&1
}

python tools/seg_dice.py "$CASES" --json "$RES/seg_dice.json" > "$OUT/seg_dice.log" 2>&1 &
ev network &
wait
ev network_no_geometry_refinement --no-geometry-refinement "${LIM[@]}" &
ev network_true_geometry --true-geometry "${LIM[@]}" &
wait
ev frangi --segmenter frangi "${LIM[@]}" &
if [ -n "$M32" ]; then
  python tools/seg_dice.py "$CASES" --models-dir "$M32" --json "$RES/seg_dice_fp32.json" \
    > "$OUT/seg_dice_fp32.log" 2>&1
  ANGIO_DEPLOY_MODELS_DIR="$M32" ev network_fp32 "${LIM[@]}"
fi
wait
python tools/results_report.py "$RES" --figures docs/figures --worst-from "$OUT/network=mi_network"
