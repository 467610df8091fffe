"""X-ray image formation: determinism, stored values, Beer-Lambert, noise, blur, edges."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angio_deploy import kernels
from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.synth import detector as det
from angio_deploy.synth import realism
from angio_deploy.synth.model import Anatomy, SegmentOfInterest, Vessel
from angio_deploy.synth.xray import (
    ImagingParams,
    draw_imaging_params,
    materials_at,
    render_view,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SIZE = 128


def straight_vessel(radius: float = 1.5, kind: str = "artery", y: float = 0.0) -> Vessel:
    """A straight circular tube along world x through (0, y, 0), 80 mm long."""
    n = 161
    pts = np.stack([np.linspace(-40, 40, n), np.full(n, y), np.zeros(n)], axis=1)
    return Vessel(
        name=kind,
        kind=kind,
        points=pts,
        semi_axes=np.full((n, 2), radius),
        major_dir=np.tile([0.0, 1.0, 0.0], (n, 1)),
        reference_radius=np.full(n, radius),
    )


def anatomy(vessels: list[Vessel] | None = None) -> Anatomy:
    vs = [straight_vessel()] if vessels is None else vessels
    return Anatomy(vessels=vs, soi=SegmentOfInterest(0, 20.0, 60.0))


def ap_view(size: int = SIZE, spacing: float = 0.6) -> ViewGeometry:
    return ViewGeometry.from_angles(0.0, 0.0, 1000.0, 750.0, (spacing, spacing), size, size)


def to_log(view, params: ImagingParams) -> np.ndarray:
    """Invert the linear display map of an ideal render: stored -> log counts."""
    lo, hi = view.stats["window_log"]
    return lo + view.image.astype(np.float64) * (hi - lo)


def test_determinism_and_seed_dependence():
    an, g = anatomy(), ap_view()
    p = draw_imaging_params(np.random.default_rng(3))
    a = render_view(an, g, p, np.random.default_rng(11))
    b = render_view(an, g, p, np.random.default_rng(11))
    c = render_view(an, g, p, np.random.default_rng(12))
    assert np.array_equal(a.stored, b.stored)
    assert a.stats == b.stats
    assert not np.array_equal(a.stored, c.stored)


@pytest.mark.parametrize("bits", [8, 12])
def test_stored_dtype_and_range(bits):
    p = draw_imaging_params(np.random.default_rng(5), bits_stored=bits)
    v = render_view(anatomy(), ap_view(), p, np.random.default_rng(0))
    assert v.bits_stored == bits
    assert v.stored.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert v.stored.shape == (SIZE, SIZE)
    assert int(v.stored.max()) <= 2**bits - 1
    assert v.image.dtype == np.float32
    np.testing.assert_allclose(v.image, v.stored / (2**bits - 1), atol=1e-6)
    json.dumps(v.stats)


def test_beer_lambert_contrast_of_known_path_length():
    mu = 0.3
    p = ImagingParams.ideal(mu_iodine_per_mm=mu, catheter_wall_mu_per_mm=0.0)
    an, g = anatomy([straight_vessel(1.5)]), ap_view()
    v = render_view(an, g, p, np.random.default_rng(0))
    L = to_log(v, p)
    chord = kernels.tube_path_lengths(
        g.P, an.vessels[0].points, an.vessels[0].semi_axes, an.vessels[0].major_dir, SIZE, SIZE
    )
    bg = np.median(L[chord == 0])
    step = (v.stats["window_log"][1] - v.stats["window_log"][0]) / 4095
    # Every pixel: log-contrast = mu x path length (to the 12-bit quantisation step).
    np.testing.assert_allclose(bg - L, mu * chord, atol=1.5 * step)
    # The rays nearest the axis pass half a pixel (0.225 mm at the isocenter) from it:
    # chord 2 sqrt(r^2 - d^2) = 2.966 mm, 0.89 log units (41 % of the X-rays absorbed).
    d = 0.5 * 0.6 * 750.0 / 1000.0
    assert math.isclose(float((bg - L).max()), mu * 2 * math.sqrt(1.5**2 - d**2), rel_tol=2e-3)


def test_vessel_and_catheter_dark_monochrome2():
    an = anatomy([straight_vessel(1.5), straight_vessel(0.75, "catheter", y=0.0)])
    an.vessels[1].points[:, 2] += 15.0  # catheter 15 mm cranial of the artery
    p = draw_imaging_params(np.random.default_rng(9))
    g = ap_view(256, 0.3)
    v = render_view(an, g, p, np.random.default_rng(1))
    for ves in an.vessels:
        chord = kernels.tube_path_lengths(
            g.P, ves.points, ves.semi_axes, ves.major_dir, g.width, g.height
        )
        core = chord > 0.8 * chord.max()
        ring = (det.blur(chord.astype(np.float32), det.gaussian_kernel1d(6.0)) > 0.01) & (
            chord == 0
        )
        assert v.image[core].mean() < v.image[ring].mean() - 0.03, ves.kind


@pytest.mark.parametrize("counts", [100.0, 2000.0])
def test_quantum_noise_matches_poisson(counts):
    p = ImagingParams.ideal(counts_behind_patient=counts, quantum_noise=True)
    v = render_view(anatomy([]), ap_view(256), p, np.random.default_rng(4))
    L = to_log(v, p)
    expected = 1.0 / math.sqrt(counts)
    assert math.isclose(float(L.std()), expected, rel_tol=0.06)
    assert math.isclose(v.stats["noise_sigma_log"], expected, rel_tol=0.02)


def test_detector_psf_reduces_noise_as_predicted():
    p = ImagingParams.ideal(counts_behind_patient=1000.0, quantum_noise=True, blur=True)
    p = replace(p, detector_psf_px=0.8, focal_spot_mm=0.0)
    v = render_view(anatomy([]), ap_view(256), p, np.random.default_rng(4))
    measured = float(to_log(v, p)[8:-8, 8:-8].std())
    assert math.isclose(measured, v.stats["noise_sigma_log"], rel_tol=0.08)
    assert measured < 0.6 / math.sqrt(1000.0)


@pytest.mark.parametrize(("kind", "width"), [("gaussian", 0.7), ("exponential", 0.8)])
def test_blur_preserves_integral(kind, width):
    img = np.zeros((64, 64), np.float32)
    img[30:34, 20:44] = 5.0
    img[10, 10] = 3.0
    k = det.psf_kernel1d(kind, width)
    assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-6)
    out = det.blur(img, k)
    assert math.isclose(float(out.sum()), float(img.sum()), rel_tol=1e-5)
    assert out.max() < img.max()


def test_focal_spot_blur_widens_vessel_keeps_its_attenuation_integral():
    g = ap_view(256, 0.3)
    sharp = ImagingParams.ideal(mu_iodine_per_mm=0.3, focal_spot_mm=0.0, blur=True)
    sharp = replace(sharp, detector_psf_px=0.0)
    wide = replace(sharp, focal_spot_mm=1.0)
    out = []
    for p in (sharp, wide):
        v = render_view(anatomy(), g, p, np.random.default_rng(0))
        T = np.exp(to_log(v, p) - np.median(to_log(v, p)))
        out.append((1.0 - T)[:, 100:156].sum(axis=0).mean())  # deficit per column
        assert p is sharp or v.stats["focal_penumbra_px"] > 1.0
    assert math.isclose(out[0], out[1], rel_tol=0.01)


def test_collimation_gives_dark_soft_edges_like_real_systems():
    coll = det.Collimation(left=0.1, top=0.08, softness_px=2.0, transmission=0.02)
    p = replace(draw_imaging_params(np.random.default_rng(2)), collimation=coll)
    v = render_view(anatomy(), ap_view(256, 0.3), p, np.random.default_rng(0))
    blocked = v.image[:, :20]
    field = v.image[40:-40, 60:-40]
    assert blocked.mean() < 0.1 < np.median(field)
    assert v.image[:15, 60:-40].mean() < 0.1
    phantom = SHARED / "real_xa" / "phantom_rao26_cau33.dcm"
    if phantom.exists():  # the real GE files: blocked border dark (MONOCHROME2)
        from angio_deploy.io.dicom.reader import read_xa_frames

        fr = read_xa_frames(phantom)[0]
        assert fr[:, :4].mean() < 0.1 < np.median(fr[64:-64, 64:-64])


def test_draw_imaging_params_ranges_and_json():
    rng = np.random.default_rng(0)
    ps = [draw_imaging_params(rng) for _ in range(300)]
    bits = [p.bits_stored for p in ps]
    assert set(bits) == {8, 12}
    assert 0.65 < bits.count(8) / len(bits) < 0.92
    mus = np.array([p.mu_iodine_per_mm for p in ps])
    assert mus.min() > 0.06 and mus.max() < 0.42
    for p in ps[:20]:
        d = json.loads(json.dumps(p.to_dict()))
        assert d["bits_stored"] in (8, 12)
        assert 0.3 <= p.focal_spot_mm <= 1.0
        assert 0.5 <= p.detector_psf_px <= 1.0
    assert draw_imaging_params(np.random.default_rng(1), bits_stored=12).bits_stored == 12
    mat = materials_at(60.0)
    assert 0.019 < mat.tissue < 0.024 and mat.cortical > 2.5 * mat.tissue > mat.lung * 3


def test_background_has_chest_structure():
    p = draw_imaging_params(np.random.default_rng(7))
    geo = ViewGeometry.from_angles(-30.0, -20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    ideal_bg = replace(p, quantum_noise=False, clutter=0.0)
    v = render_view(anatomy([]), geo, ideal_bg, np.random.default_rng(0))
    inner = v.image[40:-40, 40:-40]
    # Heart shadow, lungs, diaphragm and bones: a wide, structured histogram, not flat.
    assert np.percentile(inner, 95) - np.percentile(inner, 5) > 0.1


def _real_clinical_stats() -> list[dict]:
    out = []
    for proj in ("projection_0", "projection_1"):
        for f in sorted((SHARED / "real_clinical" / proj).glob("*.jpg"))[::6]:
            img = np.asarray(Image.open(f).convert("L"), dtype=np.float64) / 255.0
            out.append(realism.image_statistics(img))
    return out


@pytest.mark.skipif(
    not (SHARED / "real_clinical").exists(), reason="needs ../shared/data/real_clinical"
)
def test_rendered_statistics_overlap_real_clinical_frames():
    real = _real_clinical_stats()
    noise = [s["noise"] for s in real]
    spread = [s["histogram"]["spread_p5_p95"] for s in real]
    median = [s["histogram"]["median"] for s in real]
    an = anatomy([straight_vessel(1.6), straight_vessel(0.75, "catheter", y=10.0)])
    syn = []
    for k, (a, b) in enumerate([(-30.0, -20.0), (40.0, -35.0), (-5.0, 40.0), (40.0, 30.0)]):
        rng = np.random.default_rng(100 + k)
        g = ViewGeometry.from_angles(a, b, 1000.0, 750.0, (0.308, 0.308), 512, 512)
        syn.append(
            realism.image_statistics(render_view(an, g, draw_imaging_params(rng), rng).image)
        )
    s_noise = np.median([s["noise"] for s in syn])
    s_spread = np.median([s["histogram"]["spread_p5_p95"] for s in syn])
    s_median = np.median([s["histogram"]["median"] for s in syn])
    assert 0.5 * min(noise) < s_noise < 2.0 * max(noise)
    assert 0.7 * min(spread) < s_spread < 1.6 * max(spread)
    assert min(median) - 0.12 < s_median < max(median) + 0.12
