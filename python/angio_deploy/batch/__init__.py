"""Cohorts: every case folder under a cases folder, on Dask distributed (``angio-deploy
batch``; ``evaluate --workers`` runs on the same engine).

- :mod:`.cases`: finding the case folders, where each result goes, the options and jobs.
- :mod:`.worker`: one case on a worker (models loaded once per worker; always a record).
- :mod:`.engine`: :func:`run_batch`: a LocalCluster, a remote scheduler or this process;
  resume, progress.
- :mod:`.summary`: summary.json / summary.csv and the batch's exit code.

Dask is imported only when a cohort runs on it (the ``batch`` extra).
"""

from __future__ import annotations

from .cases import BatchOptions, CaseJob, case_name, case_out_dir, find_case_dirs
from .engine import BatchResult, run_batch
from .summary import batch_exit_code

__all__ = [
    "BatchOptions",
    "BatchResult",
    "CaseJob",
    "batch_exit_code",
    "case_name",
    "case_out_dir",
    "find_case_dirs",
    "run_batch",
]
