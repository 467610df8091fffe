"""2D centreline extraction on synthetic probability maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy.errors import InputError
from angio_deploy.pipeline.centreline2d import extract_centreline


def _tube(H=160, W=256, width=8.0, curve=0.0, gap=None, distractor=False):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    centre = 79.5 + curve * np.sin(np.pi * (xx - 24) / 208)
    d = np.abs(yy - centre)
    prob = np.clip(0.5 + (width / 2 - d), 0.0, 1.0)
    if gap is not None:
        prob[:, gap[0] : gap[1]] *= 0.3
    if distractor:
        prob = np.maximum(prob, np.clip(0.5 + (3.0 - np.abs(xx - 128)), 0, 1))
    return prob


def test_straight_vessel_width_and_position() -> None:
    cl = extract_centreline(_tube(width=8.0), [24.0, 79.5], [231.0, 79.5])
    assert cl.off_vessel_share == 0.0
    np.testing.assert_allclose(cl.points[5:-5, 1], 79.5, atol=0.3)
    np.testing.assert_allclose(np.median(cl.widths), 8.0, atol=0.3)
    assert abs(np.linalg.norm(np.diff(cl.points, axis=0), axis=1).mean() - 1.0) < 0.05


def test_curved_vessel_followed_despite_a_crossing_vessel() -> None:
    prob = _tube(width=6.0, curve=30.0, distractor=True)
    cl = extract_centreline(prob, [24.0, 79.5], [232.0, 79.5])
    x = cl.points[:, 0]
    expected = 79.5 + 30.0 * np.sin(np.pi * (x - 24) / 208)
    inner = slice(10, -10)
    np.testing.assert_allclose(cl.points[inner, 1], expected[inner], atol=1.0)


def test_short_gap_is_bridged_but_empty_view_is_an_error() -> None:
    cl = extract_centreline(_tube(gap=(120, 130)), [24.0, 79.5], [231.0, 79.5], view="a")
    assert 0 < cl.off_vessel_share < 0.25
    with pytest.raises(InputError, match=r"view b.*no vessel found"):
        extract_centreline(np.zeros((160, 256)), [24.0, 79.5], [231.0, 79.5], view="b")
    with pytest.raises(InputError, match=r"view a.*vessel not found"):
        extract_centreline(_tube(gap=(60, 200)), [24.0, 79.5], [231.0, 79.5], view="a")


def _segment(x0: float, x1: float, width: float = 10.0, H=160, W=256):
    """A horizontal vessel whose mask stops at x0 and x1 (like a segment-of-interest mask)."""
    prob = _tube(H=H, W=W, width=width)
    xx = np.arange(W, dtype=np.float64)[None, :]
    return prob * np.clip(0.5 + np.minimum(xx - x0, x1 - xx), 0.0, 1.0)


@pytest.mark.parametrize("click_offset", [0.0, 3.0, -3.0])
def test_ends_follow_the_clicks_along_the_vessel(click_offset: float) -> None:
    # Medial pixels near a mask's end lie about a radius inside it; the path's ends must
    # still sit at the clicks' axial positions (before, within or beyond the mask).
    x0, x1 = 40.0, 200.0
    start = np.array([x0 - click_offset, 81.0])
    end = np.array([x1 + click_offset, 78.0])
    cl = extract_centreline(_segment(x0, x1), start, end)
    assert abs(cl.points[0, 0] - start[0]) < 0.6
    assert abs(cl.points[-1, 0] - end[0]) < 0.6
    # Laterally the path stays on the vessel's axis, not on the off-axis clicks.
    np.testing.assert_allclose(cl.points[[0, -1], 1], 79.5, atol=0.6)
    # Widths near the ends (and on any extension) are the vessel's, not the end face's.
    np.testing.assert_allclose(cl.widths, 10.0, atol=0.5)
