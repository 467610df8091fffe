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
    from angio_deploy.io.dicom_xa import write_xa

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
