"""The runtime runs models with torch unimportable, and imports onnxruntime lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

CODE = r"""
import json, sys
sys.modules["torch"] = None          # any 'import torch' now raises ImportError
import angio_deploy
light = "onnxruntime" not in sys.modules
import angio_deploy.backends as b
import angio_deploy.models
lazy = "onnxruntime" not in sys.modules
import numpy as np
sess = b.get_session(sys.argv[1])
x = np.full((2, 1, 160, 256), 0.5, np.float32)
y = sess(x)
print(json.dumps({
    "light": light, "lazy": lazy, "value": float(y.mean()), "shape": list(y.shape),
    "provider": sess.report()["provider"],
    "torch_loaded": sys.modules.get("torch") is not None,
}))
"""


def test_session_runs_with_torch_blocked(affine_model) -> None:
    path: Path = affine_model(scale=2.0, shift=1.0)
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["light"], "import angio_deploy imported onnxruntime"
    assert res["lazy"], "import angio_deploy.backends imported onnxruntime"
    assert res["value"] == pytest.approx(2.0)
    assert res["shape"] == [2, 1, 160, 256]
    assert res["provider"] == "CPUExecutionProvider"
    assert not res["torch_loaded"]


def test_backend_sources_never_import_torch() -> None:
    import angio_deploy.backends as b
    import angio_deploy.models as m

    folders = [Path(b.__file__).parent, Path(m.__file__).parent]
    for folder in folders:
        for src in folder.rglob("*.py"):
            text = src.read_text(encoding="utf-8")
            assert "import torch" not in text and "from torch" not in text, src
