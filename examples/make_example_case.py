"""Make examples/example_case: a small two-view synthetic XA case with truth.

A placeholder made with a deliberately simple image model (one tapered, stenosed vessel,
Beer-Lambert attenuation of contrast along the chord through the lumen, smooth background,
Poisson noise). The synthetic angiography engine (`angio-deploy synth`) supersedes it.

    python examples/make_example_case.py [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydicom.uid import JPEGLSLossless

from angio_deploy import kernels
from angio_deploy.curves import arc_lengths
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.centreline_csv import write_centreline_csv
from angio_deploy.io.dicom.writer import write_xa
from angio_deploy.io.mesh_io import write_ply

SEED = 20261123
SIZE = 512
N_RINGS, N_AROUND = 100, 60
VIEWS = (  # (primary, secondary) degrees: LAO 40 / CAU 30 and RAO 30 / CRA 30
    (40.0, -30.0),
    (-30.0, 30.0),
)
SID, SOD, SPACING = 1000.0, 750.0, 0.35  # mm, mm, mm per pixel at the detector


def centreline(n: int = 400) -> np.ndarray:
    """A LAD-like 60 mm course over a sphere of radius 55 mm (the heart), world mm."""
    t = np.linspace(0.0, 1.0, n)
    theta = 0.35 + 1.1 * t  # polar angle along the anterior wall
    phi = -0.6 + 0.5 * t + 0.15 * np.sin(3.0 * t)
    r = 55.0
    x = r * np.sin(theta) * np.cos(phi) - 25.0
    y = -r * np.sin(theta) * np.sin(phi) - 20.0
    z = r * np.cos(theta) - 35.0
    return np.stack([x, y, z], axis=1)


def radius_profile(s: np.ndarray) -> np.ndarray:
    """Lumen radius (mm) along normalised arc length s: taper plus a 55% stenosis."""
    ref = 1.75 - 0.45 * s
    lesion = 0.55 * np.where(
        np.abs(s - 0.55) < 0.12, 0.5 * (1 + np.cos(np.pi * (s - 0.55) / 0.12)), 0
    )
    return ref * (1.0 - lesion)


def resample(points: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    s = arc_lengths(points)
    t = np.linspace(0.0, s[-1], n)
    out = np.stack([np.interp(t, s, points[:, k]) for k in range(3)], axis=1)
    return out, t / s[-1]


def chord_image(g: ViewGeometry, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Path length (mm) of each pixel's ray through the lumen, a union of cylinder pieces."""
    # Only pixels near the projected vessel can see it.
    uv_c = g.project(centres)
    lo = np.maximum(np.floor(uv_c.min(axis=0)) - 20, 0).astype(int)
    hi = np.minimum(np.ceil(uv_c.max(axis=0)) + 20, SIZE - 1).astype(int)
    cols, rows = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
    uv = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float)
    origin, dirs = g.backproject(uv)
    a = centres[:-1]
    axis = centres[1:] - a
    length = np.linalg.norm(axis, axis=1)
    axis = axis / length[:, None]
    rad = 0.5 * (radii[:-1] + radii[1:])
    chord = np.zeros(len(uv))
    for k in range(0, len(uv), 4096):
        d, w = dirs[k : k + 4096], origin[k : k + 4096, None, :] - a[None]
        # Closest approach of each ray to each segment's axis: distance, position, angle.
        n = np.cross(d[:, None, :], axis[None])
        sin = np.linalg.norm(n, axis=2)
        dist = np.abs(np.einsum("rsk,rsk->rs", w, n)) / np.maximum(sin, 1e-9)
        b = d @ axis.T
        mu = (np.einsum("rsk,sk->rs", w, axis) - b * np.einsum("rk,rsk->rs", d, w)) / np.maximum(
            1.0 - b**2, 1e-12
        )
        hit = (mu >= -0.5) & (mu <= length[None] + 0.5) & (dist < rad[None])
        c = 2.0 * np.sqrt(np.maximum(rad**2 - dist**2, 0.0)) / np.maximum(sin, 0.2)
        chord[k : k + 4096] = np.where(hit, c, 0.0).max(axis=1)
    out = np.zeros((SIZE, SIZE))
    out[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = chord.reshape(cols.shape)
    return out


def render(g: ViewGeometry, centres, radii, rng) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    tissue = 1.2 + 0.5 * np.exp(-((xx - 0.6) ** 2 + (yy - 0.55) ** 2) / 0.08) + 0.2 * yy
    mu_iodine = 0.35  # 1/mm, diluted contrast at the effective energy
    photons = 2000.0 * np.exp(-tissue - mu_iodine * chord_image(g, centres, radii))
    counts = rng.poisson(photons).astype(float)
    log_img = -np.log(np.maximum(counts, 1) / 2000.0)
    display = 1.0 - (log_img - 0.8) / 2.6  # dark vessels on a bright background
    return np.clip(np.round(display * 255), 0, 255).astype(np.uint8)


def main(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    dense = centreline()
    centres, s = resample(dense, N_RINGS)
    radii = radius_profile(s)
    geometries = [
        ViewGeometry.from_angles(a, b, SID, SOD, (SPACING, SPACING), SIZE, SIZE) for a, b in VIEWS
    ]
    # Ring vertex order as the pipeline makes it: first frame normal from view A's ray.
    ref = geometries[0].direction
    vertices, faces = kernels.tube_mesh(centres, radii, n_around=N_AROUND, reference=ref)
    fine, fs = resample(dense, 600)
    fine_r = radius_profile(fs)

    (out / "truth").mkdir(parents=True, exist_ok=True)
    views = []
    for k in range(len(VIEWS)):
        name = "ab"[k]
        g = geometries[k]
        image = render(g, fine, fine_r, rng)
        write_xa(
            out / f"view_{name}.dcm",
            image,
            g,
            transfer_syntax=JPEGLSLossless,
            uid_seed=f"example-{SEED}-{name}",
        )
        _, capped = kernels.tube_mesh(centres, radii, n_around=N_AROUND, caps=True, reference=ref)
        mask = kernels.rasterise_silhouette(g.P, vertices, capped, SIZE, SIZE)
        from PIL import Image

        Image.fromarray(mask * 255).save(out / "truth" / f"mask_{name}.png")
        ends = g.project(centres[[0, -1]])
        click = rng.normal(0.0, 1.0, size=(2, 2))
        start, end = (np.round(ends + click, 1)).tolist()
        views.append({"image": f"view_{name}.dcm", "soi": {"start": start, "end": end}})
    doc = {"format": "angio-case/1", "id": "example-lad-55pct", "views": views}
    (out / "case.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    write_ply(out / "truth" / "mesh.ply", vertices, faces)
    write_centreline_csv(out / "truth" / "centreline.csv", centres, radii)
    ds = 100.0 * (1.0 - radii.min() / (1.75 - 0.45 * s[np.argmin(radii)]))
    meta = {
        "generator": "examples/make_example_case.py",
        "seed": SEED,
        "soi": {"length_mm": _length(centres)},
        "stenoses": [
            {
                "position_from_start_mm": 0.55 * _length(centres),
                "length_mm": 0.24 * _length(centres),
                "percent_ds": round(ds, 1),
            }
        ],
        "reference_radius_mm": (1.75 - 0.45 * s).tolist(),
        # The same fields the synthetic engine writes (the headers are exact here).
        "views": [
            {
                "name": n,
                "true": {"projection_matrix": g.P.tolist()},
                "header": {"projection_matrix": g.P.tolist()},
            }
            for n, g in zip("ab", geometries, strict=True)
        ],
    }
    (out / "truth" / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _length(p: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "example_case"
    main(target)
    print(f"wrote {target}")
