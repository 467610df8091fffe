"""The real-image benchmark: SOI segmentation and the 2D path on real angiograms.

    python tools/real_seg_bench.py ../shared/data/real_seg [--models-dir DIR]
        [--segmenter network|frangi] [--tasks-per-image 8] [--json OUT.json]
        [--figure worst.png]

Tasks come from the hand-traced full-tree masks (:mod:`training.segmenter.real_tasks`,
docs/DATASET.md "Real-image benchmark"): start and end on a vessel's centreline 40-200 px
apart along it, the truth the vessel pixels along the path. Split by image: 1-30
``train`` (may be trained on), 31-40 ``val`` (never trained on).

Per task, through the runtime exactly as ``angio-deploy run`` does one view (SOI crop,
segmenter, :func:`angio_deploy.pipeline.centreline2d.extract_centreline`):

* ``dice``: probability >= 0.5 against the task's truth warped into the crop (crop px);
* ``connected``: one connected component of the segmentation lies within the end-point
  search radius of both clicks;
* ``path_ok``: the 2D centreline stage returns a path (no "vessel not found"), and
  ``on_vessel``: it does and at least 90 % of its points lie within 2 px of the task's
  truth (the path stays on the clicked vessel, no detour into another branch).

The summary per split gives the mean / median / p10 of Dice and the three shares.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import ndimage

from angio_deploy.errors import InputError
from angio_deploy.io.case import SegmentPoints
from angio_deploy.io.images import read_plain_image
from angio_deploy.pipeline.centreline2d import END_SEARCH_RADIUS_PX
from angio_deploy.pipeline.crop import SoiCrop
from angio_deploy.pipeline.mi import trace_view
from angio_deploy.pipeline.segmenters import FrangiSegmenter, OnnxSegmenter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the training package
from training.segmenter.real_tasks import (
    BENCH_TASKS_PER_IMAGE,
    TRAIN_IDS,
    VAL_IDS,
    make_tasks,
)

ON_VESSEL_SHARE = 0.9
ON_VESSEL_TOL_PX = 2.0


def split_of(image_id: int) -> str:
    return "train" if image_id in TRAIN_IDS else "val"


def load_real_image(path: Path) -> np.ndarray:
    """A real PNG as the runtime sees a plain image: float32 in [0, 1], 0 = black."""
    img = read_plain_image(path)
    return np.asarray(img, dtype=np.float32)


def dice(p: np.ndarray, t: np.ndarray) -> float:
    denom = int(p.sum()) + int(t.sum())
    return 2.0 * float((p & t).sum()) / denom if denom else 1.0


def connected(prob: np.ndarray, start: np.ndarray, end: np.ndarray) -> bool:
    """One component of prob >= 0.5 within the end search radius of both points (crop px)."""
    labels, n = ndimage.label(prob >= 0.5, structure=np.ones((3, 3)))
    if n == 0:
        return False
    yy, xx = np.mgrid[0 : prob.shape[0], 0 : prob.shape[1]]

    def near(p: np.ndarray) -> set[int]:
        d2 = (xx - p[0]) ** 2 + (yy - p[1]) ** 2
        return set(np.unique(labels[(d2 <= END_SEARCH_RADIUS_PX**2) & (labels > 0)]).tolist())

    return bool(near(start) & near(end))


def evaluate_task(seg, image: np.ndarray, task) -> dict:
    crop = SoiCrop.from_config(task.start, task.end, seg.crop)
    view = SimpleNamespace(name="a", image=image)
    prob = seg.segment([(view, crop)])[0]
    truth_c = crop.warp(task.truth.astype(np.float32)) > 0.5
    s_c, e_c = crop.to_crop(np.stack([task.start, task.end]))
    row = {
        "image": task.image_id,
        "task": task.index,
        "length_px": round(task.length_px, 1),
        "start": task.start.tolist(),
        "end": task.end.tolist(),
        "dice": dice(prob >= 0.5, truth_c),
        "connected": connected(prob, s_c, e_c),
        "path_ok": False,
        "on_vessel": False,
        "on_vessel_share": 0.0,
        "error": None,
    }
    try:
        c2d = trace_view(
            image,
            SegmentPoints(task.start, task.end),
            crop,
            prob,
            width_level=getattr(seg, "width_level", 0.5),
            view="a",
        )
    except InputError as exc:
        row["error"] = str(exc)
        return row
    row["path_ok"] = True
    near = ndimage.distance_transform_edt(~task.truth) <= ON_VESSEL_TOL_PX
    uv = np.rint(crop.to_image(c2d.points)).astype(int)
    H, W = near.shape
    ok = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    inside = np.zeros(len(uv), dtype=bool)
    inside[ok] = near[uv[ok, 1], uv[ok, 0]]
    row["on_vessel_share"] = float(inside.mean())
    row["on_vessel"] = bool(row["on_vessel_share"] >= ON_VESSEL_SHARE)
    row["bridged_share"] = c2d.bridged_share
    return row


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"tasks": 0}
    d = np.array([r["dice"] for r in rows])
    return {
        "tasks": len(rows),
        "images": len({r["image"] for r in rows}),
        "dice_mean": float(d.mean()),
        "dice_median": float(np.median(d)),
        "dice_p10": float(np.percentile(d, 10)),
        "connected": float(np.mean([r["connected"] for r in rows])),
        "path_ok": float(np.mean([r["path_ok"] for r in rows])),
        "on_vessel": float(np.mean([r["on_vessel"] for r in rows])),
    }


def run_benchmark(
    data_dir: Path, seg, *, tasks_per_image: int = BENCH_TASKS_PER_IMAGE, seed: int = 0, ids=None
) -> dict:
    """Per-task rows and per-split summaries of ``seg`` on the real set in ``data_dir``
    (``images/N.png``, ``masks/N.png``)."""
    rows = []
    for n in ids or (*TRAIN_IDS, *VAL_IDS):
        img_path = data_dir / "images" / f"{n}.png"
        mask_path = data_dir / "masks" / f"{n}.png"
        if not img_path.exists() or not mask_path.exists():
            continue
        image = load_real_image(img_path)
        mask = read_plain_image(mask_path) > 0.5
        for task in make_tasks(mask, str(n), n_tasks=tasks_per_image, seed=seed):
            row = evaluate_task(seg, image, task)
            row["split"] = split_of(n)
            rows.append(row)
    return {
        "summary": {s: summarise([r for r in rows if r["split"] == s]) for s in ("train", "val")},
        "tasks": rows,
        "construction": {"tasks_per_image": tasks_per_image, "seed": seed},
    }


def worst_figure(data_dir: Path, seg, result: dict, out: Path, n: int = 8) -> None:
    """A montage of the ``n`` worst validation tasks: image crop, truth, segmentation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((r for r in result["tasks"] if r["split"] == "val"), key=lambda r: r["dice"])
    rows = rows[:n]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 1.9 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows, strict=True):
        image = load_real_image(data_dir / "images" / f"{r['image']}.png")
        mask = read_plain_image(data_dir / "masks" / f"{r['image']}.png") > 0.5
        task = next(
            t for t in make_tasks(mask, r["image"], **_task_kwargs(result)) if t.index == r["task"]
        )
        crop = SoiCrop.from_config(task.start, task.end, seg.crop)
        prob = seg.segment([(SimpleNamespace(name="a", image=image), crop)])[0]
        panels = (crop.warp(image), crop.warp(task.truth.astype(np.float32)), prob)
        for ax, panel, title in zip(ax_row, panels, ("image", "truth", "probability"), strict=True):
            ax.imshow(panel, cmap="gray", vmin=0, vmax=1 if title != "image" else None)
            ax.set_axis_off()
            ax.set_title(
                f"{r['image']}/{r['task']} {title}"
                + (f" Dice {r['dice']:.2f}" if title == "probability" else ""),
                fontsize=7,
            )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _task_kwargs(result: dict) -> dict:
    c = result["construction"]
    return {"n_tasks": c["tasks_per_image"], "seed": c["seed"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--models-dir", default=None, help="model folder (default: shipped models)")
    ap.add_argument("--segmenter", choices=("network", "frangi"), default="network")
    ap.add_argument("--tasks-per-image", type=int, default=BENCH_TASKS_PER_IMAGE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None, help="montage of the worst val tasks")
    args = ap.parse_args(argv)
    if not (args.data_dir / "images").is_dir():
        print(f"{args.data_dir}: no images/ folder", file=sys.stderr)
        return 66
    seg = (
        OnnxSegmenter(folder=args.models_dir) if args.segmenter == "network" else FrangiSegmenter()
    )
    t0 = time.perf_counter()
    result = run_benchmark(args.data_dir, seg, tasks_per_image=args.tasks_per_image, seed=args.seed)
    result["segmenter"] = seg.report()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({"summary": result["summary"], "seconds": result["seconds"]}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if args.figure:
        worst_figure(args.data_dir, seg, result, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
