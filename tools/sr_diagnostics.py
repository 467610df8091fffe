"""Diagnostics behind the surface-refinement design (docs/RESULTS.md, "Surface refinement").

    python tools/sr_diagnostics.py residual [--data data_cache/sr/val]
    python tools/sr_diagnostics.py edges CKPT [--data data_cache/sr/val]
    python tools/sr_diagnostics.py variants CKPT [--data data_cache/sr/val]
    python tools/sr_diagnostics.py hd-location OUT_ROOT CASES_DIR [--limit 40] [--samples 3000]

- ``residual``: what MI's error is, ring by ring (SR cache, MI made with the true geometry,
  cases with MI within 2 mm of the truth). Each MI vertex's signed radial error (its
  nearest truth-surface point, along the ring's outward direction), then what is left
  after removing, per ring, the mean (a radius error), the first harmonic (a centre
  shift) and the second (an ellipse). Mean absolute values over vertices, then cases (mm).
- ``edges``: the ring-profile network's own targets on the cache: mean |error| (crop
  pixels) of the lumen edges of every ring in each view, MI's against the checkpoint's.
- ``variants``: the mesh's mean distance to the truth surface (mm) for choices of the 3-D
  step (ridge, smoothing), a second and third pass, and a ring-preserving update.
- ``hd-location``: for evaluated outputs (``angio-deploy evaluate --out-root``), where the
  Hausdorff distance is attained: the share of cases whose maximum lies within the first
  or last 5 rings, and HD with those rings left out (samples per surface: ``--samples``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from angio_deploy.topology import N_AROUND

# The training package lives at the repository root, beside tools/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _val(path: str):
    from training.surface.data import SRCache

    return SRCache(path).within(2.0)


def residual(args) -> None:
    cache = _val(args.data)
    th = np.linspace(0.0, 2.0 * np.pi, N_AROUND, endpoint=False)
    basis = np.stack([np.ones_like(th), np.cos(th), np.sin(th), np.cos(2 * th), np.sin(2 * th)], 1)
    rows = []
    for i in range(len(cache)):
        z = cache[i]
        mi = z["mi"].astype(np.float64).reshape(-1, N_AROUND, 3)
        tgt = z["truth_surface"].astype(np.float64).reshape(-1, N_AROUND, 3)
        out = mi - mi.mean(axis=1, keepdims=True)
        out /= np.linalg.norm(out, axis=2, keepdims=True)
        e = ((tgt - mi) * out).sum(axis=2)  # (rings, around)
        row = [np.abs(e).mean()]
        for k in (1, 3, 5):
            coef = np.linalg.lstsq(basis[:, :k], e.T, rcond=None)[0]
            row.append(np.abs(e - (basis[:, :k] @ coef).T).mean())
        rows.append(row)
    r = np.array(rows).mean(axis=0)
    print(f"{len(rows)} cases; mean |radial error| (mm): {r[0]:.4f}")
    print(f"  after removing each ring's mean (radius):      {r[1]:.4f}")
    print(f"  ... and its centre shift (first harmonic):     {r[2]:.4f}")
    print(f"  ... and an ellipse (second harmonic):          {r[3]:.4f}")


def _net(ckpt: str):
    import torch
    from training.surface.profile import load_profile_net

    torch.set_num_threads(2)
    return load_profile_net(ckpt)[0]


def _predict(net, rp) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(rp.features)).numpy().astype(np.float64)


def edges(args) -> None:
    from training.surface.profile import case_profiles, edge_targets

    net, cache = _net(args.ckpt), _val(args.data)
    before, after = [], []
    for i in range(len(cache)):
        z = cache[i]
        rp = case_profiles(z)
        t, p = edge_targets(rp, z["truth"]), _predict(net, rp)
        r = np.repeat(np.stack([0.5 * (rp.hi[v] - rp.lo[v]) for v in range(2)], 1), 2, axis=1)
        before.append(np.abs(t * r)[2:-2])
        after.append(np.abs((t - p) * r)[2:-2])
    b, a = np.concatenate(before).mean(0), np.concatenate(after).mean(0)
    for k, name in enumerate(("view A lower", "view A upper", "view B lower", "view B upper")):
        print(f"{name} edge: MI {b[k]:.3f} px -> {a[k]:.3f} px ({100 * (a[k] / b[k] - 1):+.1f} %)")


def variants(args) -> None:
    from training.surface.profile import case_profiles

    from angio_deploy.metrics.surface import point_mesh_distance
    from angio_deploy.pipeline.profile import refined_mesh, ring_profiles
    from angio_deploy.topology import ring_faces

    net, cache, faces = _net(args.ckpt), _val(args.data), ring_faces()
    steps = {
        "ridge 0.001, unsmoothed": dict(ridge=1e-3, smooth_rings=0.0),
        "ridge 0.01, unsmoothed": dict(ridge=1e-2, smooth_rings=0.0),
        "ridge 0.1, unsmoothed": dict(ridge=0.1, smooth_rings=0.0),
        "ridge 0.1, 2 rings (shipped)": dict(ridge=0.1, smooth_rings=2.0),
    }
    res: dict[str, list[float]] = {
        k: [] for k in ["MI", *steps, "ring-preserving", "2 passes", "3 passes"]
    }
    for i in range(len(cache)):
        z = cache[i]
        truth = z["truth"].astype(np.float64)

        def dist(v, truth=truth):
            return float(point_mesh_distance(v, truth, faces).mean())

        mi = z["mi"].astype(np.float64)
        res["MI"].append(dist(mi))
        rp = case_profiles(z)
        corr = _predict(net, rp)
        for name, kw in steps.items():
            res[name].append(dist(refined_mesh(rp, corr, z["reference"], **kw)[0]))
        v, c, r = refined_mesh(rp, corr, z["reference"])
        old = mi.reshape(-1, N_AROUND, 3)
        keep = c[:, None] + (r / rp.radius_mm)[:, None, None] * (old - rp.centres[:, None])
        res["ring-preserving"].append(dist(keep.reshape(-1, 3)))
        for k in (2, 3):
            q = ring_profiles([x.astype(np.float32) for x in z["crops"]], list(z["crop_P"]), v)
            v = refined_mesh(q, _predict(net, q), z["reference"])[0]
            res[f"{k} passes"].append(dist(v))
    print(f"{len(res['MI'])} cases; mean distance of the mesh to the truth surface (mm):")
    for name, d in res.items():
        print(f"  {name:32s} mean {np.mean(d):.4f}  median {np.median(d):.4f}")


def hd_location(args) -> None:
    from angio_deploy.io.mesh_io import read_ply
    from angio_deploy.metrics.surface import point_mesh_distance, sample_surface

    at_end, hd, hd_inner = [], [], []
    outs = sorted(p for p in Path(args.out_root).glob("case_*") if (p / "mesh.ply").is_file())
    for d in outs[: args.limit]:
        pv, pf, _ = read_ply(d / "mesh.ply")
        tv, tf, _ = read_ply(Path(args.cases) / d.name / "truth" / "mesh.ply")
        ps, ts = sample_surface(pv, pf, args.samples), sample_surface(tv, tf, args.samples)
        pts = np.concatenate([ps, ts])
        dist = np.concatenate([point_mesh_distance(ps, tv, tf), point_mesh_distance(ts, pv, pf)])
        centres = tv.reshape(-1, N_AROUND, 3).mean(axis=1)
        ring = np.argmin(((pts[:, None] - centres[None]) ** 2).sum(axis=2), axis=1)
        end = (ring < 5) | (ring >= len(centres) - 5)
        at_end.append(bool(end[np.argmax(dist)]))
        hd.append(dist.max())
        hd_inner.append(dist[~end].max())
    print(
        f"{len(hd)} cases: HD median {np.median(hd):.3f} mm; attained within 5 rings of an end "
        f"in {100 * np.mean(at_end):.0f} %; HD without those rings: median "
        f"{np.median(hd_inner):.3f} mm"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("residual")
    p.add_argument("--data", default="data_cache/sr/val")
    for name in ("edges", "variants"):
        p = sub.add_parser(name)
        p.add_argument("ckpt")
        p.add_argument("--data", default="data_cache/sr/val")
    p = sub.add_parser("hd-location")
    p.add_argument("out_root")
    p.add_argument("cases")
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--samples", type=int, default=3000)
    args = ap.parse_args(argv)
    {"residual": residual, "edges": edges, "variants": variants, "hd-location": hd_location}[
        args.cmd
    ](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
