"""A small synthetic cohort (three cases in two sites and one broken case.json) and a
two-worker Dask LocalCluster shared by the batch tests."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from angio_deploy.synth.engine import synthesise

pytest.importorskip("distributed")

#: The cohort's case names (paths relative to the cases folder).
GOOD = ("site_a/case_0000005", "site_a/case_0000006", "site_b/case_0000007")
BROKEN = "site_b/broken"


@pytest.fixture(scope="session")
def good() -> tuple[str, ...]:
    """Names of the cohort's three valid cases."""
    return GOOD


@pytest.fixture(scope="session")
def broken() -> str:
    """Name of the cohort's case with a malformed case.json."""
    return BROKEN


@pytest.fixture(scope="session")
def cohort_src(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort") / "cases"
    synthesise(root / "site_a", 2, 5, size=512)
    synthesise(root / "site_b", 1, 7, size=512)
    broken = root / BROKEN
    broken.mkdir(parents=True)
    (broken / "case.json").write_text("{", encoding="utf-8")
    return root


@pytest.fixture
def cohort(cohort_src: Path, tmp_path: Path) -> Path:
    """A private copy of the cohort (tests may edit it)."""
    dst = tmp_path / "cases"
    shutil.copytree(cohort_src, dst)
    return dst


def _local_cluster(n_workers: int = 2):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )


@pytest.fixture(scope="session")
def local_cluster():
    """Factory of a LocalCluster like the engine's own: processes, one thread each, no
    dashboard (a context manager)."""
    return _local_cluster


@pytest.fixture(scope="session")
def scheduler() -> Iterator[str]:
    """Address of a shared two-worker cluster (the ``--scheduler`` path)."""
    with _local_cluster(2) as cluster:
        yield cluster.scheduler_address
