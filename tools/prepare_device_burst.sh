#!/usr/bin/env bash
# Here, once per session that is lent a GPU: what tools/device_burst.sh needs on the
# device machine and cannot fetch there (it reaches no registry and no ../shared).
#   .whl/    wheels for its Python 3.12 that its image lacks (segmentation-models-pytorch,
#            pydicom, manifold3d; torch, timm, onnx, scipy, scikit-build-core are there)
#   .burst/  a copy of ../shared/data/real_seg (1.6 MB)
# Both are ignored through .git/info/exclude and travel with `carry`:
#   run(command="bash tools/device_burst.sh", carry=[".whl", ".burst"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
for d in /.whl/ /.burst/; do
    grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude
done
rm -rf .whl .burst
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    segmentation-models-pytorch==0.6.0 pydicom==3.0.2 manifold3d==3.5.4
mkdir -p .burst
cp -r ../shared/data/real_seg .burst/real_seg
du -sh .whl .burst
