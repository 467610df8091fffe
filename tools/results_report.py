"""Tables and figures for docs/RESULTS.md from `angio-deploy evaluate --json` files.

    python tools/results_report.py docs/results --figures docs/figures \
        --worst-from /tmp/eval/network=network

Reads every ``*.json`` written by ``angio-deploy evaluate --json`` in the folder (the file
stem is the configuration's label) and prints Markdown: per configuration the number of
cases and failures, then per metric the mean, the median, the 5th, 25th, 75th and 95th
percentiles and the share of cases meeting the paper's MI-only value where one exists.
Failed cases (vessel not found, ...) have no metrics and are counted, not hidden. When
the configurations cover different numbers of cases, the comparison is repeated on the
cases all of them evaluated.
``--figures`` writes ``results_distributions.png`` (histograms of MAE, HD, Dice per
configuration). ``--worst-from OUT_ROOT=LABEL`` copies the overlays of LABEL's four worst
cases by MAE from that evaluation's ``--out-root`` into ``FIGURES/results_worst.png``.
``--only A,B,C`` keeps those configurations (in that order); ``--paired BASE`` adds, per
configuration, the change against BASE case by case (cases both evaluated without
failure): mean and median of each metric, the relative change of the mean, and the share
of cases that improved. ``--name`` prefixes the figure files (default ``results``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

#: Metric, better direction, the paper's MI-only value (METRICS.md reference points).
METRICS = (
    ("MAE", "lower", 0.3658),
    ("ASSD", "lower", None),
    ("HD", "lower", 1.8536),
    ("HD95", "lower", None),
    ("F@0.25", "higher", None),
    ("F@0.5", "higher", None),
    ("F_paper", "higher", 76.64),
    ("Dice", "higher", 0.8662),
    ("Jaccard", "higher", 0.7701),
    ("radius_mae", "lower", None),
    ("radius_bias", "both", None),
    ("DS_error", "both", None),
)


def load(folder: Path) -> dict[str, dict]:
    out = {}
    for p in sorted(folder.glob("*.json")):
        doc = json.loads(p.read_text())
        if "cases" in doc and "summary" in doc:
            out[p.stem] = doc
    return out


def values(doc: dict, metric: str) -> np.ndarray:
    v = [r.get(metric) for r in doc["cases"] if "error" not in r]
    a = np.array([float(x) for x in v if isinstance(x, (int, float))], dtype=float)
    return a[np.isfinite(a)]


def table(label: str, doc: dict) -> str:
    rows = doc["cases"]
    failed = sum("error" in r for r in rows)
    lines = [
        f"**{label}**: {len(rows)} cases, {failed} failed "
        f"({100.0 * failed / max(len(rows), 1):.1f} %)",
        "",
        "| metric | mean | median | p5 | p25 | p75 | p95 | n | meets paper MI |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, better, paper in METRICS:
        a = values(doc, m)
        if a.size == 0:
            continue
        q = np.percentile(a, [5, 25, 50, 75, 95])
        meets = ""
        if paper is not None:
            ok = a <= paper if better == "lower" else a >= paper
            meets = f"{100.0 * ok.mean():.0f} % (paper {paper:g})"
        lines.append(
            f"| {m} | {a.mean():.3f} | {q[2]:.3f} | {q[0]:.3f} | {q[1]:.3f} | {q[3]:.3f} | "
            f"{q[4]:.3f} | {a.size} | {meets} |"
        )
    errors: dict[str, int] = {}
    for r in rows:
        if "error" in r:
            msg = r["error"].split(":")[-1].strip()
            key = re.sub(r"\d+% of", "part of", msg).split("(")[0].strip()
            errors[key] = errors.get(key, 0) + 1
    if errors:
        lines += ["", "Failures: " + "; ".join(f"{n} x {e}" for e, n in sorted(errors.items()))]
    return "\n".join(lines)


def comparison(docs: dict[str, dict]) -> str:
    heads = ["MAE", "HD", "HD95", "ASSD", "Dice", "F_paper", "radius_mae"]
    lines = [
        "| configuration | cases | failed | " + " | ".join(f"{h} (median)" for h in heads) + " |",
        "|---|---:|---:|" + "---:|" * len(heads),
    ]
    for label, doc in docs.items():
        rows = doc["cases"]
        failed = sum("error" in r for r in rows)
        cells = []
        for h in heads:
            a = values(doc, h)
            cells.append(f"{np.median(a):.3f}" if a.size else "-")
        lines.append(f"| {label} | {len(rows)} | {failed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figures(docs: dict[str, dict], out: Path, name: str = "results") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (m, lim) in zip(axes, (("MAE", 6.0), ("HD", 10.0), ("Dice", 1.0)), strict=True):
        bins = np.linspace(0.0, lim, 41)
        for label, doc in docs.items():
            a = np.clip(values(doc, m), 0.0, lim)
            ax.hist(a, bins=bins, histtype="step", label=label, linewidth=1.4)
        ax.set_xlabel(m + (" (mm)" if m != "Dice" else ""))
        ax.set_ylabel("cases")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{name}_distributions.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def worst(
    doc: dict, out_root: Path, out: Path, n: int = 4, name: str = "results"
) -> tuple[Path, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = sorted((r for r in doc["cases"] if "MAE" in r), key=lambda r: -r["MAE"])[:n]
    fig, axes = plt.subplots(n, 2, figsize=(7, 3.5 * n))
    for k, r in enumerate(rows):
        for j, v in enumerate("ab"):
            im = Image.open(out_root / r["case"] / f"overlay_{v}.png")
            axes[k, j].imshow(im)
            axes[k, j].set_axis_off()
            dice = r.get("Dice_" + v, float("nan"))
            title = f"{r['case']} view {v}: MAE {r['MAE']:.2f} mm, Dice_{v} {dice:.2f}"
            axes[k, j].set_title(title, fontsize=8)
    fig.tight_layout()
    path = out / f"{name}_worst.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path, [r["case"] for r in rows]


def common(docs: dict[str, dict]) -> dict[str, dict]:
    """Every configuration restricted to the cases all of them evaluated (failures kept)."""
    names = set.intersection(*({r["case"] for r in d["cases"]} for d in docs.values()))
    return {
        k: {**d, "cases": [r for r in d["cases"] if r["case"] in names]} for k, d in docs.items()
    }


PAIRED = (
    ("MAE", "lower"),
    ("HD", "lower"),
    ("HD95", "lower"),
    ("ASSD", "lower"),
    ("Dice", "higher"),
    ("F_paper", "higher"),
    ("radius_mae", "lower"),
)


def paired(docs: dict[str, dict], base: str) -> str:
    """Each configuration against ``base`` on the cases both evaluated without failure."""
    ref = {r["case"]: r for r in docs[base]["cases"] if "error" not in r}
    lines = [
        f"Paired against **{base}** (cases both evaluated without failure): "
        "mean base -> mean config (relative change of the mean; share of cases improved)",
        "",
        "| configuration | cases | " + " | ".join(m for m, _ in PAIRED) + " |",
        "|---|---:|" + "---|" * len(PAIRED),
    ]
    for label, doc in docs.items():
        if label == base:
            continue
        rows = [(ref[r["case"]], r) for r in doc["cases"] if "error" not in r and r["case"] in ref]
        cells = []
        for m, better in PAIRED:
            pairs = np.array(
                [(float(b[m]), float(c[m])) for b, c in rows if m in b and m in c], dtype=float
            )
            pairs = pairs[np.isfinite(pairs).all(1)] if pairs.size else pairs
            if pairs.size == 0:
                cells.append("-")
                continue
            mb, mc = pairs.mean(0)
            gain = pairs[:, 1] < pairs[:, 0] if better == "lower" else pairs[:, 1] > pairs[:, 0]
            cells.append(
                f"{mb:.3f} -> {mc:.3f} ({100.0 * (mc - mb) / abs(mb):+.0f} %; "
                f"{100.0 * gain.mean():.0f} %)"
            )
        lines.append(f"| {label} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--figures", type=Path, default=None)
    ap.add_argument("--worst-from", default=None, metavar="OUT_ROOT=LABEL")
    ap.add_argument("--only", default=None, metavar="A,B,C")
    ap.add_argument("--paired", default=None, metavar="BASE")
    ap.add_argument("--name", default="results")
    args = ap.parse_args()
    docs = load(args.folder)
    if args.only:
        docs = {k: docs[k] for k in args.only.split(",")}
    print(comparison(docs))
    if args.paired:
        print()
        print(paired(docs, args.paired))
    if len({len(d["cases"]) for d in docs.values()}) > 1:
        print("\nOn the cases every configuration evaluated:\n")
        print(comparison(common(docs)))
    for label, doc in docs.items():
        print()
        print(table(label, doc))
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        print("\n" + str(figures(docs, args.figures, args.name)))
        if args.worst_from:
            root, label = args.worst_from.split("=", 1)
            path, cases = worst(docs[label], Path(root), args.figures, name=args.name)
            print(f"{path}: worst by MAE: {', '.join(cases)}")


if __name__ == "__main__":
    main()
