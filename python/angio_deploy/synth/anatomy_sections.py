"""Lumen cross-sections of the synthetic vessels and the finished ``Vessel`` records.

World frame: DICOM LPS, millimetres. Cross-sections are ellipses (axis ratio 1 to ~1.3,
smoothly varying, major axis rotating smoothly about a twist-free frame); the catheter's
is a circle.
"""

from __future__ import annotations

import numpy as np

from angio_deploy.curves import arc_lengths

from .anatomy_curves import smooth_noise, strided_rotation_minimising_normals, tangents
from .anatomy_heart import Heart
from .anatomy_scene import VesselRecord
from .model import Vessel


def cross_sections(
    rng: np.random.Generator, rec: VesselRecord, heart: Heart, ratio_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(reference radius (M,) mm, lesion-free semi-axes (M, 2) mm, major_dir (M, 3) unit,
    max ratio): ellipse ratio in [1, r_max] and major-axis angle varying smoothly along
    the vessel."""
    s = arc_lengths(rec.points)
    radius = 0.5 * rec.diameter_at(s)
    if rec.course == "catheter":
        r_max = 1.0
        start = np.array([0.0, 1.0, 0.0])
    else:
        r_max = float(rng.uniform(1.0, ratio_max))
        start = heart.normal(rec.points[0])
        if abs(start @ tangents(rec.points[:3])[0]) > 0.9:
            start = heart.e_long
    ratio = 1.0 + (r_max - 1.0) * (0.5 + 0.5 * smooth_noise(rng, s, 1.0, (25.0, 70.0), 2))
    psi = rng.uniform(0, np.pi) + smooth_noise(rng, s, 0.5 * np.pi, (30.0, 90.0), 2)
    ref = strided_rotation_minimising_normals(rec.points, start)
    tan = tangents(rec.points)
    major = np.cos(psi)[:, None] * ref + np.sin(psi)[:, None] * np.cross(tan, ref)
    semi = np.stack([radius * np.sqrt(ratio), radius / np.sqrt(ratio)], axis=1)
    return radius, semi, major, r_max


def to_vessel(rec: VesselRecord, radius: np.ndarray, semi: np.ndarray, major: np.ndarray) -> Vessel:
    """The finished vessel (lesion-free lumen) of a record and its cross-sections."""
    return Vessel(
        name=rec.name,
        kind="catheter" if rec.course == "catheter" else "artery",
        points=rec.points,
        semi_axes=semi,
        major_dir=major,
        reference_radius=radius,
        offset=None,
        iodine=rec.iodine,
        parent=rec.parent,
        parent_s_mm=rec.parent_s_mm,
    )
