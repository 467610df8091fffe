"""One case's METRICS.md row (:func:`evaluate_case`) and the summary over cases.

A case is a result folder (``out/``: ``mesh.ply``, ``centreline.csv``, optionally
``mesh_joined.ply``) and a truth folder (``truth/``: ``mesh.ply``, ``centreline.csv``,
``mask_<view>.png``, ``meta.json``, optionally ``mesh_joined.ply``), CASE_FORMAT.md.
Units: distances world mm (LPS); Dice and Jaccard fractions in [0, 1]; F-scores percent;
%DS in percentage points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from angio_deploy import kernels
from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.io.centreline_csv import read_centreline_csv
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.pipeline.branches import bifurcation_angle_deg
from angio_deploy.pipeline.qca import find_lesions
from angio_deploy.topology import N_AROUND, ring_faces

from .radius import lesion_window, percent_ds_error, radius_errors, ring_radii
from .silhouette import mean_overlap
from .surface import f_paper, surface_distances, vertex_mae, vertex_mae_shape

__all__ = ["ViewTruth", "evaluate_case", "load_truth_views", "summarise"]

NAN = float("nan")
#: Keys of a case row that are not metrics.
ROW_LABELS = ("case",)


@dataclass(frozen=True, eq=False)
class ViewTruth:
    """One view for the silhouette metrics: name, 3x4 matrix (world mm -> pixels), mask."""

    name: str
    P: np.ndarray
    mask: np.ndarray


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputNotFoundError("file not found", source=str(path)) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read JSON ({exc})", source=str(path)) from None


def _read_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return (np.asarray(im.convert("L")) > 0).astype(np.uint8)
    except FileNotFoundError:
        raise InputNotFoundError("file not found", source=str(path)) from None


def load_truth_views(truth_dir: str | Path) -> list[ViewTruth]:
    """The views of a truth folder: ``meta.json`` ``views[k]`` name and *true* geometry.

    Dice uses the TRUE projection matrix ``views[k]["true"]["projection_matrix"]`` (not the
    DICOM header's), because ``mask_<name>.png`` was rendered with it: the score then
    measures the reconstruction, not the header's geometry error.
    """
    truth_dir = Path(truth_dir)
    meta = _read_json(truth_dir / "meta.json")
    out = []
    for k, view in enumerate(meta.get("views", [])):
        try:
            name = str(view["name"])
            P = np.asarray(view["true"]["projection_matrix"], dtype=np.float64)
        except (KeyError, TypeError):
            raise InputError(
                "view lacks name or true projection_matrix",
                source=str(truth_dir / "meta.json"),
                field=f"views[{k}]",
            ) from None
        mask = _read_mask(truth_dir / f"mask_{name}.png")
        size = (view["true"].get("height"), view["true"].get("width"))
        if None not in size and tuple(mask.shape) != size:
            raise InputError(
                f"mask is {mask.shape[1]}x{mask.shape[0]}, the view {size[1]}x{size[0]}",
                source=str(truth_dir / f"mask_{name}.png"),
            )
        out.append(ViewTruth(name, P, mask))
    if not out:
        raise InputError("no views", source=str(truth_dir / "meta.json"), field="views")
    return out


def _silhouette_mesh(pred_dir: Path, truth_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The joined prediction where the truth has side branches and it exists, else main."""
    joined = pred_dir / "mesh_joined.ply"
    if (truth_dir / "mesh_joined.ply").exists() and joined.exists():
        return read_ply(joined)[:2]
    return read_ply(pred_dir / "mesh.ply")[:2]


def _stenosis_metrics(pred_v, true_v, meta: Mapping[str, Any]) -> dict[str, float]:
    """%DS at the truth's most severe stenosis (NaN without one); see :func:`evaluate_case`."""
    lesions = meta.get("stenoses") or []
    if not lesions:
        return {"DS_pred": NAN, "DS_true": NAN, "DS_error": NAN}
    try:
        ref = np.asarray(meta["reference_radius_mm"], dtype=np.float64)
        soi_length = float(meta["soi"]["length_mm"])
        spans = [(float(x["position_from_start_mm"]), float(x["length_mm"])) for x in lesions]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"stenoses need reference_radius_mm, soi.length_mm and per-lesion "
            f"position_from_start_mm / length_mm (missing {exc})",
            field="stenoses",
        ) from None
    rp, rt = ring_radii(pred_v), ring_radii(true_v)
    if rp.shape != rt.shape or rt.shape != ref.shape:
        raise ValueError(
            f"ring counts differ: prediction {rp.size}, truth {rt.size}, reference {ref.size}"
        )
    results = []
    for position, length in spans:
        w = lesion_window(rt.size, soi_length, position, length)
        results.append(percent_ds_error(rp, rt, ref, w))
    return max(results, key=lambda r: r["DS_true"])


