"""Image statistics for synthetic-vs-real comparison, on inputs with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from angio_deploy.synth import realism
from angio_deploy.synth.background import power_law_texture


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.05])
def test_noise_level_of_white_noise(sigma):
    img = 0.5 + sigma * rng(1).standard_normal((256, 256))
    assert math.isclose(realism.noise_level(img), sigma, rel_tol=0.05)


def test_noise_level_ignores_smooth_anatomy_and_edges():
    y, x = np.mgrid[0:256, 0:256] / 256.0
    anatomy = 0.3 + 0.3 * x + 0.1 * np.sin(6 * y) + 0.2 * (x > 0.5)
    img = anatomy + 0.01 * rng(2).standard_normal((256, 256))
    assert math.isclose(realism.noise_level(img), 0.01, rel_tol=0.1)


def test_spectrum_slope_white_noise_is_flat():
    img = 0.5 + 0.05 * rng(3).standard_normal((512, 512))
    assert abs(realism.spectrum_slope(img)["slope"]) < 0.25


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_spectrum_slope_of_power_law_texture(beta):
    tex = power_law_texture(rng(4), (512, 512), beta, f_min=1.0 / 1024)
    img = 0.5 + 0.05 * tex
    assert math.isclose(realism.spectrum_slope(img, crop=0.0)["slope"], -beta, abs_tol=0.3)


def _bar_image(contrast: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    img = np.full((200, 200), 0.6) + sigma * rng(5).standard_normal((200, 200))
    mask = np.zeros((200, 200), bool)
    mask[95:101, 20:180] = True
    img[mask] -= contrast
    return img, mask


def test_vessel_cnr_with_mask():
    img, mask = _bar_image(0.1, 0.01)
    out = realism.vessel_cnr(img, mask)
    assert math.isclose(out["contrast"], 0.1, rel_tol=0.05)
    assert math.isclose(out["cnr"], 10.0, rel_tol=0.12)
    with pytest.raises(ValueError, match="empty"):
        realism.vessel_cnr(img, np.zeros_like(mask))


def test_dark_line_contrast_without_mask_sees_vessels():
    with_vessel, _ = _bar_image(0.1, 0.01)
    without, _ = _bar_image(0.0, 0.01)
    a = realism.dark_line_contrast(with_vessel)
    b = realism.dark_line_contrast(without)
    assert a["cnr"] > 2 * b["cnr"]
    assert 0.05 < a["contrast"] < 0.15


def test_histogram_normalised_with_percentiles():
    img = rng(6).uniform(0.0, 1.0, (256, 256))
    h = realism.histogram(img)
    assert len(h["hist"]) == 64
    assert math.isclose(sum(h["hist"]), 1.0, rel_tol=1e-9)
    assert math.isclose(h["median"], 0.5, abs_tol=0.02)
    assert math.isclose(h["spread_p5_p95"], 0.9, abs_tol=0.02)


def test_image_statistics_json_and_compare():
    img, mask = _bar_image(0.1, 0.01)
    s_mask = realism.image_statistics(img, mask)
    s_free = realism.image_statistics(img)
    json.dumps(s_mask)
    assert math.isclose(s_mask["cnr"], 10.0, rel_tol=0.12)
    same = realism.compare(s_free, s_free)
    assert same["noise_ratio"] == 1.0 and same["cnr_ratio"] == 1.0
    assert same["hist_emd"] == 0.0 and math.isclose(same["hist_intersection"], 1.0)
    noisier = realism.image_statistics(_bar_image(0.1, 0.03)[0])
    diff = realism.compare(noisier, s_free)
    assert math.isclose(diff["noise_ratio"], 3.0, rel_tol=0.1)
    assert diff["cnr_ratio"] < 0.6
    assert diff["hist_emd"] > 0.0 and diff["hist_intersection"] < 1.0
    with pytest.raises(ValueError, match="2D"):
        realism.image_statistics(np.zeros((4, 4, 3)))
