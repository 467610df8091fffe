"""docs/API.md's examples run as written (each ```python block, from the repository root,
in a fresh interpreter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "API.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


def test_the_page_has_the_examples() -> None:
    text = "\n".join(BLOCKS)
    assert len(BLOCKS) >= 3
    for needle in ("ds.pixel_array", "pydicom.dcmread", "read_bytes()", "CancelToken"):
        assert needle in text


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index, tmp_path) -> None:
    pytest.importorskip("skimage")  # the examples use the frangi segmenter too
    script = tmp_path / f"example_{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the examples' temporary folders
    out = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    if "CancelToken()" in BLOCKS[index]:
        assert "after stage 'segment'" in out.stdout and "exit code 130" in out.stdout
        # The handler's format puts each record's case id first.
        assert "example-lad-55pct INFO angio_deploy.api: [example-lad-55pct]" in out.stderr
    if "case_from_memory(views" in BLOCKS[index]:
        assert "<memory:patient-0042>" in out.stdout