def evaluate_case(
    pred_dir: str | Path,
    truth_dir: str | Path,
    views: Sequence[ViewTruth] | None = None,
) -> dict[str, Any]:
    """Every METRICS.md metric for one case -> one row ``{name: value}``.

    - ``MAE``, ``ASSD``, ``HD``, ``HD95`` (mm), ``F@0.1``, ``F@0.25``, ``F@0.5`` (percent),
      ``F_paper`` (percent, the paper's normalised variant): main-segment meshes
      ``pred_dir/mesh.ply`` vs ``truth_dir/mesh.ply`` (see :mod:`.surface`).
    - ``Dice``, ``Jaccard`` (mean over views) and ``Dice_<name>``, ``Jaccard_<name>`` per
      view: ``views`` default to :func:`load_truth_views` (the TRUE geometry the masks
      were rendered with). The masks hold the segment(s) of interest, side branches
      included, so the prediction's ``mesh_joined.ply`` is rendered when the truth has a
      ``mesh_joined.ply`` and the prediction one too; otherwise its ``mesh.ply``.
    - ``radius_mae``, ``radius_bias`` (mm): ``radius_mm`` of the two ``centreline.csv``
      files, ring by ring.
    - ``DS_pred``, ``DS_true``, ``DS_error`` (percentage points): for the stenosis in
      ``meta.json`` ``stenoses`` with the largest true %DS, the largest %DS of each mesh's
      rings (:func:`.radius.ring_radii`, the truth's own measurement) inside the lesion
      (``position_from_start_mm +- length_mm / 2`` along the ``soi.length_mm`` segment),
      both against the truth's ``reference_radius_mm``. NaN when the truth has none.
    """
    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    pv, pf, _ = read_ply(pred_dir / "mesh.ply")
    tv, tf, _ = read_ply(truth_dir / "mesh.ply")
    meta = _read_json(truth_dir / "meta.json")
    row: dict[str, Any] = {"case": truth_dir.parent.name}
    row["MAE"] = vertex_mae(pv, tv)
    row["MAE_shape"] = vertex_mae_shape(pv, tv)
    row.update(surface_distances((pv, pf), (tv, tf)))
    row["F_paper"] = f_paper(pv, pf, tv, tf)

    views = load_truth_views(truth_dir) if views is None else list(views)
    sv, sf = _silhouette_mesh(pred_dir, truth_dir)
    overlap = mean_overlap(sv, sf, [(v.P, v.mask) for v in views])
    row["Dice"], row["Jaccard"] = overlap["Dice"], overlap["Jaccard"]
    for v, d, j in zip(views, overlap["dice"], overlap["jaccard"], strict=True):
        row[f"Dice_{v.name}"], row[f"Jaccard_{v.name}"] = d, j

    pred_cl = read_centreline_csv(pred_dir / "centreline.csv")
    true_cl = read_centreline_csv(truth_dir / "centreline.csv")
    row.update(radius_errors(pred_cl.radius_mm, true_cl.radius_mm))
    row.update(_stenosis_metrics(pv, tv, meta))
    row.update(_qca_metrics(pred_dir / "qca.csv", tv, meta))
    row.update(_joined_metrics(pred_dir, truth_dir, views, pv, tv))
    return row


_JOINED_KEYS = (
    "ASSD_joined",
    "HD95_joined",
    "Dice_joined",
    "Dice_main",
    "bifurcation_angle_error",
    "bifurcation_angle_error_confident",
    "bifurcation_angle_low_confidence",
)


def ring_centres(vertices: np.ndarray) -> np.ndarray:
    """Centres (R, 3) mm of a ring mesh's rings (mean of each ring's vertices)."""
    return np.asarray(vertices, dtype=np.float64).reshape(-1, N_AROUND, 3).mean(axis=1)


