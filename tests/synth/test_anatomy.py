"""Synthetic coronary anatomy (synth/anatomy.py): geometry, diameters, laws, SOIs, catheter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from angio_deploy.synth.anatomy import AnatomyParams, generate_anatomy, heart_of
from angio_deploy.synth.anatomy_curves import point_at, tangents
from angio_deploy.synth.anatomy_diameters import Law, law_error
from angio_deploy.synth.lesions import measured_percent_ds
from angio_deploy.synth.model import Anatomy, Vessel

N_SCENES = 40


@pytest.fixture(scope="module")
def scenes() -> list[Anatomy]:
    return [generate_anatomy(np.random.default_rng(seed)) for seed in range(N_SCENES)]


@pytest.fixture(scope="module")
def population() -> list[Anatomy]:
    """Many draws for distribution checks (about 20 ms each)."""
    return [generate_anatomy(np.random.default_rng(10_000 + seed)) for seed in range(240)]


def _arteries(a: Anatomy) -> list[Vessel]:
    return [v for v in a.vessels if v.kind == "artery"]


def _by_name(a: Anatomy, name: str) -> Vessel:
    return next(v for v in a.vessels if v.name == name)


def _courses(a: Anatomy) -> list[str]:
    return [m["course"] for m in a.meta["vessels"]]


def _polyline_distance(points: np.ndarray, x: np.ndarray) -> float:
    """Distance (mm) from point x to a polyline."""
    a, b = points[:-1], points[1:]
    ab = b - a
    u = np.clip(np.sum((x - a) * ab, axis=1) / np.sum(ab * ab, axis=1), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + u[:, None] * ab - x, axis=1)))


# ----- determinism and speed ----------------------------------------------------------------


def _arrays(a: Anatomy) -> list[np.ndarray]:
    out = []
    for v in a.vessels:
        out += [v.points, v.semi_axes, v.major_dir, v.reference_radius]
        out.append(np.zeros(1) if v.offset is None else v.offset)
    return out


def test_same_seed_same_scene_and_no_global_rng() -> None:
    np.random.seed(1)  # noqa: NPY002 - the generator must not depend on the global state
    a = generate_anatomy(np.random.default_rng(123))
    np.random.seed(2)  # noqa: NPY002
    b = generate_anatomy(np.random.default_rng(123))
    assert len(a.vessels) == len(b.vessels)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    assert a.soi == b.soi
    assert a.side_sois == b.side_sois
    assert a.bifurcations == b.bifurcations


def test_different_seeds_differ() -> None:
    a = generate_anatomy(np.random.default_rng(1))
    b = generate_anatomy(np.random.default_rng(2))
    assert a.vessels[0].points.shape != b.vessels[0].points.shape or not np.allclose(
        a.vessels[0].points, b.vessels[0].points
    )


# ----- heart and placement ------------------------------------------------------------------


def test_heart_size_and_orientation(scenes: list[Anatomy]) -> None:
    for a in scenes:
        r = a.heart_rotation
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        e_long = r[:, 0]
        # Apex toward the patient's left, anterior (-y) and inferior (-z) in LPS.
        assert e_long[0] > 0.2 and e_long[1] < -0.2 and e_long[2] < -0.1
        np.testing.assert_allclose(a.heart_axes_mm, [60.0, 45.0, 40.0], rtol=0.2)
        assert 100.0 < 2 * a.heart_axes_mm[0] < 140.0


def test_soi_midpoint_near_isocenter(scenes: list[Anatomy]) -> None:
    bound = AnatomyParams().placement_jitter_mm
    for a in scenes:
        v = a.vessels[a.soi.vessel]
        mid, _ = point_at(v.points, 0.5 * (a.soi.s_start_mm + a.soi.s_end_mm))
        assert np.linalg.norm(mid) <= bound + 1e-9
        assert np.linalg.norm(a.heart_center_mm) < 90.0


# ----- centrelines --------------------------------------------------------------------------


def test_spacing_and_smoothness(scenes: list[Anatomy]) -> None:
    for a in scenes:
        for v in a.vessels:
            seg = np.linalg.norm(np.diff(v.points, axis=0), axis=1)
            assert seg.max() <= 0.5
            assert seg.min() > 0.2
            t = tangents(v.points)
            turn = np.arccos(np.clip(np.sum(t[1:] * t[:-1], axis=1), -1.0, 1.0))
            # Turning rate below 0.25 rad/mm: curvature radius above 4 mm, no kinks.
            assert np.max(turn / seg) < 0.25, v.name


def test_vessels_follow_the_epicardium(scenes: list[Anatomy]) -> None:
    for a in scenes:
        heart = heart_of(a)
        for v, course in zip(a.vessels, _courses(a), strict=True):
            h = heart.height(v.points)
            if course == "epicardial":
                # Radius plus a little epicardial fat, never inside the myocardium; branches
                # of the ostial RCA segment start above the surface and settle within 40 mm.
                assert h.min() > 0.3, v.name
                if h[0] > 6.0:
                    assert h[-1] < h[0] and h.max() < h[0] + 0.5, v.name
                else:
                    assert h.max() < 6.0, v.name
            elif course == "ostial" and v.length_mm > 60.0:
                assert np.all((h[v.arc_lengths > 40.0] > 0.3) & (h[v.arc_lengths > 40.0] < 6.0))
            elif course == "septal":
                assert h[-1] < -3.0  # dives into the septum


def test_proximal_to_distal_and_branch_origins_on_parent(scenes: list[Anatomy]) -> None:
    for a in scenes:
        for v in a.vessels:
            if v.parent is None:
                continue
            parent = a.vessels[v.parent]
            assert 0.0 <= v.parent_s_mm <= parent.length_mm + 1e-9
            assert _polyline_distance(parent.points, v.points[0]) < 1e-6
            p, _ = point_at(parent.points, v.parent_s_mm)
            assert np.linalg.norm(p - v.points[0]) < 1e-6


def test_tree_composition(scenes: list[Anatomy], population: list[Anatomy]) -> None:
    for a in scenes:
        names = [v.name for v in a.vessels]
        assert sum(v.kind == "artery" for v in a.vessels) >= 6
        assert [v.kind for v in a.vessels].count("catheter") == 1
        if a.tree == "left":
            assert {"LM", "LAD", "LCx", "D1", "OM1"} <= set(names)
            assert any(n.startswith("S") for n in names)
            assert "RCA" not in names
        else:
            assert {"RCA", "conus", "PDA", "RV1", "AM"} <= set(names)
            assert "LAD" not in names
    left = np.mean([a.tree == "left" for a in population])
    assert 0.6 < left < 0.8


# ----- diameters ----------------------------------------------------------------------------


def test_reference_taper_is_monotone_and_lumen_free_outside_lesions(scenes: list[Anatomy]) -> None:
    for a in scenes:
        for v in _arteries(a):
            assert np.all(np.diff(v.reference_radius) <= 1e-12), v.name
            healthy = np.ones(len(v.points), dtype=bool)
            for les in v.lesions:
                healthy &= np.abs(v.arc_lengths - les.center_s_mm) > 0.5 * les.length_mm
            np.testing.assert_allclose(v.radius[healthy], v.reference_radius[healthy], rtol=1e-9)


def test_dodge_statistics(population: list[Anatomy]) -> None:
    left = [a for a in population if a.tree == "left"]
    right = [a for a in population if a.tree == "right"]
    assert len(left) > 120 and len(right) > 40
    lm = [2 * _by_name(a, "LM").reference_radius[0] for a in left]
    lad = [2 * _by_name(a, "LAD").reference_radius[0] for a in left]
    lcx = [2 * _by_name(a, "LCx").reference_radius[0] for a in left]
    rca = [2 * _by_name(a, "RCA").reference_radius[0] for a in right]
    lad_dist = []
    for a in left:
        v = _by_name(a, "LAD")
        s = a.meta["dodge_used_mm"]["lad_dist_s_mm"]
        lad_dist.append(2 * float(np.interp(s, v.arc_lengths, v.reference_radius)))
    for values, (mean, sd), tol in [
        (lm, (4.5, 0.5), 0.15),
        (lad, (3.7, 0.4), 0.12),
        (lad_dist, (1.9, 0.4), 0.15),
        (lcx, (3.4, 0.5), 0.15),
        (rca, (3.9, 0.6), 0.25),
    ]:
        assert np.mean(values) == pytest.approx(mean, abs=tol)
        assert 0.5 * sd < np.std(values) < 1.5 * sd
    # Dodge: the LAD narrows to about half its proximal size.
    assert np.all(np.array(lad_dist) < np.array(lad))


def test_bifurcation_laws_angles_and_diameters(scenes: list[Anatomy]) -> None:
    laws = set()
    for a in scenes:
        assert len(a.bifurcations) >= 4
        for bf in a.bifurcations:
            d_p, d_1, d_2 = bf.diameters_mm
            law = Law(bf.law, bf.exponent)
            laws.add(bf.law)
            assert law_error(law, d_p, d_1, d_2) < 0.01
            if bf.law == "murray":
                assert 2.1 - 1e-9 <= bf.exponent <= 3.0 + 1e-9
            else:
                assert bf.exponent is None
            assert d_2 <= d_1 + 1e-9 or bf.daughters[0] != bf.parent
            assert 30.0 <= bf.angle_deg <= 100.0
            parent = a.vessels[bf.parent]
            side = a.vessels[bf.daughters[1]]
            assert 2 * side.reference_radius[0] == pytest.approx(d_2, rel=1e-9)
            if bf.daughters[0] == bf.parent:
                # The main vessel steps down smoothly over ~2 mm around the branch point.
                # d_p is the diameter at s - 1 mm, where the step starts; sampled 0.5 mm
                # outside the step, the values differ from d_p, d_1 by the taper only.
                s = parent.arc_lengths
                before = 2 * np.interp(bf.s_mm - 1.5, s, parent.reference_radius)
                after = 2 * np.interp(bf.s_mm + 1.5, s, parent.reference_radius)
                taper = a.meta["vessels"][bf.parent]["taper_per_mm"]
                assert before == pytest.approx(d_p * np.exp(0.5 * taper), rel=1e-4)
                assert after == pytest.approx(d_1 * np.exp(-2.5 * taper), rel=1e-4)
                assert taper < 0.02
                p0, _ = point_at(parent.points, bf.s_mm)
                p1, _ = point_at(parent.points, bf.s_mm + 2.0)
                main_dir = p1 - p0
            else:
                main = a.vessels[bf.daughters[0]]
                assert 2 * main.reference_radius[0] == pytest.approx(d_1, rel=1e-9)
                assert 2 * parent.reference_radius[-1] == pytest.approx(d_p, rel=1e-9)
                main_dir = point_at(main.points, 2.0)[0] - main.points[0]
            side_dir = point_at(side.points, 2.0)[0] - side.points[0]
            cos = main_dir @ side_dir / np.linalg.norm(main_dir) / np.linalg.norm(side_dir)
            assert np.degrees(np.arccos(cos)) == pytest.approx(bf.angle_deg, abs=0.5)
    assert laws == {"finet", "murray"}


# ----- cross-sections -----------------------------------------------------------------------


def test_elliptic_lumen(scenes: list[Anatomy]) -> None:
    ratios = []
    for a in scenes:
        for v in a.vessels:
            a_, b_ = v.semi_axes[:, 0], v.semi_axes[:, 1]
            ratio = a_ / b_
            assert np.all(ratio >= 1.0 - 1e-12) and np.all(ratio <= 1.3 + 1e-9)
            # Smoothly varying along the vessel.
            assert np.max(np.abs(np.diff(ratio))) < 0.02
            t = tangents(v.points)
            np.testing.assert_allclose(np.linalg.norm(v.major_dir, axis=1), 1.0, atol=1e-12)
            assert np.max(np.abs(np.sum(v.major_dir * t, axis=1))) < 1e-9
            # The major axis turns smoothly: < 10 degrees between neighbouring samples
            # (ellipses are symmetric, so the sign of major_dir is irrelevant).
            dots = np.abs(np.sum(v.major_dir[1:] * v.major_dir[:-1], axis=1))
            assert dots.min() > np.cos(np.radians(10.0))
            if v.offset is not None:
                assert np.max(np.abs(np.sum(v.offset * t, axis=1))) < 1e-9
            ratios.append(ratio.max())
    assert max(ratios) > 1.2 and min(ratios) < 1.05


# ----- SOI and lesions ----------------------------------------------------------------------


def test_soi_and_side_soi(scenes: list[Anatomy], population: list[Anatomy]) -> None:
    for a in scenes + population[:60]:
        v = a.vessels[a.soi.vessel]
        assert v.name in ("LAD", "LCx", "RCA", "D1", "OM1")
        assert 20.0 - 1e-9 <= a.soi.length_mm <= 80.0 + 1e-9
        assert a.soi.s_start_mm > 0.0 and a.soi.s_end_mm < v.length_mm
        for side in a.side_sois:
            branch = a.vessels[side.vessel]
            assert branch.parent == a.soi.vessel
            assert side.s_start_mm == 0.0
            assert 10.0 - 1e-9 <= side.length_mm <= 30.0 + 1e-9
            assert side.s_end_mm < branch.length_mm
            assert a.soi.s_start_mm < branch.parent_s_mm < a.soi.s_end_mm
            assert _polyline_distance(v.points, branch.points[0]) < 0.1
    share = np.mean([len(a.side_sois) > 0 for a in population])
    assert 0.15 < share < 0.4


def test_lesions_in_soi(population: list[Anatomy]) -> None:
    counts = []
    for a in population:
        soi_v = a.vessels[a.soi.vessel]
        counts.append(len(soi_v.lesions))
        for v in a.vessels:
            for les in v.lesions:
                assert 30.0 <= les.percent_ds <= 90.0
                assert 5.0 - 1e-9 <= les.length_mm <= 25.0 + 1e-9
                assert measured_percent_ds(v, les) == pytest.approx(les.percent_ds, abs=0.5)
        for les in soi_v.lesions:
            lo = les.center_s_mm - 0.5 * les.length_mm
            hi = les.center_s_mm + 0.5 * les.length_mm
            assert a.soi.s_start_mm + 1.0 < lo and hi < a.soi.s_end_mm - 1.0
    counts = np.array(counts)
    assert counts.max() == 2
    assert 0.07 < np.mean(counts == 0) < 0.25
    assert 0.12 < np.mean(counts == 2) < 0.3


def test_lesion_meta_matches_geometry(scenes: list[Anatomy]) -> None:
    for a in scenes:
        listed = a.meta["lesions"]
        assert len(listed) == sum(len(v.lesions) for v in a.vessels)
        for item in listed:
            v = a.vessels[item["vessel"]]
            assert item["vessel_name"] == v.name
            assert item["percent_ds"] == pytest.approx(item["measured_percent_ds"], abs=1e-9)


# ----- catheter and meta --------------------------------------------------------------------


def test_catheter_engages_the_ostium(scenes: list[Anatomy]) -> None:
    for a in scenes:
        cath = a.vessels[-1]
        assert cath.kind == "catheter" and cath.parent is None
        ostium = a.vessels[0]
        assert ostium.name == ("LM" if a.tree == "left" else "RCA")
        assert np.linalg.norm(cath.points[-1] - ostium.points[0]) < 1e-9
        assert 150.0 - 1.0 <= cath.length_mm <= 250.0 + 1.0
        # 5-6 French guide: contrast lumen 1.4-1.85 mm across, circular.
        np.testing.assert_allclose(cath.semi_axes[:, 0], cath.semi_axes[:, 1])
        assert 0.7 <= cath.reference_radius[0] <= 0.92
        assert np.ptp(cath.reference_radius) == 0.0
        # Comes up from below (descending aorta), over the arch, down to the ostium.
        t = tangents(cath.points)
        assert t[0, 2] > 0.7 or cath.length_mm > 249.0
        assert cath.points[:, 2].max() > cath.points[-1, 2] + 30.0
        info = a.meta["catheter"]
        assert info["french"] in (5, 6)
        assert info["outer_diameter_mm"] == pytest.approx(info["french"] / 3.0)
        assert info["inner_diameter_mm"] < info["outer_diameter_mm"]


def test_meta_is_json_and_complete(scenes: list[Anatomy]) -> None:
    for a in scenes[:10]:
        meta = json.loads(json.dumps(a.meta))
        assert meta["tree"] == a.tree
        assert len(meta["vessels"]) == len(a.vessels)
        assert len(meta["bifurcations"]) == len(a.bifurcations)
        assert meta["soi"]["vessel"] == a.soi.vessel
        assert meta["soi"]["length_mm"] == pytest.approx(a.soi.length_mm)
        assert {"lm", "lad_prox", "lad_dist", "lcx_prox", "rca_prox"} <= set(meta["dodge_drawn_mm"])
        for bf in meta["bifurcations"]:
            assert bf["law"] in ("finet", "murray")
            assert bf["law_error"] < 0.01
