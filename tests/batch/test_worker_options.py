"""The batch worker passes every per-case option to the Reconstructor."""

from __future__ import annotations

from angio_deploy.batch.cases import BatchOptions, CaseJob
from angio_deploy.batch.worker import process_case


class FakeReconstructor:
    """Records the keyword arguments of reconstruct and fails the case on purpose."""

    def __init__(self) -> None:
        self.kwargs: dict = {}

    def reconstruct(self, case, **kwargs):
        self.kwargs = kwargs
        raise RuntimeError("stop here")


def test_skip_failed_branches_reaches_reconstruct(png_case, tmp_path) -> None:
    case = png_case()
    rec = FakeReconstructor()
    opts = BatchOptions(skip_failed_branches=True, force=True, refine_geometry=False)
    record = process_case(rec, CaseJob("c", str(case), str(tmp_path / "out"), options=opts))
    assert rec.kwargs == {
        "refine_geometry": False,
        "refine_surface": True,
        "force": True,
        "skip_failed_branches": True,
    }
    assert record["status"] == "failed" and record["exit_code"] == 70
    assert opts.to_dict()["skip_failed_branches"] is True
