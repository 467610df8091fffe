#!/usr/bin/env bash
# Reproduce the ring-profile surface-refinement numbers of docs/RESULTS.md (issue 5).
#
#   bash tools/make_results_profile.sh PROFILE_CKPT
#
# The checkpoint (python -m training.train_profile) is exported into a copy of the shipped
# models folder holding only the shipped segmenter, so the evaluation runs exactly what
# `angio-deploy run` runs with that model shipped (MI rows: docs/results/mi_network*.json
# from tools/make_results_mi.sh, same split and segmenter; results_report pairs by case).
# Results: docs/results/sr_profile*.json (committed); per-case outputs under $OUT
# (default /tmp/results_profile). MAIN_LIMIT (default: all 500) cases with the DICOM
# headers, TRUE_GEOMETRY_LIMIT (default 100) with the true geometry, and the per-lesion
# table on the first LESION_LIMIT (default 100) cases, for which MI is re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=$1
CASES=${CASES:-data_cache/test500}
OUT=${OUT:-/tmp/results_profile}
RES=docs/results
LL=${LESION_LIMIT:-100}
TL=${TRUE_GEOMETRY_LIMIT:-100}
ML=()
[ -n "${MAIN_LIMIT:-}" ] && ML=(--limit "$MAIN_LIMIT")
mkdir -p "$OUT" "$RES"
M="$OUT/models"
python tools/segmenter_models.py "$M"
python -m export.profile_export "$CKPT" "$M" --register > "$OUT/export.json"

ev() {  # label, extra args...
  local label=$1
  shift
  ANGIO_DEPLOY_MODELS_DIR="$M" angio-deploy evaluate "$CASES" --quiet \
    --json "$RES/$label.json" --out-root "$OUT/$label" "$@" > "$OUT/$label.log" 2>&1
}

ev sr_profile ${ML[@]+"${ML[@]}"} &
p1=$!
(
  ev sr_profile_true_geometry --true-geometry --limit "$TL"
  angio-deploy evaluate "$CASES" --no-surface-refinement --quiet --limit "$LL" \
    --json "$OUT/mi_lesions.json" --out-root "$OUT/mi" > "$OUT/mi.log" 2>&1
) &
p2=$!
# A failed evaluation must stop the script before the reports read stale JSON.
wait "$p1"
wait "$p2"

python tools/results_report.py "$RES" --only mi_network,sr_no_silhouette,sr_full,sr_profile \
  --paired mi_network --name sr_profile
python tools/results_report.py "$RES" \
  --only mi_network_true_geometry,sr_no_silhouette_true_geometry,sr_full_true_geometry,sr_profile_true_geometry \
  --paired mi_network_true_geometry
python tools/lesion_report.py "$CASES" --limit "$LL" "$OUT/mi=MI" "$OUT/sr_profile=SR profile" \
  --figure docs/figures/sr_profile_lesions.png --base MI --against "SR profile"