def _joined_metrics(pred_dir: Path, truth_dir: Path, views, pv, tv) -> dict[str, float]:
    """METRICS.md joined metrics for a truth with side branches (NaN otherwise, or where
    the prediction lacks the file): ``mesh_joined`` against the truth's joined mesh
    (``ASSD_joined``, ``HD95_joined``) and the masks (``Dice_joined``); ``Dice_main``, the
    main mesh against the silhouette of the truth's main mesh (the same views), for the
    comparison "joined Dice vs main Dice"; ``bifurcation_angle_error`` (degrees),
    predicted minus true angle (:func:`~angio_deploy.pipeline.branches.
    bifurcation_angle_deg` on both: one definition, one chord length), mean over the
    branches; ``bifurcation_angle_low_confidence``, the share of those branches whose
    angle report.json flags ``angle_low_confidence``, and
    ``bifurcation_angle_error_confident``, the error over the branches not flagged
    (NaN where every one is, or the report carries no flag)."""
    out = dict.fromkeys(_JOINED_KEYS, NAN)
    truth_joined = truth_dir / "mesh_joined.ply"
    if not truth_joined.exists():
        return out
    capped = ring_faces(len(pv) // N_AROUND, N_AROUND, caps=True)
    truth_main = [(v.P, _silhouette(tv, v.P, v.mask.shape)) for v in views]
    out["Dice_main"] = mean_overlap(pv, capped, truth_main)["Dice"]
    pred_joined = pred_dir / "mesh_joined.ply"
    if pred_joined.exists():
        jv, jf, _ = read_ply(pred_joined)
        tjv, tjf, _ = read_ply(truth_joined)
        d = surface_distances((jv, jf), (tjv, tjf))
        out["ASSD_joined"], out["HD95_joined"] = d["ASSD"], d["HD95"]
        out["Dice_joined"] = mean_overlap(jv, jf, [(v.P, v.mask) for v in views])["Dice"]
    errors, flags = [], []
    low = _angle_flags(pred_dir / "report.json")
    main_p, main_t = ring_centres(pv), ring_centres(tv)
    for k, side in enumerate(sorted(truth_dir.glob("side_*.ply"), key=_side_index), start=1):
        branch = pred_dir / f"branch_{k}.ply"
        if not branch.exists():
            continue
        a_p = bifurcation_angle_deg(main_p, ring_centres(read_ply(branch)[0]))
        a_t = bifurcation_angle_deg(main_t, ring_centres(read_ply(side)[0]))
        errors.append(a_p - a_t)
        flags.append(low.get(f"branch_{k}"))
    if errors:
        out["bifurcation_angle_error"] = float(np.mean(errors))
        if all(f is not None for f in flags):
            out["bifurcation_angle_low_confidence"] = float(np.mean(flags))
            confident = [e for e, f in zip(errors, flags, strict=True) if not f]
            if confident:
                out["bifurcation_angle_error_confident"] = float(np.mean(confident))
    return out


def _angle_flags(report_path: Path) -> dict[str, bool]:
    """Branch name -> its bifurcation's ``angle_low_confidence`` in report.json (branches
    without the flag, e.g. results written before it existed, are left out)."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    bifs = (report.get("qca") or {}).get("bifurcations") or []
    return {
        b["branch"]: bool(b["angle_low_confidence"])
        for b in bifs
        if isinstance(b, dict) and "branch" in b and "angle_low_confidence" in b
    }


def _side_index(path: Path) -> int:
    return int(path.stem.split("_")[1])


def _silhouette(vertices: np.ndarray, P: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The filled silhouette (H, W) uint8 of a closed ring mesh rendered with ``P``."""
    capped = ring_faces(len(vertices) // N_AROUND, N_AROUND, caps=True)
    return kernels.rasterise_silhouette(P, vertices, capped, shape[1], shape[0])


#: Rings the predicted MLD may lie outside the truth's lesion window (ring slide).
QCA_SEARCH_RINGS = 3
_QCA_KEYS = ("MLD_error", "ref_diameter_error", "QCA_DS_error", "lesion_length_error")

#: The metrics of :func:`evaluate_case` a cohort summary shows, in METRICS.md's order
#: (the per-view Dice/Jaccard, the %DS parts and the low-confidence flag stay in the rows).
HEADLINE_METRICS = (
    "MAE",
    "MAE_shape",
    "ASSD",
    "HD",
    "HD95",
    "F@0.1",
    "F@0.25",
    "F@0.5",
    "F_paper",
    "Dice",
    "Jaccard",
    "radius_mae",
    "radius_bias",
    "DS_error",
    *_QCA_KEYS,
    *_JOINED_KEYS[:-1],
)


def _read_qca(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(arc, diameter, reference) mm of the main branch from qca.csv, None if absent."""
    if not path.exists():
        return None
    rows = [ln.split(",") for ln in path.read_text(encoding="utf-8").splitlines()[1:]]
    main = np.array([[float(x) for x in r[2:5]] for r in rows if r and r[0] == "main"])
    return (main[:, 0], main[:, 1], main[:, 2]) if len(main) else None


def _lesion_length_at(arc: np.ndarray, d: np.ndarray, ref: np.ndarray, k: int) -> float:
    for les in find_lesions(arc, d, ref):
        if les.start_mm <= arc[k] <= les.end_mm:
            return les.length_mm
    return 0.0  # no stretch 20 % below the reference there


def _qca_metrics(qca_path: Path, true_v, meta: Mapping[str, Any]) -> dict[str, float]:
    """QCA errors (METRICS.md) at the truth's most severe stenosis: predicted minus true
    MLD (mm), reference diameter at the MLD (mm), %DS from the two (percentage points) and
    lesion length (mm, both by the product's definition: > 20 % below the reference).
    The truth's diameters are its rings' and its reference ``reference_radius_mm``; the
    prediction's are qca.csv's. NaN without a stenosis or a qca.csv."""
    lesions = meta.get("stenoses") or []
    pred = _read_qca(qca_path)
    if not lesions or pred is None:
        return dict.fromkeys(_QCA_KEYS, NAN)
    worst = max(lesions, key=lambda x: float(x.get("percent_ds", 0.0)))
    arc_p, d_p, ref_p = pred
    d_t = 2.0 * ring_radii(true_v)
    ref_t = 2.0 * np.asarray(meta["reference_radius_mm"], dtype=np.float64)
    length = float(meta["soi"]["length_mm"])
    arc_t = np.linspace(0.0, length, d_t.size)
    w = lesion_window(
        d_t.size, length, float(worst["position_from_start_mm"]), float(worst["length_mm"])
    )
    kt = int(np.flatnonzero(w)[np.argmin(d_t[w])])
    wide = ndimage.binary_dilation(w, iterations=QCA_SEARCH_RINGS)
    kp = int(np.flatnonzero(wide)[np.argmin(d_p[wide])])
    ds_p = 100.0 * (1.0 - d_p[kp] / ref_p[kp])
    ds_t = 100.0 * (1.0 - d_t[kt] / ref_t[kt])
    return {
        "MLD_error": float(d_p[kp] - d_t[kt]),
        "ref_diameter_error": float(ref_p[kp] - ref_t[kt]),
        "QCA_DS_error": float(ds_p - ds_t),
        "lesion_length_error": _lesion_length_at(arc_p, d_p, ref_p, kp)
        - _lesion_length_at(arc_t, d_t, ref_t, kt),
    }


def _is_number(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, median and 95th percentile of every numeric metric over case rows.

    NaN-aware: a case whose value is NaN (undefined, e.g. %DS error without a stenosis)
    or missing is skipped for that metric only. Per metric: ``{"mean", "median", "p95"
    (numpy.percentile 95, linear interpolation), "sd" (sample standard deviation, as
    QCA studies report mean +/- SD), "n" (cases used), "skipped"}``; all
    three statistics are NaN when no case defines the metric. Non-numeric entries
    (the ``case`` label, per-view lists) are not metrics.
    """
    names: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in ROW_LABELS and _is_number(value) and key not in names:
                names.append(key)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        vals = [row.get(name) for row in rows]
        good = np.array([float(v) for v in vals if _is_number(v) and math.isfinite(v)])
        stats = (
            (
                float(good.mean()),
                float(np.median(good)),
                float(np.percentile(good, 95)),
                float(good.std(ddof=1)) if good.size > 1 else NAN,
            )
            if good.size
            else (NAN, NAN, NAN, NAN)
        )
        out[name] = {
            "mean": stats[0],
            "median": stats[1],
            "p95": stats[2],
            "sd": stats[3],
            "n": int(good.size),
            "skipped": len(rows) - int(good.size),
        }
    return out
