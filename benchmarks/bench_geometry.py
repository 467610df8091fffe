"""Time every native geometry kernel against its numpy twin at pipeline sizes.

Run from the repository root (the package installed, native core built):

    .venv/bin/python benchmarks/bench_geometry.py

Prints a markdown table: median wall time per call (ms) over repeated calls, numpy twin
vs native, and the speed-up. Inputs are synthetic but realistic: two C-arm views 64
degrees apart, a 100 x 60 tube around a ~40 mm centreline, 512 x 512 images, and for the
path lengths 150 mm vessels of 300 segments (0.5 mm) tapering from 1-2.5 to 0.5-1 mm.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy.geometry import ViewGeometry

Case = tuple[str, str, Callable[[kernels.Kernels], Any]]


def _median_ms(fn: Callable[[], Any], budget_s: float, min_repeats: int = 5) -> float:
    """Median wall time (ms) of fn() over repeats filling about ``budget_s`` seconds."""
    fn()  # warm-up: first-touch allocations, lazy imports
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or (
        time.perf_counter() - start < budget_s and len(times) < 2000
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _curve(t: np.ndarray) -> np.ndarray:
    """A smooth coronary-like centreline (N, 3) mm, ~40 mm long."""
    return np.stack(
        [36.0 * t - 18.0, 8.0 * np.sin(2.5 * t) - 4.0, 6.0 * np.cos(3.0 * t) + 5.0 * t * t], 1
    )


def _vessel(rng: np.random.Generator, r0: float, r1: float):
    """A smooth random 150 mm vessel: 301 centres 0.5 mm apart, radius r0 -> r1 mm."""
    d = np.cumsum(rng.normal(0.0, 0.04, (301, 3)), axis=0) + rng.normal(0.0, 1.0, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    c = np.cumsum(0.5 * d, axis=0)
    c -= c.mean(axis=0)
    r = np.linspace(r0, r1, 301)
    major = np.cross(np.gradient(c, axis=0), [0.3, 0.5, 0.8])
    return c, np.stack([r, 0.8 * r], 1), major


def build_cases(seed: int = 0) -> list[Case]:
    """The benchmark cases: (function, size description, call on a backend)."""
    rng = np.random.default_rng(seed)
    size = 512
    v1 = ViewGeometry.from_angles(30.0, 20.0, 1000.0, 750.0, (0.3, 0.3), size, size)
    v2 = ViewGeometry.from_angles(-40.0, 25.0, 1000.0, 750.0, (0.3, 0.3), size, size)
    Ps = np.stack([v1.P, v2.P])
    ref = kernels.get_backend("numpy")

    centres = _curve(np.linspace(0.0, 1.0, 100))
    radii = np.full(100, 1.5)
    V, F = ref.tube_mesh(centres, radii, n_around=60)

    uv_pix = rng.uniform(0.0, size - 1.0, (6000, 2))
    X100 = rng.normal(0.0, 30.0, (100, 3))
    uv1 = v1.project(X100) + rng.normal(0.0, 0.5, (100, 2))
    uv2 = v2.project(X100) + rng.normal(0.0, 0.5, (100, 2))

    t = np.linspace(0.0, 1.0, 300)
    line1 = v1.project(_curve(t)) + rng.normal(0.0, 0.3, (300, 2))
    line2 = v2.project(_curve(t)) + rng.normal(0.0, 0.3, (300, 2))

    maps = [
        rng.standard_normal((s, s, c)).astype(np.float32)
        for s, c in ((256, 16), (128, 32), (64, 64), (32, 128))
    ]
    uv_vert = v1.project(V)

    vessel, semi, major = _vessel(np.random.default_rng(seed), 2.0, 1.0)
    tree = [_vessel(rng, float(r0), 0.5) for r0 in np.linspace(2.5, 1.0, 10)]

    def render_tree(k: kernels.Kernels) -> np.ndarray:
        img = np.zeros((size, size))
        for c, ax, md in tree:
            img += k.tube_path_lengths(v1.P, c, ax, md, size, size)
        return img

    return [
        ("project", "6000 vertices x 2 views", lambda k: k.project(Ps, V)),
        ("backproject", "6000 pixels", lambda k: k.backproject(v1.P, uv_pix)),
        (
            "triangulate",
            "100 points, 3 GN iterations",
            lambda k: k.triangulate(v1.P, v2.P, uv1, uv2),
        ),
        (
            "correspond_centrelines",
            "300 + 300 px points -> 100 x 3D",
            lambda k: k.correspond_centrelines(v1.P, v2.P, line1, line2, n_out=100),
        ),
        ("tube_mesh", "100 rings x 60", lambda k: k.tube_mesh(centres, radii, n_around=60)),
        (
            "sample_bilinear",
            "6000 vertices, 4 float32 maps (240 ch)",
            lambda k: k.sample_bilinear(maps, uv_vert, size, size),
        ),
        (
            "rasterise_silhouette",
            "100 x 60 tube (11,880 tris) -> 512 x 512",
            lambda k: k.rasterise_silhouette(v1.P, V, F, size, size),
        ),
        (
            "tube_path_lengths",
            "150 mm vessel, 300 segments -> 512 x 512, s=1",
            lambda k: k.tube_path_lengths(v1.P, vessel, semi, major, size, size),
        ),
        (
            "tube_path_lengths",
            "150 mm vessel, 300 segments -> 512 x 512, s=2",
            lambda k: k.tube_path_lengths(v1.P, vessel, semi, major, size, size, supersample=2),
        ),
        (
            "tube_path_lengths",
            "10 such vessels (r 2.5-0.5 mm), 10 calls summed, s=1",
            render_tree,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of repeats per function and backend"
    )
    args = parser.parse_args(argv)
    if "native" not in kernels.available_backends():
        raise SystemExit("the native core is not built; install the package first")
    native, ref = kernels.get_backend("native"), kernels.get_backend("numpy")

    rows = ["| function | size | numpy ms | native ms | speed-up |", "|---|---|---:|---:|---:|"]
    for name, size, call in build_cases():
        t_ref = _median_ms(lambda call=call: call(ref), args.budget)
        t_nat = _median_ms(lambda call=call: call(native), args.budget)
        rows.append(f"| {name} | {size} | {t_ref:.3f} | {t_nat:.4f} | {t_ref / t_nat:.0f}x |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
