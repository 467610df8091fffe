"""3D-QCA of a branch: reference, MLD, %DS / %AS, lesions, foreshortening, csv and plot."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy.geometry import ViewGeometry
from angio_deploy.pipeline.qca import branch_qca, diameter_plot, qca_csv


def _branch(n: int = 100, length: float = 50.0, lesions=((25.0, 10.0, 0.5),), taper=(3.5, 2.5)):
    s = np.linspace(0.0, length, n)
    ref = np.interp(s, [0, length], taper)
    d = ref.copy()
    for centre, width, ds in lesions:
        inside = np.abs(s - centre) < width / 2
        d[inside] *= 1.0 - ds * 0.5 * (1 + np.cos(2 * np.pi * (s[inside] - centre) / width))
    centreline = np.column_stack([s - length / 2, np.zeros(n), np.zeros(n)])
    return s, ref, d, centreline


def test_reference_follows_the_taper_not_the_lesion() -> None:
    s, ref, d, c = _branch()
    q = branch_qca(c, d / 2)
    np.testing.assert_allclose(q.arc_mm, s, atol=1e-9)
    np.testing.assert_allclose(q.reference_mm, ref, atol=0.02)
    out = q.to_dict()
    assert out["mld_position_mm"] == pytest.approx(25.0, abs=0.6)
    assert out["percent_ds"] == pytest.approx(50.0, abs=1.5)
    assert out["percent_as"] == pytest.approx(75.0, abs=1.5)
    assert out["reference_diameter_mm"]["proximal"] == pytest.approx(3.5, abs=0.02)


def test_lesion_length_is_where_the_diameter_is_20_percent_below() -> None:
    s, _, d, c = _branch()
    (les,) = branch_qca(c, d / 2).lesions
    # d / ref = 1 - 0.25 (1 + cos x) < 0.8  <=>  cos x > -0.2, x = 2 pi (s - 25) / 10.
    expected = 10.0 * np.arccos(-0.2) / np.pi
    assert les.length_mm == pytest.approx(expected, abs=2 * (s[1] - s[0]))
    assert les.percent_ds == pytest.approx(50.0, abs=1.5)


def test_several_lesions_and_none() -> None:
    _, _, d, c = _branch(lesions=((12.0, 6.0, 0.4), (38.0, 8.0, 0.7)))
    q = branch_qca(c, d / 2)
    assert [round(les.mld_position_mm) for les in q.lesions] == [12, 38]
    assert q.to_dict()["percent_ds"] == pytest.approx(70.0, abs=2.0)  # the worst one
    _, _, d, c = _branch(lesions=())
    assert branch_qca(c, d / 2).lesions == ()


def test_foreshortening_side_on_and_end_on() -> None:
    _, _, d, c = _branch(lesions=())
    side = ViewGeometry.from_angles(0, 0, 1000, 750, (0.3, 0.3), 512, 512)
    q = branch_qca(c, d / 2, [side])
    assert q.foreshortening[0] == pytest.approx(1.0, abs=0.01)
    along = np.column_stack([np.zeros(100), np.linspace(-25, 25, 100), np.zeros(100)])
    q = branch_qca(along, d / 2, [side])
    assert q.foreshortening[0] < 0.05  # the view looks down the segment


def test_csv_and_plot() -> None:
    _, _, d, c = _branch()
    q = branch_qca(c, d / 2)
    lines = qca_csv([q]).splitlines()
    assert lines[0] == "branch,ring,arc_mm,diameter_mm,reference_diameter_mm,area_mm2"
    assert len(lines) == 101 and lines[1].startswith("main,0,0.0000,3.5000,")
    im = diameter_plot(q)
    assert im.size == (720, 300)
    px = np.asarray(im)
    assert (px[..., 0] > 240).sum() > 0 and (px == 0).all(axis=-1).sum() > 100  # drawn


def test_reference_follows_a_branch_step_and_ignores_an_ostial_bulge() -> None:
    # Healthy 3.4 mm, a side branch leaves at 20 mm (step to 2.8 mm, with a 3 mm bulge
    # of its ostium), and a 50 % lesion at 35 mm: a straight taper fits none of it.
    s, _, _, c = _branch(n=120, length=60.0, lesions=())
    ref = np.where(s < 20.0, 3.4, 2.8)
    d = ref.copy()
    d[(s > 20.0) & (s < 23.0)] += 1.0
    inside = np.abs(s - 35.0) < 5.0
    d[inside] *= 1.0 - 0.25 * (1 + np.cos(2 * np.pi * (s[inside] - 35.0) / 10.0))
    q = branch_qca(c, d / 2)
    healthy = (s < 19.0) | ((s > 24.0) & (s < 29.0)) | (s > 41.0)
    np.testing.assert_allclose(q.reference_mm[healthy], ref[healthy], atol=0.05)
    np.testing.assert_allclose(q.reference_mm[inside], 2.8, atol=0.05)
    assert q.to_dict()["percent_ds"] == pytest.approx(50.0, abs=1.5)
    (les,) = q.lesions  # the step and the bulge are no lesions
    assert les.mld_position_mm == pytest.approx(35.0, abs=0.6)


def test_reference_of_a_lesion_free_taper_is_the_vessel() -> None:
    _, ref, d, c = _branch(lesions=(), taper=(4.0, 2.0))
    q = branch_qca(c, d / 2)
    # To both ends: windows that ran past them would read the taper as a dip there.
    np.testing.assert_allclose(q.reference_mm, ref, atol=0.02)
    assert q.lesions == ()
