"""2D centreline extraction on synthetic probability maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy.errors import InputError
from angio_deploy.pipeline.centreline2d import edge_distances, extract_centreline, path_normals


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


def _dark_tube_image(H=160, W=256, width=8.0, curve=0.0, seed=0):
    """A crop image with a dark tube where _tube puts its vessel, on noisy background."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    centre = 79.5 + curve * np.sin(np.pi * (xx - 24) / 208)
    img = 0.8 - 0.4 * np.exp(-0.5 * ((yy - centre) / (width / 2.5)) ** 2)
    return img + np.random.default_rng(seed).normal(0.0, 0.01, img.shape)


def test_long_gap_is_bridged_on_image_evidence_and_keeps_the_width() -> None:
    # A 35 % gap: on the probability alone the vessel is "not found".
    prob = _tube(width=8.0, gap=(90, 165))
    prob[:, 90:165] = 0.0
    with pytest.raises(InputError, match="vessel not found"):
        extract_centreline(prob, [24.0, 79.5], [231.0, 79.5])
    cl = extract_centreline(prob, [24.0, 79.5], [231.0, 79.5], image=_dark_tube_image())
    assert cl.off_vessel_share == 0.0 and cl.bridged_share > 0.3
    x = cl.points[:, 0]
    assert cl.gap[(x > 95) & (x < 160)].all() and not cl.gap[(x < 80) | (x > 175)].any()
    # Width and centre in the gap come from its neighbours, not from the gap.
    np.testing.assert_allclose(cl.widths, 8.0, atol=0.4)
    np.testing.assert_allclose(cl.points[5:-5, 1], 79.5, atol=0.5)


def test_click_on_background_is_still_not_a_vessel() -> None:
    # The segmented vessel is far from the clicks; the image there is noise only.
    prob = _tube(width=8.0)
    image = _dark_tube_image()
    with pytest.raises(InputError, match="no vessel found"):
        extract_centreline(prob, [24.0, 20.0], [231.0, 20.0], image=image)


def test_a_click_the_segmenter_faded_out_snaps_to_the_dark_ridge() -> None:
    prob = _tube(width=8.0)
    prob[:, :40] = 0.0  # the network missed the vessel's first 16 px past the start
    cl = extract_centreline(prob, [24.0, 79.5], [231.0, 79.5], image=_dark_tube_image())
    assert abs(cl.points[0, 0] - 24.0) < 2.0 and abs(cl.points[0, 1] - 79.5) < 1.0


def _two_routes():
    """Two vessels from (24, 80) to (232, 80): a straight one and an arc bulging up 40 px."""
    yy, xx = np.mgrid[0:160, 0:256].astype(np.float64)
    straight = np.clip(0.5 + (3.0 - np.abs(yy - 79.5)), 0.0, 1.0)
    arc_y = 79.5 - 40.0 * np.sin(np.pi * np.clip((xx - 24) / 208, 0, 1))
    arc = np.clip(0.5 + (3.0 - np.abs(yy - arc_y)), 0.0, 1.0) * ((xx >= 24) & (xx <= 232))
    return np.maximum(straight, arc)


def test_guide_points_pick_the_branch_in_order() -> None:
    prob = _two_routes()
    plain = extract_centreline(prob, [24.0, 79.5], [232.0, 79.5])
    assert np.abs(plain.points[:, 1] - 79.5).max() < 4.0  # the short route
    guided = extract_centreline(prob, [24.0, 79.5], [232.0, 79.5], via=[[128.0, 41.0]])
    mid = np.abs(guided.points[:, 0] - 128.0) < 2.0
    assert np.all(np.abs(guided.points[mid, 1] - 39.5) < 2.0)
    assert guided.points[0, 0] < guided.points[-1, 0]


def test_guide_point_outside_the_crop_names_the_view() -> None:
    with pytest.raises(InputError, match="guide point 0 lies outside") as info:
        extract_centreline(_tube(), [24.0, 79.5], [231.0, 79.5], view="b", via=[[10.0, 500.0]])
    assert "view b" in str(info.value)


def test_edge_distances_of_a_tube_off_centre_and_its_normals():
    # Probability 0.5 at +-4 px about row 79.5; points 1 px below the axis see the edges
    # 5 px up (minus normal, the tangent (1, 0) turned +90 degrees is (0, 1)) and 3 down.
    prob = _tube(width=8.0)
    pts = np.column_stack([np.arange(40.0, 200.0, 10.0), np.full(16, 80.5)])
    nrm = path_normals(pts)
    assert np.allclose(nrm, [0.0, 1.0])
    minus, plus = edge_distances(prob, pts, nrm, 0.5)
    assert np.allclose(minus, 5.0, atol=0.01) and np.allclose(plus, 3.0, atol=0.01)
    # A higher level moves both edges in; a point outside the vessel has no width.
    m2, p2 = edge_distances(prob, pts, nrm, 0.9)
    assert np.allclose(m2 + p2, 7.2, atol=0.01)
    out = np.array([[100.0, 20.0]])
    m3, p3 = edge_distances(prob, out, np.array([[0.0, 1.0]]), 0.5)
    assert m3[0] == 0.0 and p3[0] == 0.0
