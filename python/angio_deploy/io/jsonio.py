"""JSON for numpy values: the one encoder the writers of report.json and meta.json share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    """Indented, key-sorted JSON with a final newline (numpy values allowed)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n"
