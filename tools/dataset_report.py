"""Statistics of the synthetic dataset next to real angiograms, for docs/DATASET.md.

    python tools/dataset_report.py [--count 200] [--first-seed 2000000] [--out docs]

Generates ``count`` cases in memory (default: the first 200 seeds of the test split),
then writes docs/figures/dataset_*.png (histograms, image statistics, a montage of
synthetic views beside real frames) and prints markdown tables to paste into
docs/DATASET.md. Needs matplotlib (``pip install ".[docs]"``) and ../shared for the real
frames.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from angio_deploy.io.dicom.reader import read_xa_frames
from angio_deploy.synth.engine import GENERATOR_VERSION, generate_case
from angio_deploy.synth.realism import image_statistics
from angio_deploy.synth.views import ViewSpec

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _angles(spec: ViewSpec) -> tuple[float, float]:
    return spec.header.primary_angle_deg or 0.0, spec.header.secondary_angle_deg or 0.0


def collect(count: int, first_seed: int) -> dict[str, list]:
    from angio_deploy.geometry import separation_angle_deg

    rows: dict[str, list] = {
        k: []
        for k in (
            "ref_diam_start",
            "ref_diam_end",
            "percent_ds",
            "lesion_len",
            "n_lesions",
            "soi_len",
            "primary",
            "secondary",
            "separation",
            "overlap_any",
            "side_branch",
            "law",
            "ratio",
            "stats",
            "soi_cnr",
            "vessel",
            "tree",
            "size",
            "bits",
            "views",
        )
    }
    for i in range(count):
        c = generate_case(first_seed + i)
        m = c.meta
        ref = np.asarray(m["reference_radius_mm"]) * 2
        rows["ref_diam_start"].append(ref[0])
        rows["ref_diam_end"].append(ref[-1])
        rows["n_lesions"].append(len(m["stenoses"]))
        for les in m["stenoses"]:
            rows["percent_ds"].append(les["percent_ds"])
            rows["lesion_len"].append(les["length_mm"])
        rows["soi_len"].append(m["soi"]["length_mm"])
        for spec in c.views:
            a, b = _angles(spec)
            rows["primary"].append(a)
            rows["secondary"].append(b)
        rows["separation"].append(separation_angle_deg(c.views[0].header, c.views[1].header))
        rows["overlap_any"].append(max(v["overlap_fraction"] for v in m["views"]) > 0.0)
        rows["side_branch"].append(bool(m["side_branches"]))
        for b in m["bifurcations"]:
            rows["law"].append(b["law"])
        sem = c.rings.semi_axes
        rows["ratio"].extend((sem[:, 0] / sem[:, 1]).tolist())
        rows["vessel"].append(m["vessel"])
        rows["tree"].append(m["tree"])
        for k, v in enumerate(m["views"]):
            img = c.stored[k].astype(np.float64) / (2 ** c.bits_stored[k] - 1)
            rows["stats"].append(image_statistics(img))
            rows["soi_cnr"].append(v["stats"].get("soi_cnr", np.nan))
            rows["size"].append(img.shape[0])
            rows["bits"].append(c.bits_stored[k])
        if i < 6:
            rows["views"].append(
                [c.stored[k].astype(np.float64) / (2 ** c.bits_stored[k] - 1) for k in range(2)]
            )
    return rows


def real_frames() -> dict[str, list[np.ndarray]]:
    from PIL import Image

    out: dict[str, list[np.ndarray]] = {"clinical": [], "phantom": []}
    for folder in sorted((SHARED / "real_clinical").glob("projection_*")):
        for f in sorted(folder.glob("*.jpg")):
            out["clinical"].append(np.asarray(Image.open(f).convert("L"), dtype=np.float64) / 255.0)
    for f in sorted((SHARED / "real_xa").glob("*.dcm")):
        out["phantom"].extend(list(read_xa_frames(f).astype(np.float64)))
    return out


def _summary(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "-"
    p5, p50, p95 = np.percentile(v, [5, 50, 95])
    return f"{p50:.3g} [{p5:.3g}, {p95:.3g}]"


def stats_table(groups: dict[str, list[dict]]) -> str:
    lines = [
        "| statistic | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    getters = {
        "noise sigma (display units)": lambda s: s["noise"],
        "vessel CNR (dark-line, no mask)": lambda s: s["cnr"],
        "background spectrum slope": lambda s: s["spectrum_slope"],
        "intensity median": lambda s: s["histogram"]["median"],
        "intensity p5-p95 spread": lambda s: s["histogram"]["spread_p5_p95"],
    }
    for name, g in getters.items():
        lines.append(
            f"| {name} | "
            + " | ".join(_summary([g(s) for s in st]) for st in groups.values())
            + " |"
        )
    return "\n".join(lines)


def figures(rows, real, real_stats, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 3, figsize=(12, 10))
    ax = ax.ravel()
    ax[0].hist(rows["ref_diam_start"], bins=20, alpha=0.7, label="SOI start")
    ax[0].hist(rows["ref_diam_end"], bins=20, alpha=0.7, label="SOI end")
    ax[0].set_title("reference diameter (mm)")
    ax[0].legend()
    ax[1].hist(rows["percent_ds"], bins=20, range=(30, 90))
    ax[1].set_title("lesion %DS")
    ax[2].hist(rows["lesion_len"], bins=20, range=(5, 25))
    ax[2].set_title("lesion length (mm)")
    ax[3].hist(rows["soi_len"], bins=20, range=(20, 80))
    ax[3].set_title("SOI length (mm)")
    ax[4].scatter(rows["primary"], rows["secondary"], s=4)
    ax[4].set_xlabel("primary (LAO +)")
    ax[4].set_ylabel("secondary (CRA +)")
    ax[4].set_title("view angles (deg)")
    ax[5].hist(rows["separation"], bins=20)
    ax[5].set_title("view separation (deg)")
    ax[6].hist(rows["ratio"], bins=20, range=(1.0, 1.35))
    ax[6].set_title("lumen ellipse axis ratio (SOI rings)")
    ax[7].hist(rows["n_lesions"], bins=[-0.5, 0.5, 1.5, 2.5, 3.5])
    ax[7].set_title("lesions per SOI")
    ax[8].hist(rows["soi_cnr"], bins=20)
    ax[8].set_title("SOI vessel CNR (true mask)")
    fig.tight_layout()
    fig.savefig(out / "figures" / "dataset_histograms.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    groups = {"synthetic": rows["stats"], **real_stats}
    for name, st in groups.items():
        ax[0].hist([s["noise"] for s in st], bins=20, alpha=0.5, density=True, label=name)
        ax[1].hist([s["spectrum_slope"] for s in st], bins=20, alpha=0.5, density=True, label=name)
        h = np.mean([s["histogram"]["hist"] for s in st], axis=0)
        ax[2].plot(np.linspace(0, 1, len(h)), h, label=name)
    ax[0].set_title("noise sigma")
    ax[1].set_title("background spectrum slope")
    ax[2].set_title("mean intensity histogram")
    ax[0].legend()
    fig.tight_layout()
    fig.savefig(out / "figures" / "dataset_image_stats.png", dpi=80)
    plt.close(fig)

    from PIL import Image

    tiles = []
    for k, pair in enumerate(rows["views"][:4]):
        syn = [
            np.asarray(Image.fromarray((v * 255).astype(np.uint8)).resize((256, 256))) for v in pair
        ]
        rl = real["clinical"][(k * 19) % len(real["clinical"])]
        rl = np.asarray(Image.fromarray((rl * 255).astype(np.uint8)).resize((256, 256)))
        tiles.append(np.concatenate([rl, *syn], axis=1))
    Image.fromarray(np.concatenate(tiles, axis=0)).save(out / "figures" / "dataset_montage.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    rows = collect(args.count, args.first_seed)
    real = real_frames()
    real_stats = {k: [image_statistics(f) for f in v] for k, v in real.items() if v}
    figures(rows, real, real_stats, args.out)
    n = args.count
    laws = rows["law"]
    last = args.first_seed + n - 1
    finet = laws.count("finet") / len(laws)
    overlap = np.mean(rows["overlap_any"])
    big = np.mean(np.asarray(rows["size"]) == 1024)
    deep = np.mean(np.asarray(rows["bits"]) == 12)
    print(f"generator version {GENERATOR_VERSION}, seeds {args.first_seed}..{last}\n")
    print("| quantity | median [p5, p95] or share |\n|---|---|")
    print(f"| SOI reference diameter at start (mm) | {_summary(rows['ref_diam_start'])} |")
    print(f"| SOI reference diameter at end (mm) | {_summary(rows['ref_diam_end'])} |")
    print(f"| lesion %DS | {_summary(rows['percent_ds'])} |")
    print(f"| lesion length (mm) | {_summary(rows['lesion_len'])} |")
    print(f"| SOI length (mm) | {_summary(rows['soi_len'])} |")
    print(f"| view separation (deg) | {_summary(rows['separation'])} |")
    for k in (0, 1, 2):
        print(f"| SOIs with {k} lesions | {np.mean(np.asarray(rows['n_lesions']) == k):.0%} |")
    print(f"| cases with another vessel overlapping the SOI in >= 1 view | {overlap:.0%} |")
    print(f"| cases with a side-branch SOI | {np.mean(rows['side_branch']):.0%} |")
    print(f"| bifurcations following Finet / Murray | {finet:.0%} / {1 - finet:.0%} |")
    print(f"| right-coronary cases | {np.mean(np.asarray(rows['tree']) == 'right'):.0%} |")
    print(f"| 1024 x 1024 views / 12-bit views | {big:.0%} / {deep:.0%} |")
    vessels, counts = np.unique(rows["vessel"], return_counts=True)
    print(
        "| SOI vessel | "
        + ", ".join(f"{v} {c / n:.0%}" for v, c in zip(vessels, counts, strict=True))
        + " |"
    )
    print()
    n_real = {k: len(v) for k, v in real_stats.items()}
    print(f"image statistics: synthetic {len(rows['stats'])} views; real {json.dumps(n_real)}\n")
    print(
        stats_table({"synthetic": rows["stats"], **{f"real {k}": v for k, v in real_stats.items()}})
    )


if __name__ == "__main__":
    main()
