"""The batch engine on a two-worker Dask LocalCluster: a cohort with a broken case, resume,
a worker killed in the middle of writing a result, evaluate on the same engine."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.batch import BatchOptions, run_batch
from angio_deploy.errors import EX_DATAERR, EX_SOFTWARE, OutputError
from angio_deploy.io.output_dir import is_result_dir

#: Written into every result folder (CASE_FORMAT.md, "Output").
RESULT_FILES = ("mesh.ply", "mesh.stl", "centreline.csv", "report.json", "overlay_a.png")


def hidden_leftovers(root: Path) -> list[Path]:
    """A writer's temporary or moved-aside siblings (``.NAME.tmp-*``, ``.NAME.old-*``)."""
    return [p for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def assert_complete(out_root: Path, names) -> None:
    for name in names:
        out = out_root / name
        assert is_result_dir(out), out
        for f in RESULT_FILES:
            assert (out / f).stat().st_size > 0, out / f
    assert hidden_leftovers(out_root) == []


def test_cohort_with_a_broken_case(
    cohort: Path, tmp_path: Path, scheduler: str, good, broken
) -> None:
    out_root = tmp_path / "results"
    res = run_batch(cohort, out_root, scheduler=scheduler)

    by_case = {r["case"]: r for r in res.records}
    assert sorted(by_case) == sorted([*good, broken])
    assert all(by_case[n]["status"] == "ok" for n in good)
    assert_complete(out_root, good)
    # The broken case is recorded with its error and exit-code class; the rest went on.
    bad = by_case[broken]
    assert bad["status"] == "failed"
    assert bad["error_type"] == "InputError"
    assert bad["exit_code"] == EX_DATAERR
    assert "case.json" in bad["error"]
    assert "traceback" not in bad  # an input error is not a bug
    assert not (out_root / broken).exists()
    assert res.exit_code == EX_DATAERR
    assert res.counts == {"ok": 3, "failed": 1, "skipped": 0}

    # Report numbers come from each case's own report.json.
    for n in good:
        report = json.loads((out_root / n / "report.json").read_text())
        assert by_case[n]["dice_a"] == report["quality"]["reprojection_dice"][0]
        assert by_case[n]["reconstruct_s"] == report["timings_s"]["total"]

    # Models are loaded once per worker process, not once per case; both workers ran.
    workers = {r["worker"] for r in res.records}
    assert len(workers) == 2
    for w in workers:
        assert sum(r["models_loaded"] for r in res.records if r["worker"] == w) <= 1

    doc = json.loads((out_root / "summary.json").read_text())
    assert doc["format"] == "angio-batch/1"
    assert doc["counts"] == res.counts and doc["exit_code"] == EX_DATAERR
    assert [c["case"] for c in doc["cases"]] == sorted(by_case)
    with (out_root / "summary.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == sorted(by_case)
    assert {r["case"]: r["status"] for r in rows} == {n: r["status"] for n, r in by_case.items()}
    assert float(rows[0]["dice_a"]) == pytest.approx(by_case[rows[0]["case"]]["dice_a"])
    # index.html links every finished case's report.html and names the failed one.
    index = (out_root / "index.html").read_text(encoding="utf-8")
    for n in good:
        assert (out_root / n / "report.html").is_file()
        assert f'href="{n}/report.html"' in index
    assert broken in index and "InputError" in index


def test_resume_skips_finished_cases(
    cohort: Path, tmp_path: Path, scheduler: str, good, broken
) -> None:
    out_root = tmp_path / "results"
    first = run_batch(cohort, out_root, scheduler=scheduler)
    assert first.counts["ok"] == 3
    stamps = {n: (out_root / n / "report.json").stat().st_mtime_ns for n in good}
    redo = good[1]
    # A finished case whose result is gone, and the broken case, now repaired.
    shutil.rmtree(out_root / redo)
    shutil.rmtree(cohort / broken)
    shutil.copytree(cohort / good[0], cohort / broken)

    second = run_batch(cohort, out_root, scheduler=scheduler)
    status = {r["case"]: r["status"] for r in second.records}
    assert status == {good[0]: "skipped", redo: "ok", good[2]: "skipped", broken: "ok"}
    assert second.exit_code == 0
    for n in (good[0], good[2]):  # untouched
        assert (out_root / n / "report.json").stat().st_mtime_ns == stamps[n]
    skipped = next(r for r in second.records if r["case"] == good[0])
    assert skipped["dice_a"] == first.records[0]["dice_a"]  # numbers from its report.json
    assert_complete(out_root, [*good, broken])
    summary = json.loads((out_root / "summary.json").read_text())
    assert summary["counts"] == {"ok": 2, "failed": 0, "skipped": 2}


def test_killed_worker_loses_no_case(
    cohort: Path, tmp_path: Path, local_cluster, good, broken
) -> None:
    """A worker process dies (os._exit) while writing a result: the scheduler runs that
    case again on a live worker, and no half-written folder is left anywhere."""
    from distributed import Client

    out_root = tmp_path / "results"
    marker = tmp_path / "crashed"

    def crash_once_while_writing(marker: str, out_root: str) -> None:
        # Runs in each worker process: the first file rename of a result there (the
        # folder is half written at that point) kills the process, once in the cluster.
        real = os.replace

        def replace(src, dst, *args, **kwargs):
            if str(dst).startswith(out_root):
                try:
                    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    pass
                else:
                    os.write(fd, f"{os.getpid()}\n{dst}".encode())
                    os.close(fd)
                    os._exit(1)
            return real(src, dst, *args, **kwargs)

        os.replace = replace

    with local_cluster(2) as cluster, Client(cluster) as client:
        client.run(crash_once_while_writing, str(marker), str(out_root))
        res = run_batch(cohort, out_root, scheduler=cluster.scheduler_address)

    assert marker.is_file(), "no worker was killed"
    pid, dst = marker.read_text().split("\n")
    # A file in the half-written hidden sibling of the case's folder (".NAME.tmp-...").
    *parent, hidden, _file = Path(dst).relative_to(out_root).parts
    assert hidden.startswith(".") and ".tmp-" in hidden
    killed_case = "/".join([*parent, hidden[1:].split(".tmp-")[0]])
    assert killed_case in good
    by_case = {r["case"]: r for r in res.records}
    assert all(by_case[n]["status"] == "ok" for n in good)
    assert by_case[broken]["status"] == "failed"
    # Redone by a live worker process, not the one that died.
    assert not by_case[killed_case]["worker"].endswith(f":{pid}")
    assert_complete(out_root, good)


def test_internal_error_is_recorded_with_its_traceback(cohort: Path, tmp_path: Path, good) -> None:
    """An unexpected exception in one case is exit class 70 with a traceback; the other
    cases go on (here on the sequential path, workers=0, the same per-case code)."""
    res = run_batch(
        cohort,
        tmp_path / "results",
        BatchOptions(refine_surface=False),
        workers=0,
        prepare=explode_on_case_6,
    )
    by_case = {r["case"]: r for r in res.records}
    bug = by_case[good[1]]
    assert bug["status"] == "failed" and bug["exit_code"] == EX_SOFTWARE
    assert bug["error_type"] == "RuntimeError" and "explode_on_case_6" in bug["traceback"]
    assert by_case[good[0]]["status"] == "ok" and by_case[good[2]]["status"] == "ok"
    assert res.exit_code == EX_SOFTWARE


def explode_on_case_6(case):
    """A prepare hook with a bug for one case."""
    if case.path.name == "case_0000006":
        raise RuntimeError("a bug")
    return case


def test_out_root_over_the_cases_is_refused_before_any_work(cohort: Path) -> None:
    with pytest.raises(OutputError):
        run_batch(cohort.parent, cohort.parent, workers=0)
    assert not any(p.name == "report.json" for p in cohort.rglob("*"))


def test_evaluate_on_workers_gives_the_sequential_rows(
    cohort: Path, tmp_path: Path, scheduler: str
) -> None:
    from angio_deploy.api import Reconstructor
    from angio_deploy.evaluate import evaluate_cases, evaluate_cohort

    seq = evaluate_cases(cohort, Reconstructor(), out_root=tmp_path / "seq", limit=2)
    # One thread a case on the workers, every core here: the numbers do not depend on it.
    par = evaluate_cohort(
        cohort,
        BatchOptions(intra_op_threads=1),
        scheduler=scheduler,
        out_root=tmp_path / "par",
        limit=2,
    )
    assert par["n_cases"] == seq["n_cases"] == 2
    for a, b in zip(seq["cases"], par["cases"], strict=True):
        a, b = dict(a), dict(b)
        assert a.pop("time_s") > 0 and b.pop("time_s") > 0
        assert "MAE" in a
        np.testing.assert_equal(a, b)  # the same numbers (NaN where a metric does not apply)
    times = seq["summary"].pop("time_s"), par["summary"].pop("time_s")
    assert all(t["n"] == 2 for t in times)
    np.testing.assert_equal(seq["summary"], par["summary"])
