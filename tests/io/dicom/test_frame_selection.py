"""Frame selection by vessel contrast (io/dicom/frame_selection.py), on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from angio_deploy.errors import InputError
from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.io.dicom.frame_selection import (
    SELECTION_CONTRAST,
    SELECTION_GIVEN,
    vessel_contrast_score,
    vessel_contrast_scores,
)
from angio_deploy.io.dicom.reader import read_xa
from angio_deploy.io.dicom.writer import write_xa

H = W = 96


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(0.7 + 0.01 * rng.standard_normal((H, W)), 0.0, 1.0)


def _with_line(img: np.ndarray, row: int, darkness: float) -> np.ndarray:
    out = img.copy()
    out[row : row + 3, 10 : W - 10] *= 1.0 - darkness
    return out


def test_a_thin_dark_vessel_scores_higher_and_darker_scores_higher() -> None:
    flat = _background()
    faint = _with_line(flat, H // 2, 0.2)
    strong = _with_line(flat, H // 2, 0.6)
    scores = vessel_contrast_scores(np.stack([flat, faint, strong]))
    assert scores.shape == (3,)
    assert scores[0] < scores[1] < scores[2]
    assert scores[1] == vessel_contrast_score(faint)


def test_the_border_is_ignored() -> None:
    # Collimator and shutter edges sit in the outer 1/16 of each side: a dark band there
    # must not count as a vessel.
    flat = _background()
    edge = flat.copy()
    edge[1:3, :] *= 0.3
    assert vessel_contrast_score(edge) == pytest.approx(vessel_contrast_score(flat), abs=1e-6)


def test_the_score_is_nearly_exposure_independent() -> None:
    # Beer-Lambert: the log makes a vessel's contrast a ratio, so halving the exposure
    # changes the score far less than halving the vessel's darkness does.
    img = _with_line(_background(), H // 2, 0.5)
    s = vessel_contrast_score(img)
    assert abs(vessel_contrast_score(0.5 * img) - s) < 0.1 * s
    assert vessel_contrast_score(_with_line(_background(), H // 2, 0.25)) < 0.7 * s


def _write_run(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    g = ViewGeometry.from_angles(30.0, 10.0, 1000.0, 750.0, (0.3, 0.3), W, H)
    return write_xa(tmp_path / "run.dcm", np.stack(frames), g, bits_stored=12, uid_seed="fs")


def test_ties_go_to_the_earliest_frame(tmp_path: Path) -> None:
    flat = _background()
    line = _with_line(flat, 40, 0.5)
    x = read_xa(_write_run(tmp_path, [flat, line, line, flat]))
    assert x.frame_selection == SELECTION_CONTRAST
    assert x.frame_scores is not None and x.frame_scores[1] == x.frame_scores[2]
    assert x.frame_index == 1
    assert "frame 1 of 4" in x.provenance["frame"]


@pytest.mark.parametrize("frame", [True, 1.0, "1"])
def test_a_frame_that_is_not_an_integer_is_refused(tmp_path: Path, frame: object) -> None:
    p = _write_run(tmp_path, [_background(), _background(1)])
    with pytest.raises(InputError, match="frame must be an integer") as err:
        read_xa(p, frame)  # type: ignore[arg-type]
    assert err.value.field == "frame"
    assert read_xa(p, np.int64(1)).frame_selection == SELECTION_GIVEN
