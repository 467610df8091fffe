"""Shared fixtures: small case folders built on the fly (PNG or DICOM views)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
REAL_XA = REPO.parent / "shared" / "data" / "real_xa"

#: Two views 60 degrees apart, as a core lab would acquire a LAD.
VIEW_ANGLES = ((30.0, 20.0), (-30.0, 25.0))
SIZE = 256


def geometry_dict(primary: float, secondary: float) -> dict[str, Any]:
    return {
        "primary_angle_deg": primary,
        "secondary_angle_deg": secondary,
        "sid_mm": 1000.0,
        "sod_mm": 750.0,
        "pixel_spacing_mm": [0.6, 0.6],
    }


def _view_image(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 180, dtype=np.uint8)
    img[size // 2 - 2 : size // 2 + 2, 20 : size - 20] = 60
    return np.clip(img + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)


def _write_case_json(case: Path, doc: dict[str, Any], edits: dict[str, Any]) -> None:
    """Apply edits (a callable edits the document, a value sets a top-level key), write."""
    for key, value in edits.items():
        if callable(value):
            value(doc)
        else:
            doc[key] = value
    (case / "case.json").write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture
def png_case(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a valid two-view PNG case folder; keyword overrides edit case.json."""

    def make(**edits: Any) -> Path:
        case = tmp_path / "case"
        case.mkdir(exist_ok=True)
        views = []
        for k, (a, b) in enumerate(VIEW_ANGLES):
            name = f"view_{'ab'[k]}.png"
            Image.fromarray(_view_image(SIZE, k)).save(case / name)
            views.append(
                {
                    "image": name,
                    "geometry": geometry_dict(a, b),
                    "soi": {"start": [40.0, 128.0], "end": [210.0, 126.5]},
                }
            )
        doc: dict[str, Any] = {"format": "angio-case/1", "id": "png-case", "views": views}
        _write_case_json(case, doc, edits)
        return case

    return make


@pytest.fixture
def dicom_case(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a valid two-view XA DICOM case; ``metadata`` edits view A's tags."""
    from angio_deploy.geometry import ViewGeometry
    from angio_deploy.io.dicom.writer import write_xa

    def make(metadata: dict[str, Any] | None = None, frames: int = 1, **edits: Any) -> Path:
        case = tmp_path / "dcase"
        case.mkdir(exist_ok=True)
        views = []
        for k, (a, b) in enumerate(VIEW_ANGLES):
            g = ViewGeometry.from_angles(a, b, 1000.0, 750.0, (0.6, 0.6), SIZE, SIZE)
            stack = np.stack([_view_image(SIZE, k + 10 * f) for f in range(frames)])
            name = f"view_{'ab'[k]}.dcm"
            write_xa(
                case / name,
                stack if frames > 1 else stack[0],
                g,
                metadata=metadata if k == 0 else None,
                uid_seed=f"test-{k}",
            )
            views.append({"image": name, "soi": {"start": [40.0, 128.0], "end": [210.0, 126.5]}})
        doc: dict[str, Any] = {"format": "angio-case/1", "views": views}
        _write_case_json(case, doc, edits)
        return case

    return make


def _draw_tree(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small vessel tree (trunk and two branches, 3-6 px wide) and its angiogram:
    dark vessels on a bright, noisy background, 8-bit."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = np.zeros((size, size), dtype=bool)

    def segment(p, q, half_width):
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = q - p
        t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / (d @ d), 0.0, 1.0)
        dist = np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1])
        return dist <= half_width

    trunk = ((30, 150), (270, 150))
    mask |= segment(*trunk, 3.0)
    mask |= segment((110, 150), (200, 40), 2.2)
    mask |= segment((180, 150), (250, 260), 2.2)
    rng = np.random.default_rng(seed)
    img = 190.0 - 90.0 * mask + rng.normal(0.0, 4.0, mask.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="session")
def real_seg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for ../shared/data/real_seg: images/N.png and masks/N.png for one
    training id (1) and one validation id (31), 300 x 300 like the real set."""
    root = tmp_path_factory.mktemp("real_seg")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for n in (1, 31):
        img, mask = _draw_tree(300, n)
        Image.fromarray(img).save(root / "images" / f"{n}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{n}.png")
    return root
