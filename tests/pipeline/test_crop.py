"""SOI crop: the start-end line is horizontal, mappings invert, images round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from angio_deploy.errors import InputError
from angio_deploy.pipeline.crop import SoiCrop

coord = st.floats(20, 490)


@given(su=coord, sv=coord, eu=coord, ev=coord)
@settings(max_examples=60, deadline=None)
def test_soi_lies_on_the_horizontal_midline(su, sv, eu, ev) -> None:
    start, end = np.array([su, sv]), np.array([eu, ev])
    if np.hypot(*(end - start)) < 2:
        return
    c = SoiCrop.from_points(start, end, width=256, height=160, margin_px=32, max_scale=2.0)
    xy = c.to_crop(np.stack([start, end]))
    assert xy[0, 1] == pytest.approx(79.5, abs=1e-9)
    assert xy[1, 1] == pytest.approx(79.5, abs=1e-9)
    assert xy[0, 0] < xy[1, 0]
    span = xy[1, 0] - xy[0, 0]
    assert span <= 256 - 2 * 32 + 1e-9
    np.testing.assert_allclose(c.to_image(xy), [start, end], atol=1e-9)


def test_long_soi_fits_and_short_soi_is_not_overmagnified() -> None:
    long = SoiCrop.from_points([10, 10], [500, 400], width=256, margin_px=32)
    assert long.scale < 1
    short = SoiCrop.from_points([100, 100], [120, 100], width=256, margin_px=32, max_scale=2.0)
    assert short.scale == 2.0


def test_warp_then_unwarp_recovers_a_smooth_image() -> None:
    yy, xx = np.mgrid[0:300, 0:400].astype(np.float64)
    image = np.sin(xx / 17.0) + np.cos(yy / 23.0)
    c = SoiCrop.from_points(
        [120, 140], [260, 180], width=160, height=128, margin_px=16, max_scale=1.0
    )
    crop = c.warp(image)
    xy = np.array([[64.0, 64.0], [10.0, 100.0]])
    uv = c.to_image(xy)
    expected = np.sin(uv[:, 0] / 17.0) + np.cos(uv[:, 1] / 23.0)
    np.testing.assert_allclose(
        crop[xy[:, 1].astype(int), xy[:, 0].astype(int)], expected, atol=0.02
    )
    back = c.unwarp(crop, image.shape)
    inside = c.unwarp(np.ones_like(crop), image.shape) > 0.999
    assert inside.sum() > 5000
    np.testing.assert_allclose(back[inside], image[inside], atol=0.05)


def test_same_points_refused() -> None:
    with pytest.raises(InputError, match="same point"):
        SoiCrop.from_points([5, 5], [5, 5])


def test_normalise_crop() -> None:
    from angio_deploy.pipeline.crop import normalise_crop

    x = normalise_crop(np.linspace(0, 1, 100).reshape(10, 10))
    assert abs(float(x.mean())) < 1e-6 and abs(float(x.std()) - 1) < 1e-5
    assert not normalise_crop(np.ones((4, 4))).any()


def test_crop_projection_composes_view_projection_and_crop_transform() -> None:
    from angio_deploy import kernels

    P = np.array([[1200.0, 0.0, 256.0, 10.0], [0.0, 1200.0, 256.0, -5.0], [0.0, 0.0, 1.0, 1000.0]])
    c = SoiCrop.from_points([100.0, 300.0], [350.0, 220.0])
    X = np.random.default_rng(1).normal(size=(20, 3)) * 30.0
    np.testing.assert_allclose(
        kernels.project(c.projection(P), X), c.to_crop(kernels.project(P, X)), atol=1e-9
    )
