"""A cohort on disk: the case folders under a cases folder and where each one's result goes.

A case folder is any folder holding ``case.json`` (CASE_FORMAT.md). Its result goes to
``OUT_ROOT/<its path relative to CASES_DIR>`` -- two cases of one name in different
subfolders never share a result folder -- or to ``CASE/out`` without an out root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angio_deploy.errors import InputNotFoundError


@dataclass(frozen=True)
class BatchOptions:
    """How every case of a cohort is reconstructed (the same for all cases).

    ``segmenter``/``provider``/``refine_*``/``force``/``skip_failed_branches``: as for
    :class:`~angio_deploy.api.Reconstructor` and its ``reconstruct``. ``intra_op_threads``:
    threads of one case in each worker (ONNX Runtime's intra-op threads and the native
    core's limit); None lets the engine choose (the cores divided among the worker
    processes, so N workers do not oversubscribe them).
    """

    segmenter: str = "network"
    provider: str = "auto"
    refine_geometry: bool = True
    refine_surface: bool = True
    force: bool = False
    intra_op_threads: int | None = None
    #: Leave out (and report) a side branch that cannot be reconstructed.
    skip_failed_branches: bool = False
    #: Another model folder (with manifest.json) on every worker; None: the shipped models.
    models_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segmenter": self.segmenter,
            "provider": self.provider,
            "refine_geometry": self.refine_geometry,
            "refine_surface": self.refine_surface,
            "force": self.force,
            "intra_op_threads": self.intra_op_threads,
            "skip_failed_branches": self.skip_failed_branches,
            "models_dir": self.models_dir,
        }


@dataclass(frozen=True)
class CaseJob:
    """One case's work, sent to a worker (picklable: paths as strings, hooks by name).

    ``prepare(case) -> case`` runs after loading (e.g. evaluate's true-geometry
    diagnostic); ``score(case_dir, out_dir) -> dict`` after writing (evaluate's METRICS.md
    scores). Both must be module-level functions importable on the workers.
    """

    name: str
    case_dir: str
    out_dir: str
    options: BatchOptions = field(default_factory=BatchOptions)
    prepare: Callable[[Any], Any] | None = None
    score: Callable[[Path, Path], dict[str, Any]] | None = None
    log_level: int | None = None


def find_case_dirs(cases_dir: str | Path, *, require_truth: bool = False) -> list[Path]:
    """Case folders (holding case.json; with ``require_truth`` also truth/) under
    ``cases_dir``, sorted. Hidden folders (a writer's temporary siblings) are skipped.
    Raises InputNotFoundError (exit 66) if ``cases_dir`` is not a folder."""
    root = Path(cases_dir)
    if not root.is_dir():
        raise InputNotFoundError("cases folder does not exist", source=str(root))
    found = []
    seen: set[str] = set()
    # Symlinked case folders count (a cohort is often a folder of links to the cases);
    # a link back up the tree is visited once, not followed round in a loop.
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        case = Path(here)
        if "case.json" not in files:
            continue
        if require_truth and not (case / "truth").is_dir():
            continue
        found.append(case)
    return sorted(found)


def case_name(root: str | Path, case_dir: Path) -> str:
    """The case's path relative to the cases folder (POSIX separators); the folder's own
    name when the cases folder is itself a case."""
    rel = case_dir.relative_to(root)
    return rel.as_posix() if rel.parts else case_dir.name


def case_out_dir(root: str | Path, case_dir: Path, out_root: str | Path | None) -> Path:
    """CASE/out, or the case's relative path (:func:`case_name`) under ``out_root``."""
    if out_root is None:
        return case_dir / "out"
    return Path(out_root) / case_name(root, case_dir)
