"""`angio-deploy batch` end to end on its own LocalCluster (--workers 2), its usage errors,
the exit-code rule and case discovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from angio_deploy.batch import batch_exit_code, case_out_dir, find_case_dirs
from angio_deploy.cli import main


def test_batch_command_on_two_local_workers(cohort: Path, tmp_path: Path, capsys, good) -> None:
    out_root = tmp_path / "results"
    argv = ["batch", str(cohort), "--out-root", str(out_root), "--workers", "2"]
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 65  # one case failed on its input
    assert "4 cases: 3 ok, 1 failed, 0 skipped" in cap.out
    assert "2 worker processes" in cap.out
    assert "4/4" in cap.err  # the progress bar reached the end
    assert "failed: site_b/broken: exit 65: InputError" in cap.err
    doc = json.loads((out_root / "summary.json").read_text())
    assert doc["options"]["intra_op_threads"] >= 1
    assert {c["case"] for c in doc["cases"] if c["status"] == "ok"} == set(good)

    # Again: everything finished is skipped, the broken case is tried again.
    assert main([*argv, "-q"]) == 65
    assert "4 cases: 0 ok, 1 failed, 3 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [["--workers", "-1"], ["--threads", "0"]],
)
def test_batch_usage_errors(cohort: Path, tmp_path: Path, capsys, extra) -> None:
    rc = main(["batch", str(cohort), "--out-root", str(tmp_path / "r"), *extra])
    assert rc == 2 and extra[0] in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_workers_and_scheduler_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(tmp_path), "--out-root", str(tmp_path / "r"), "--workers", "2",
              "--scheduler", "tcp://127.0.0.1:1"])  # fmt: skip
    assert exc.value.code == 2


def test_missing_cases_folder_is_66(tmp_path: Path, capsys) -> None:
    rc = main(["batch", str(tmp_path / "nope"), "--out-root", str(tmp_path / "r")])
    assert rc == 66 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], 0),
        ([None, None], 0),  # ok / skipped
        ([65], 65),
        ([66, 66], 66),  # the code they share
        ([66, 73], 65),  # they differ
        ([65, 70, 66], 70),  # a bug wins
    ],
)
def test_batch_exit_code(codes, expected) -> None:
    records = [
        {"case": str(k), "status": "ok" if c is None else "failed", "exit_code": c}
        for k, c in enumerate(codes)
    ]
    assert batch_exit_code(records) == expected


def test_case_discovery_and_output_paths(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    for rel in ("a/c1", "b/c1", "b/c2/nested", ".hidden/c3", "a/.c1.tmp-1234"):
        (root / rel).mkdir(parents=True)
        (root / rel / "case.json").write_text("{}")
    (root / "a" / "c1" / "truth").mkdir()
    found = find_case_dirs(root)
    assert [p.relative_to(root).as_posix() for p in found] == ["a/c1", "b/c1", "b/c2/nested"]
    assert find_case_dirs(root, require_truth=True) == [root / "a" / "c1"]
    # Two cases of one name in different folders never share a result folder.
    outs = {case_out_dir(root, p, tmp_path / "out") for p in found}
    assert len(outs) == 3
    assert case_out_dir(root, root / "a" / "c1", None) == root / "a" / "c1" / "out"
    # The cases folder that is itself a case gets its own name under the out root.
    assert case_out_dir(root / "a" / "c1", root / "a" / "c1", tmp_path / "o") == (
        tmp_path / "o" / "c1"
    )


def test_case_discovery_follows_linked_case_folders_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for name in ("x", "y"):
        (store / name / "truth").mkdir(parents=True)
        (store / name / "case.json").write_text("{}")
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "first").symlink_to(store / "x", target_is_directory=True)
    (cohort / "group").mkdir()
    (cohort / "group" / "second").symlink_to(store / "y", target_is_directory=True)
    (cohort / "group" / "loop").symlink_to(cohort, target_is_directory=True)  # no endless walk
    found = find_case_dirs(cohort, require_truth=True)
    assert [p.relative_to(cohort).as_posix() for p in found] == ["first", "group/second"]


def test_evaluate_command_on_a_scheduler(
    cohort: Path, tmp_path: Path, scheduler: str, capsys
) -> None:
    js = tmp_path / "r.json"
    argv = ["evaluate", str(cohort), "--scheduler", scheduler, "--limit", "1", "-q"]
    rc = main([*argv, "--json", str(js), "--out-root", str(tmp_path / "outs")])
    assert rc == 0
    assert "1 cases, 0 failed" in capsys.readouterr().out
    doc = json.loads(js.read_text())
    assert [r["case"] for r in doc["cases"]] == ["case_0000005"]
    assert doc["cases"][0]["MAE"] > 0 and doc["summary"]["MAE"]["n"] == 1
    assert (tmp_path / "outs" / "site_a" / "case_0000005" / "mesh.ply").is_file()


def test_unreachable_scheduler_is_69(tmp_path: Path, capsys) -> None:
    import dask

    (tmp_path / "cases" / "c1").mkdir(parents=True)
    (tmp_path / "cases" / "c1" / "case.json").write_text("{}")
    argv = ["batch", str(tmp_path / "cases"), "--out-root", str(tmp_path / "r")]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = main([*argv, "--scheduler", "tcp://127.0.0.1:1", "-q"])
    assert rc == 69 and "cannot reach the Dask scheduler" in capsys.readouterr().err
