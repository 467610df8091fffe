"""Per-lesion radius errors of one or more evaluated configurations (docs/RESULTS.md).

    python tools/lesion_report.py data_cache/test500 /tmp/results/mi=MI /tmp/results/sr=SR

Each ``OUT_ROOT=LABEL`` is an ``angio-deploy evaluate --out-root`` folder (one sub-folder
per case holding ``mesh.ply``). For every stenosis in the cases' ``truth/meta.json``, on
the rings inside the lesion (``metrics.radius.lesion_window``): the minimum lumen radius
error (predicted minus true smallest equivalent radius, mm), the mean absolute radius
error (mm) and the %DS error (percentage points, against the truth's reference radius),
grouped by severity (true %DS) and by the lesion's eccentricity (the engine's
``eccentricity``: 0 concentric, 1 fully eccentric). Cases a configuration failed on are
left out of that configuration's rows and counted.

``--limit N`` takes the first N cases (every configuration on the same cases).
``--figure PNG --base LABEL --against LABEL`` draws the lesions where AGAINST improves most
on BASE (abs radius error): radius profiles (truth, both configurations, lesion window
shaded) beside AGAINST's overlay of view A.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from angio_deploy.evaluate import find_cases
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.metrics.radius import lesion_window, percent_ds, ring_radii

SEVERITY = ((30.0, 50.0), (50.0, 70.0), (70.0, 101.0))
ECCENTRICITY = ((0.0, 0.34), (0.34, 0.67), (0.67, 1.01))


def lesions(case_dir: Path) -> list[dict]:
    meta = json.loads((case_dir / "truth" / "meta.json").read_text())
    truth, _, _ = read_ply(case_dir / "truth" / "mesh.ply")
    rt = ring_radii(truth)
    ref = np.asarray(meta["reference_radius_mm"], dtype=float)
    L = float(meta["soi"]["length_mm"])
    out = []
    for st in meta.get("stenoses") or []:
        w = lesion_window(len(rt), L, float(st["position_from_start_mm"]), float(st["length_mm"]))
        out.append(
            {
                "window": w,
                "rt": rt,
                "ref": ref,
                "ds_true": float(np.max(percent_ds(rt[w], ref[w]))),
                "eccentricity": float(st.get("eccentricity", 0.0)),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases_dir")
    ap.add_argument("configs", nargs="+", metavar="OUT_ROOT=LABEL")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--base", default=None)
    ap.add_argument("--against", default=None)
    args = ap.parse_args()
    configs = [c.split("=", 1) for c in args.configs]
    rows: dict[str, list[dict]] = {label: [] for _, label in configs}
    missing = {label: 0 for _, label in configs}
    profiles: dict[tuple[str, int], dict] = {}
    for case_dir in find_cases(args.cases_dir)[: args.limit]:
        les = lesions(case_dir)
        if not les:
            continue
        for root, label in configs:
            mesh = Path(root) / case_dir.name / "mesh.ply"
            if not mesh.is_file():
                missing[label] += len(les)
                continue
            rp = ring_radii(read_ply(mesh)[0])
            for k, le in enumerate(les):
                prof = profiles.setdefault((case_dir.name, k), {"lesion": le, "root": {}})
                prof[label] = rp
                prof["root"][label] = Path(root)
                w, rt, ref = le["window"], le["rt"], le["ref"]
                rows[label].append(
                    {
                        "mlr_error": float(rp[w].min() - rt[w].min()),
                        "abs_radius_error": float(np.abs(rp[w] - rt[w]).mean()),
                        "ds_error": float(np.max(percent_ds(rp[w], ref[w])) - le["ds_true"]),
                        "ds_true": le["ds_true"],
                        "eccentricity": le["eccentricity"],
                    }
                )
    print(
        "| configuration | group | lesions | MLR error mm (mean) | abs radius error mm "
        "| %DS error (mean) | abs %DS error |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for _, label in configs:
        r = rows[label]
        groups = [("all", r)]
        groups += [
            (f"%DS {a:.0f}-{min(b, 100):.0f}", [x for x in r if a <= x["ds_true"] < b])
            for a, b in SEVERITY
        ]
        groups += [
            (
                f"eccentricity {a:.2f}-{min(b, 1.0):.2f}",
                [x for x in r if a <= x["eccentricity"] < b],
            )
            for a, b in ECCENTRICITY
        ]
        for name, g in groups:
            if not g:
                continue
            m = {
                k: np.array([x[k] for x in g])
                for k in ("mlr_error", "abs_radius_error", "ds_error")
            }
            print(
                f"| {label} | {name} | {len(g)} | {m['mlr_error'].mean():+.3f} | "
                f"{m['abs_radius_error'].mean():.3f} | {m['ds_error'].mean():+.1f} | "
                f"{np.abs(m['ds_error']).mean():.1f} |"
            )
    if args.figure:
        cases = figure(profiles, args.base, args.against, args.figure)
        print(f"\n{args.figure}: {', '.join(cases)}")
    if any(missing.values()):
        print(
            "\nlesions without a prediction (failed cases): "
            + ", ".join(f"{k} {v}" for k, v in missing.items())
        )


def figure(profiles: dict, base: str, against: str, path: Path, n: int = 4) -> list[str]:
    """Radius profiles and overlays of the n lesions AGAINST improves most on BASE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    def err(p, label):
        w = p["lesion"]["window"]
        return float(np.abs(p[label][w] - p["lesion"]["rt"][w]).mean())

    both = [(key, p) for key, p in profiles.items() if base in p and against in p]
    both.sort(key=lambda kp: err(kp[1], against) - err(kp[1], base))
    chosen = both[:n]
    fig, axes = plt.subplots(len(chosen), 2, figsize=(11, 3.2 * len(chosen)), squeeze=False)
    for row, ((case, _), p) in enumerate(chosen):
        le = p["lesion"]
        w = np.arange(len(le["rt"]))[le["window"]]
        ax = axes[row, 0]
        ax.axvspan(w.min(), w.max(), color="0.9")
        ax.plot(le["rt"], "k-", label="truth")
        ax.plot(p[base], "b--", label=f"{base} ({err(p, base):.2f} mm)")
        ax.plot(p[against], "r-", label=f"{against} ({err(p, against):.2f} mm)")
        ax.set_title(
            f"{case}: %DS {le['ds_true']:.0f}, eccentricity {le['eccentricity']:.2f}", fontsize=9
        )
        ax.set_xlabel("ring")
        ax.set_ylabel("equivalent radius (mm)")
        ax.legend(fontsize=7)
        axes[row, 1].imshow(Image.open(p["root"][against] / case / "overlay_a.png"))
        axes[row, 1].set_axis_off()
        axes[row, 1].set_title(f"{against}, view A", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [case for (case, _), _ in chosen]


if __name__ == "__main__":
    main()
