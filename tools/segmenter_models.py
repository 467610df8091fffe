"""A models folder holding only the shipped segmenter (for evaluating an SR export beside it).

    python tools/segmenter_models.py DST

Copies the segmenter file(s) and writes a manifest listing only them into DST (emptied
first), so that ``python -m export.*_export CKPT DST --register`` adds the SR models and
``ANGIO_DEPLOY_MODELS_DIR=DST`` runs exactly that combination.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "python" / "angio_deploy" / "models"


def main(argv: list[str] | None = None) -> int:
    (dst,) = argv if argv is not None else sys.argv[1:]
    dst = Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    man = json.loads((SRC / "manifest.json").read_text())
    man["models"] = [m for m in man["models"] if m["role"] == "segmenter"]
    for m in man["models"]:
        shutil.copy2(SRC / m["file"], dst / m["file"])
    (dst / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
