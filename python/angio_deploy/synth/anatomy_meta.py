"""The anatomy truth of a synthetic scene for meta.json: tree, vessels, diameters,
bifurcations, lesions, SOIs, catheter (world LPS, mm)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .anatomy_curves import point_at
from .anatomy_diameters import Law, law_error
from .anatomy_params import AnatomyParams
from .anatomy_scene import Scene
from .lesions import measured_percent_ds
from .model import SegmentOfInterest, Vessel


def _f(x: Any) -> Any:
    """JSON-friendly: numpy scalars and arrays to Python floats and lists."""
    if isinstance(x, dict):
        return {str(k): _f(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_f(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [_f(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def _soi_meta(vessels: list[Vessel], soi: SegmentOfInterest) -> dict[str, Any]:
    pts = vessels[soi.vessel].points
    return {
        "vessel": soi.vessel,
        "name": vessels[soi.vessel].name,
        "s_start_mm": soi.s_start_mm,
        "s_end_mm": soi.s_end_mm,
        "length_mm": soi.length_mm,
        "start_point_mm": _f(point_at(pts, soi.s_start_mm)[0]),
        "end_point_mm": _f(point_at(pts, soi.s_end_mm)[0]),
    }


def anatomy_meta(
    scene: Scene,
    vessels: list[Vessel],
    tree: str,
    dodge: dict[str, float],
    dodge_used: dict[str, float],
    catheter_info: dict[str, Any],
    soi: SegmentOfInterest,
    side_sois: list[SegmentOfInterest],
    shift: np.ndarray,
    ratio_max: list[float],
    p: AnatomyParams,
) -> dict[str, Any]:
    """Truth for meta.json: tree, vessels, diameters, bifurcations, lesions, SOIs.

    ``vessels`` are the finished (translated) vessels, one per ``scene.recs`` record;
    ``shift`` (mm) is the translation that centred the SOI, applied here to the heart.
    """
    names = [v.name for v in vessels]
    vmeta = []
    for i, (v, rec) in enumerate(zip(vessels, scene.recs, strict=True)):
        vmeta.append(
            {
                "index": i,
                "name": v.name,
                "kind": v.kind,
                "course": rec.course,
                "parent": v.parent,
                "parent_name": None if v.parent is None else names[v.parent],
                "parent_s_mm": v.parent_s_mm,
                "length_mm": v.length_mm,
                "n_points": len(v.points),
                "reference_diameter_start_mm": 2.0 * float(v.reference_radius[0]),
                "reference_diameter_end_mm": 2.0 * float(v.reference_radius[-1]),
                "taper_per_mm": rec.decay,
                "ellipse_ratio_max": ratio_max[i],
                "iodine": v.iodine,
            }
        )
    lesions = []
    soi_ids = {soi.vessel} | {s.vessel for s in side_sois}
    for i, v in enumerate(vessels):
        for les in v.lesions:
            d = les.to_dict()
            d.update(
                vessel=i,
                vessel_name=v.name,
                in_soi=i in soi_ids,
                measured_percent_ds=measured_percent_ds(v, les),
                reference_diameter_mm=2.0
                * float(np.interp(les.center_s_mm, v.arc_lengths, v.reference_radius)),
            )
            lesions.append(d)
    bifs = [
        {
            "parent": bf.parent,
            "parent_name": names[bf.parent],
            "s_mm": bf.s_mm,
            "daughters": list(bf.daughters),
            "daughter_names": [names[i] for i in bf.daughters],
            "diameters_mm": list(bf.diameters_mm),
            "law": bf.law,
            "exponent": bf.exponent,
            "angle_deg": bf.angle_deg,
            "law_error": law_error(Law(bf.law, bf.exponent), *bf.diameters_mm),
        }
        for bf in scene.bifs
    ]
    return _f(
        {
            # The generator's name stays the public entry module's, as meta.json has said.
            "generator": "angio_deploy.synth.anatomy",
            # The anatomy model's version (the key predates generator versions).
            "generator_version": p.model_version,
            "tree": tree,
            "heart": {
                "center_mm": scene.heart.center + shift,
                "semi_axes_mm": scene.heart.axes,
                "rotation": scene.heart.rotation,
                "axes_order": ["long (base to apex)", "lateral (LV free wall)", "anterior"],
            },
            "dodge_drawn_mm": dodge,
            "dodge_used_mm": dodge_used,
            "vessels": vmeta,
            "bifurcations": bifs,
            "lesions": lesions,
            "soi": _soi_meta(vessels, soi),
            "side_sois": [_soi_meta(vessels, s) for s in side_sois],
            "catheter": {
                **catheter_info,
                "engages": vessels[0].name,
                "length_mm": vessels[-1].length_mm,
            },
            "translation_mm": shift,
            "params": {
                "left_share": p.left_share,
                "spacing_mm": p.spacing_mm,
                "placement_jitter_mm": p.placement_jitter_mm,
            },
        }
    )
