"""Generator version 2 (issue 10, part 2): opt-in, deterministic, different from version 1,
higher vessel contrast, small views and circular fields; version 1 unchanged."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.synth.engine import generate_case
from angio_deploy.synth.profiles import GENERATOR_VERSIONS, PROFILES, generator_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

#: sha256 of both views' stored pixels and SOI masks, computed with the engine at commit
#: c6fa220 (before generator versions existed): version 1 must keep producing them.
V1_PIXEL_SHA256 = {
    2000000: "29db38689c93c37ae9762fbac264ab2c43a722460cebbd7f859c94081f6253d8",
    7: "5061da9c04cccc5abec2e30a8cad85539dfd6cf56f1270ecc2e6929f0e3e6d49",
}


def _pixel_digest(case) -> str:
    h = hashlib.sha256()
    for s in case.stored:
        h.update(s.tobytes())
    for m in case.masks:
        h.update(m.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("seed", sorted(V1_PIXEL_SHA256))
def test_v1_unchanged(seed: int) -> None:
    case = generate_case(seed)
    assert _pixel_digest(case) == V1_PIXEL_SHA256[seed]
    assert case.meta["generator_version"] == "1"
    assert generate_case(seed, version="1").stored[0].tobytes() == case.stored[0].tobytes()


def test_versions_known() -> None:
    assert tuple(PROFILES) == GENERATOR_VERSIONS == ("1", "2")
    with pytest.raises(ValueError, match="unknown generator version"):
        generator_profile("9")


def test_v2_deterministic_and_different() -> None:
    a = generate_case(5, version=2)
    b = generate_case(5, version="2")
    assert _pixel_digest(a) == _pixel_digest(b)
    assert a.meta["generator_version"] == "2"
    assert a.meta["anatomy"]["generator_version"] == 3
    v1 = generate_case(5)
    assert _pixel_digest(v1) != _pixel_digest(a)


def test_v2_sizes_and_circular_fields() -> None:
    sizes, circles = [], 0
    for seed in range(12):
        case = generate_case(seed, version=2)
        sizes.append(case.stored[0].shape[0])
        for view in case.meta["views"]:
            circles += view["imaging"]["collimation"].get("circle", 0.0) > 0
    assert min(sizes) <= 400 and min(sizes) >= 300
    assert 0.15 <= circles / 24 <= 0.7


def test_v2_soi_inside_circular_field() -> None:
    from angio_deploy.synth.engine import BORDER_MARGIN_PX
    from angio_deploy.synth.truth import segment_slice

    checked = 0
    for seed in range(12):
        case = generate_case(seed, version=2)
        a = case.anatomy
        pts = segment_slice(a.vessels[a.soi.vessel], a.soi.s_start_mm, a.soi.s_end_mm)["centres"]
        for spec, view in zip(case.views, case.meta["views"], strict=True):
            c = view["imaging"]["collimation"].get("circle", 0.0)
            if c <= 0:
                continue
            g = spec.true
            uv = g.project(pts)
            r = np.hypot(uv[:, 0] - (g.width - 1) / 2, uv[:, 1] - (g.height - 1) / 2)
            assert r.max() + BORDER_MARGIN_PX <= c * 0.5 * min(g.width, g.height) + 1e-6
            checked += 1
    assert checked > 0


def test_v2_contrast_higher_than_v1() -> None:
    from tools.appearance_stats import contrast_by_width, field_of_view, local_background, skeleton

    from angio_deploy.synth.truth import lumen_mask, segment_slice

    def soi_contrast(case) -> float:
        a = case.anatomy
        piece = segment_slice(a.vessels[a.soi.vessel], 0.0, a.vessels[a.soi.vessel].length_mm)
        vals = []
        for k, spec in enumerate(case.views):
            img = case.stored[k].astype(np.float32) / ((1 << case.bits_stored[k]) - 1)
            mask = lumen_mask(spec.true, [piece]).astype(bool)
            fov = field_of_view(img)
            bg = local_background(img, fov.mask & ~mask)
            c = contrast_by_width(img, mask, skeleton(mask), bg)
            vals += [
                b["contrast"] for b in c.values() if b and np.isfinite(b.get("contrast", np.nan))
            ]
        return float(np.median(vals))

    seeds = range(20, 28)
    v1 = [soi_contrast(generate_case(s, size=512)) for s in seeds]
    v2 = [soi_contrast(generate_case(s, size=512, version=2)) for s in seeds]
    assert np.median(v2) > 1.3 * np.median(v1)
