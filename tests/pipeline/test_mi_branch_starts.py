"""The main segment's 2D path passes through the side branches' starts (CASE_FORMAT.md:
a branch starts on or near the main segment)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import CaseView, SegmentPoints
from angio_deploy.pipeline.crop import SoiCrop
from angio_deploy.pipeline.mi import SegmentSpec, through_branch_starts, trace_view
from angio_deploy.pipeline.result import MAIN, ViewResult

START = np.array([40.0, 100.0])
END = np.array([160.0, 100.0])
#: On the detour (y = 70), 30 px from the straight route (y = 100).
ON_DETOUR = np.array([100.0, 70.0])


def _vessels() -> np.ndarray:
    """Probability (200, 200): a straight tube from START to END and a detour loop that
    leaves it at x = 60, runs along y = 70 and rejoins at x = 140 (a foreshortened loop
    whose ends overlap the straight part in projection)."""
    centre = np.zeros((200, 200), dtype=bool)
    centre[100, 40:161] = True
    centre[70:101, 60] = True
    centre[70, 60:141] = True
    centre[70:101, 140] = True
    dist = ndimage.distance_transform_edt(~centre)
    return np.clip(3.5 - dist, 0.0, 1.0)


def _view_result(prob_img: np.ndarray, soi: SegmentPoints) -> ViewResult:
    image = (1.0 - 0.5 * prob_img).astype(np.float32)
    geometry = ViewGeometry.from_angles(0.0, 0.0, 1000.0, 750.0, (0.3, 0.3), 200, 200)
    view = CaseView("a", Path("view_a.png"), "image", image, geometry, soi)
    crop = SoiCrop.from_points(soi.start, soi.end)
    prob = crop.warp(prob_img)
    cl = trace_view(image, soi, crop, prob, view="a")
    return ViewResult.traced(view, crop, prob, cl)


def _traced(branch_start: np.ndarray) -> list:
    prob = _vessels()
    main = _view_result(prob, SegmentPoints(START, END))
    branch_view = dataclasses.replace(
        main.view, soi=SegmentPoints(branch_start, branch_start + np.array([0.0, -40.0]))
    )
    branch = dataclasses.replace(main, view=branch_view)
    main_spec = SegmentSpec(MAIN, (main.view.soi, main.view.soi))
    branch_spec = SegmentSpec("branch_1", (branch_view.soi, branch_view.soi))
    return [(main_spec, (main, main)), (branch_spec, (branch, branch))]


def _miss_px(vr: ViewResult, point: np.ndarray) -> float:
    return float(np.linalg.norm(vr.points_px - point, axis=1).min())


def test_a_missed_branch_start_becomes_a_guide_point_of_the_main() -> None:
    traced = _traced(ON_DETOUR)
    first = traced[0][1][0]
    assert _miss_px(first, ON_DETOUR) > 25.0  # the cheapest path takes the straight route
    out, warnings = through_branch_starts(traced)
    for vr in out[0][1]:
        assert _miss_px(vr, ON_DETOUR) < 2.0
        # Still from the clicked start to the clicked end, and longer by the loop.
        assert np.linalg.norm(vr.points_px[0] - START) < 2.0
        assert np.linalg.norm(vr.points_px[-1] - END) < 2.0
        assert len(vr.points_px) > len(first.points_px) + 40
    assert len(warnings) == 2
    assert all(w.startswith("view a: ") and "branch_1's start" in w for w in warnings)
    # The branch's own trace is untouched.
    assert out[1] is traced[1]


def test_a_branch_start_on_the_path_changes_nothing() -> None:
    on_path = np.array([100.0, 101.0])
    traced = _traced(on_path)
    out, warnings = through_branch_starts(traced)
    assert warnings == []
    assert out[0][1][0] is traced[0][1][0] and out[0][1][1] is traced[0][1][1]


def test_without_side_branches_nothing_is_traced_again() -> None:
    traced = _traced(ON_DETOUR)[:1]
    out, warnings = through_branch_starts(traced)
    assert warnings == [] and out == traced


@pytest.mark.parametrize("outside", [np.array([100.0, 5.0])])
def test_a_start_that_cannot_be_reached_keeps_the_first_path(outside: np.ndarray) -> None:
    # Outside the main's crop: a guide point there cannot be traced, so the first path
    # stays and nothing is claimed.
    traced = _traced(outside)
    out, warnings = through_branch_starts(traced)
    assert warnings == []
    assert out[0][1][0] is traced[0][1][0]
