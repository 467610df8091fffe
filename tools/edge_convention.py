"""Where the lumen edge lies: the network's, the masks' and the image's own, real and synthetic.

    python tools/edge_convention.py ../shared/data/real_seg [--synthetic 40]
        [--models-dir DIR] [--json OUT.json]

A Dice against hand-traced masks mixes two things: finding the right vessel, and putting
its edge where the tracer did. On the real-image benchmark (tools/real_seg_bench.py, same
tasks) this tool separates them, per split (real ``train`` 1-30, real ``val`` 31-40) and
on ``--synthetic N`` validation-split cases (seeds 1000000.., both views, their exact
truth masks):

* widths along the network's own 2D centreline (crop px, points in a gap or within 8 px
  of an end left out): the network's (at its width level), the mask's (level 0.5 of the
  mask warped into the crop), and the image's: the full width at half depth of the dark
  profile across the vessel (:func:`half_depth_widths`), which depends on the image alone.
  Reported as medians of per-point ratios; the synthetic truth's ratio of half-depth to
  true width says where a real lumen edge lies against the image profile, for images like
  ours;
* Dice of the segmentation (>= 0.5) as the benchmark scores it, of that segmentation
  eroded by 0.5 and 1 image px, and of the mask grown or shrunk by 1 image px against
  itself: the Dice a one-pixel disagreement about the edge costs on vessels this wide.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import ndimage

from angio_deploy.errors import InputError
from angio_deploy.io.case import SegmentPoints
from angio_deploy.pipeline.centreline2d import edge_distances, path_normals
from angio_deploy.pipeline.crop import SoiCrop
from angio_deploy.pipeline.mi import trace_view
from angio_deploy.pipeline.segmenters import OnnxSegmenter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools and training
from tools.real_seg_bench import dice, load_real_image, split_of
from training.segmenter.real_tasks import (
    BENCH_TASKS_PER_IMAGE,
    TRAIN_IDS,
    VAL_IDS,
    make_tasks,
)

#: Points this close (px along the path) to an end are left out: the normals there run
#: along the mask's end.
END_SKIP_PX = 8
PROFILE_HALF_PX = 40.0
PROFILE_STEP_PX = 0.25
ERODE_IMAGE_PX = (0.5, 1.0)


def half_depth_widths(
    image: np.ndarray, points: np.ndarray, normals: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """Full width (px) at half depth of the dark profile of ``image`` across each point.

    The background is the median of the profile between 0.9 and 1.6 times the point's
    ``widths`` (+3 px) from it, the depth the darkest sample within a quarter width; the
    width runs between the half-depth crossings found walking out from the point. NaN
    where the profile has no depth or a crossing lies beyond the profile."""
    offs = np.arange(-PROFILE_HALF_PX, PROFILE_HALF_PX + PROFILE_STEP_PX, PROFILE_STEP_PX)
    q = points[:, None, :] + offs[None, :, None] * normals[:, None, :]
    v = ndimage.map_coordinates(
        np.asarray(image, dtype=np.float64), [q[..., 1], q[..., 0]], order=1, mode="nearest"
    )
    a = np.abs(offs)[None, :]
    w = np.maximum(np.asarray(widths, dtype=np.float64), 3.0)[:, None]
    outer = (a > 0.9 * w) & (a < 1.6 * w + 3.0)
    bg = np.array(
        [np.median(row[m]) if m.any() else np.nan for row, m in zip(v, outer, strict=True)]
    )
    lo = np.where(a < 0.25 * w, v, np.inf).min(axis=1)
    level = 0.5 * (bg + lo)
    c = len(offs) // 2
    out = np.zeros(len(points))
    for side in (v[:, c:], v[:, c::-1]):
        above = side >= level[:, None]
        k = above.argmax(axis=1)
        found = above.any(axis=1) & (k > 0)
        k = np.maximum(k, 1)
        v0 = side[np.arange(len(k)), k - 1]
        v1 = side[np.arange(len(k)), k]
        frac = np.clip((level - v0) / np.maximum(v1 - v0, 1e-12), 0.0, 1.0)
        out += np.where(found, (k - 1 + frac) * PROFILE_STEP_PX, np.nan)
    return np.where(bg - lo > 1e-9, out, np.nan)


def measure_task(seg, image: np.ndarray, start, end, truth: np.ndarray) -> dict | None:
    """Widths (crop px) along the network's 2D centreline and the Dice variants of one
    segment-of-interest task (clicks and ``truth`` mask in image px); None when the 2D
    centreline stage finds no path."""
    crop = SoiCrop.from_config(np.asarray(start), np.asarray(end), seg.crop)
    prob = seg.segment([(SimpleNamespace(name="a", image=image), crop)])[0]
    truth_c = crop.warp(truth.astype(np.float32))
    t = truth_c > 0.5
    p = prob >= 0.5
    px = crop.scale  # crop px per image px
    row = {"scale": float(crop.scale), "dice": dice(p, t)}
    # A pixel centre's distance to the region's edge is its distance transform less
    # half a pixel (a rim pixel's edt is 1).
    inside_p = ndimage.distance_transform_edt(p) - 0.5
    for r in ERODE_IMAGE_PX:
        row[f"dice_eroded_{r:g}px"] = dice(inside_p > r * px, t)
    row["dice_truth_grown_1px"] = dice(ndimage.distance_transform_edt(~t) - 0.5 <= px, t)
    row["dice_truth_shrunk_1px"] = dice(ndimage.distance_transform_edt(t) - 0.5 > px, t)
    level = float(getattr(seg, "width_level", 0.5))
    try:
        c2d = trace_view(image, SegmentPoints(start, end), crop, prob, width_level=level)
    except InputError:
        return row
    pts = c2d.points
    nrm = path_normals(pts)
    w_net = np.add(*edge_distances(prob, pts, nrm, level))
    w_mask = np.add(*edge_distances(truth_c, pts, nrm, 0.5))
    w_half = half_depth_widths(crop.warp(image, cval=float(np.median(image))), pts, nrm, w_net)
    at_mask = ndimage.map_coordinates(truth_c, [pts[:, 1], pts[:, 0]], order=1)
    keep = ~c2d.gap & (at_mask > 0.5) & (w_mask > 0) & (w_net > 0)
    keep[:END_SKIP_PX] = keep[len(keep) - END_SKIP_PX :] = False
    row.update(w_net=w_net[keep], w_mask=w_mask[keep], w_half=w_half[keep])
    return row


def summarise(rows: list[dict]) -> dict:
    """Medians of per-point width ratios and mean Dice variants over tasks."""
    if not rows:
        return {"tasks": 0}
    out: dict = {"tasks": len(rows)}
    traced = [r for r in rows if "w_net" in r]
    if traced:
        cat = {k: np.concatenate([r[k] for r in traced]) for k in ("w_net", "w_mask", "w_half")}
        out["points"] = len(cat["w_net"])
        out["mask_width_crop_px_median"] = float(np.median(cat["w_mask"]))
        out["network_over_mask"] = float(np.nanmedian(cat["w_net"] / cat["w_mask"]))
        out["half_depth_over_mask"] = float(np.nanmedian(cat["w_half"] / cat["w_mask"]))
        out["half_depth_over_network"] = float(np.nanmedian(cat["w_half"] / cat["w_net"]))
        out["network_minus_mask_crop_px"] = float(np.median(cat["w_net"] - cat["w_mask"]))
    for k in rows[0]:
        if k.startswith("dice"):
            out[k] = float(np.mean([r[k] for r in rows]))
    return out


def real_rows(data_dir: Path, seg, tasks_per_image: int) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {"real train": [], "real val": []}
    for n in (*TRAIN_IDS, *VAL_IDS):
        img_path, mask_path = data_dir / "images" / f"{n}.png", data_dir / "masks" / f"{n}.png"
        if not img_path.exists() or not mask_path.exists():
            continue
        image = load_real_image(img_path)
        mask = load_real_image(mask_path) > 0.5
        for task in make_tasks(mask, str(n), n_tasks=tasks_per_image, seed=0):
            r = measure_task(seg, image, task.start, task.end, task.truth)
            rows[f"real {split_of(n)}"].append(r)
    return rows


def synthetic_rows(seg, count: int, first_seed: int = 1_000_000) -> list[dict]:
    from PIL import Image

    from angio_deploy.io.case import load_case
    from angio_deploy.synth.engine import generate_case, write_case

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(first_seed, first_seed + count):
            d = write_case(generate_case(seed), Path(tmp) / f"case_{seed}")
            for v in load_case(d).views:
                mask = np.asarray(Image.open(d / "truth" / f"mask_{v.name}.png")) > 0
                rows.append(measure_task(seg, v.image, v.soi.start, v.soi.end, mask))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--synthetic", type=int, default=0, help="validation cases to add")
    ap.add_argument("--tasks-per-image", type=int, default=BENCH_TASKS_PER_IMAGE)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.data_dir / "images").is_dir():
        print(f"{args.data_dir}: no images/ folder", file=sys.stderr)
        return 66
    seg = OnnxSegmenter(folder=args.models_dir)
    groups = real_rows(args.data_dir, seg, args.tasks_per_image)
    if args.synthetic:
        groups = {"synthetic val": synthetic_rows(seg, args.synthetic), **groups}
    summary = {k: summarise(v) for k, v in groups.items()}
    summary["segmenter"] = seg.report()
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
