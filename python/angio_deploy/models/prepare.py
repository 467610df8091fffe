"""Prepare the shipped models for this machine: ``angio-deploy build-engines``.

For every model in the manifest: verify its hash, open it with the requested ONNX
Runtime provider (``auto``: TensorRT > CUDA > CPU, what the machine has) and run it twice
on zeros at the input shapes the pipeline uses (free dimensions from
:data:`PIPELINE_DIMS`). Why run it: ONNX Runtime's TensorRT execution provider builds an
engine for each input shape on the first run, which takes seconds to minutes, and caches
it (``SessionConfig.trt_cache_dir``, default ``$XDG_CACHE_HOME/angio-deploy/tensorrt``):
doing it here moves that cost from the first case to deployment. On a CPU-only machine
nothing is written; the command then checks that every model loads and runs and reports
what each costs, which is also what a deployment wants to know.

**The TensorRT path has not run on a GPU here** (the development machine has none); the
CPU path is tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.backends import SessionConfig, get_session

from . import load_manifest, verify

#: Free input dimensions as the pipeline fills them, by model role: the segmenter sees
#: both views and their flips (4 crops), the SR encoder both views, the ring-profile
#: network 100 rings.
PIPELINE_DIMS = {"segmenter": 4, "encoder": 2, "profile": 100}


def _shape(shape: tuple, role: str) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else PIPELINE_DIMS.get(role, 1) for d in shape)


def prepare_models(
    folder: str | Path | None = None,
    config: SessionConfig | None = None,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per manifest model: name, role, sha256, provider used, input shapes, load
    time, first and second run times (seconds). Raises ModelFileError (missing or altered
    file) or BackendUnavailableError (a provider requested explicitly is missing)."""

    rows = []
    for entry in load_manifest(folder).models:
        path = verify(entry)
        t0 = time.perf_counter()
        sess = get_session(path, config)
        feeds = {
            s.name: np.zeros(_shape(s.shape, entry.role), dtype=np.dtype(s.dtype))
            for s in sess.inputs
        }
        t1 = time.perf_counter()
        sess.run(feeds)
        t2 = time.perf_counter()
        sess.run(feeds)
        t3 = time.perf_counter()
        row = {
            "name": entry.name,
            "role": entry.role,
            "sha256": sess.sha256,
            "provider": sess.provider,
            "input_shapes": {k: list(v.shape) for k, v in feeds.items()},
            "load_s": t1 - t0,
            "first_run_s": t2 - t1,
            "run_s": t3 - t2,
        }
        rows.append(row)
        if progress is not None:
            progress(entry.name, row)
    return rows
