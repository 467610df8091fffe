#!/usr/bin/env bash
# On the lent GPU machine, in one device call (prepare with tools/prepare_device_burst.sh):
# build the native core for its Python, then python -m training.gpu_burst run. What comes
# back under $OUT: the packed weights (seg_ft.part*), burst.json, train_log.jsonl,
# burst.log and device.txt; back here, `python -m training.gpu_burst unpack`.
# BUDGET_MIN (default 7.5) is the burst's wall budget after the ~1 min build; keep both under
# the call's timeout_s. PRESET=smoke runs the same path in seconds (a rehearsal on a CPU).
set -uo pipefail
: "${OUT:?run this through the device tool, which sets OUT}"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=16
{
    nvidia-smi -L
    python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
} > "$OUT/device.txt" 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
# The package with its compiled core (the synthetic engine is ~4x slower on the numpy
# twins); without a compiler the numpy backend still gives the same data, only slower.
if ! python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/pkg . \
    > "$OUT/burst.log" 2>&1; then
    echo "native build failed: numpy backend" >> "$OUT/burst.log"
    export PYTHONPATH="/tmp/site:$PWD/python"
else
    export PYTHONPATH="/tmp/pkg:/tmp/site"
fi
export PYTHONPATH="$PYTHONPATH:$PWD"  # the training package
python3 -c 'import angio_deploy.kernels as k; print("backend", k.BACKEND, k.__file__)' >> "$OUT/burst.log" 2>&1
python3 -m training.gpu_burst run --real .burst/real_seg --work data_cache/burst --out "$OUT" \
    --preset "${PRESET:-gpu}" --budget-min "${BUDGET_MIN:-7.5}" --workers "${WORKERS:-14}" \
    >> "$OUT/burst.log" 2>&1
rc=$?
tail -n 40 "$OUT/burst.log"
exit $rc
