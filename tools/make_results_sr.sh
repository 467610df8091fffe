#!/usr/bin/env bash
# Reproduce the surface-refinement numbers of docs/RESULTS.md (issue 5).
#
#   bash tools/make_results_sr.sh FULL_CKPT NO_SILHOUETTE_CKPT
#
# Both checkpoints come from `python -m training.train_surface` runs with the same budget
# (the silhouette-free one with --no-silhouette). Each is exported (fp16 weights) into a
# copy of the shipped models folder beside the shipped segmenter, so that the evaluation
# runs exactly what `angio-deploy run` runs (SR is on by default; MI rows are
# docs/results/mi_network.json from tools/make_results_mi.sh, same split and segmenter).
# Results: docs/results/sr_*.json (committed); per-case outputs under $OUT (default
# /tmp/results_sr). The per-lesion table needs MI meshes too: MI is re-run on the first
# LESION_LIMIT cases (default 200). TRUE_GEOMETRY_LIMIT (default 100) cases are evaluated
# with the true C-arm geometry as well (what SR does when the views are registered).
# MAIN_LIMIT=N evaluates the SR rows on the first N cases only (the MI row then compares
# on those cases: results_report pairs by case).
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=$1
NOSIL=$2
CASES=${CASES:-data_cache/test500}
OUT=${OUT:-/tmp/results_sr}
RES=docs/results
LL=${LESION_LIMIT:-200}
TL=${TRUE_GEOMETRY_LIMIT:-100}
ML=()
[ -n "${MAIN_LIMIT:-}" ] && ML=(--limit "$MAIN_LIMIT")
mkdir -p "$OUT" "$RES"

models() {  # checkpoint, folder: the shipped segmenter plus this SR export
  python tools/segmenter_models.py "$2"
  python -m export.sr_export "$1" "$2" --fp16-weights --register > "$2.export.json"
}
models "$FULL" "$OUT/models_full"
models "$NOSIL" "$OUT/models_no_silhouette"

ev() {  # label, models folder, extra args...
  local label=$1 dir=$2
  shift 2
  ANGIO_DEPLOY_MODELS_DIR="$dir" angio-deploy evaluate "$CASES" --quiet \
    --json "$RES/$label.json" --out-root "$OUT/$label" "$@" > "$OUT/$label.log" 2>&1
}

# Waiting on each job by its PID: a bare `wait` returns 0 even when a job failed, and
# the reports would then read stale JSON.
ev sr_full "$OUT/models_full" ${ML[@]+"${ML[@]}"} &
p1=$!
ev sr_no_silhouette "$OUT/models_no_silhouette" ${ML[@]+"${ML[@]}"} &
p2=$!
wait "$p1"
wait "$p2"
angio-deploy evaluate "$CASES" --no-surface-refinement --quiet --limit "$LL" \
  --json "$OUT/mi_lesions.json" --out-root "$OUT/mi" > "$OUT/mi.log" 2>&1 &
p1=$!
ev sr_full_true_geometry "$OUT/models_full" --true-geometry --limit "$TL" &
p2=$!
wait "$p1"
wait "$p2"
ev sr_no_silhouette_true_geometry "$OUT/models_no_silhouette" --true-geometry --limit "$TL"

python tools/results_report.py "$RES" --only mi_network,sr_no_silhouette,sr_full \
  --paired mi_network --name sr --figures docs/figures
python tools/results_report.py "$RES" \
  --only mi_network_true_geometry,sr_no_silhouette_true_geometry,sr_full_true_geometry \
  --paired mi_network_true_geometry
python tools/lesion_report.py "$CASES" --limit "$LL" "$OUT/mi=MI" \
  "$OUT/sr_no_silhouette=SR no silhouette" "$OUT/sr_full=SR full" \
  --figure docs/figures/sr_lesions.png --base MI --against "SR full"
