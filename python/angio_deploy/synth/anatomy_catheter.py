"""Guide catheter of the synthetic scene (world frame: DICOM LPS, millimetres).

A 5 or 6 French guide catheter comes up the descending aorta, over the arch and down the
ascending aorta into the left or right coronary ostium.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from angio_deploy.curves import arc_lengths

from .anatomy_curves import resample_polyline, spline_resample
from .anatomy_heart import unit
from .anatomy_scene import Scene, VesselRecord


def build_catheter(
    scene: Scene, ostium: np.ndarray, u_ostium: np.ndarray, into: np.ndarray
) -> tuple[VesselRecord, dict[str, Any]]:
    """Guide catheter up the descending aorta, over the arch, down the ascending aorta,
    its tip coaxial with the first mm of the engaged artery and ending at its ostium.

    ``ostium`` (world mm), ``u_ostium`` (unit, root centre toward the ostium's sinus) and
    ``into`` (unit, along the artery's first mm). Needs the scene's aortic root. Returns
    the catheter record (its d0 the inner lumen diameter, mm) and its French size and
    outer/inner diameters (mm) for meta.json.
    """
    rng = scene.rng
    aorta = scene.aorta
    if aorta is None:
        raise RuntimeError("build_catheter needs the aortic root: build the tree first")
    d_ao = aorta.d_ao
    h_asc = float(rng.uniform(45.0, 65.0))
    r_arch = float(rng.uniform(25.0, 35.0))
    ride = float(rng.uniform(6.0, 10.0))  # catheter rides the greater curvature
    back = np.array([0.35, 1.0, 0.0])  # the arch runs posterior and to the left
    w = unit(back - (back @ d_ao) * d_ao)
    top = aorta.root + h_asc * d_ao
    centre = top + r_arch * w
    pts = []
    down = np.array([0.0, 0.0, -1.0])
    arch_end = centre + (r_arch + ride) * w
    for h in np.arange(220.0, 0.0, -20.0):
        pts.append(arch_end + h * down)
    for th in np.linspace(np.pi, 0.0, 7)[1:-1]:
        pts.append(centre + (r_arch + ride) * (-math.cos(th) * w + math.sin(th) * d_ao))
    lean = -ride * u_ostium  # the body leans on the wall opposite the ostium
    for h in (h_asc, 0.65 * h_asc):
        pts.append(aorta.root + h * d_ao + lean)
    pts.append(aorta.root + 18.0 * d_ao + 0.2 * lean)
    pts.append(ostium - 4.0 * into)
    pts.append(ostium)
    coarse = np.asarray(pts)
    dense = spline_resample(coarse, 0.1)
    s = arc_lengths(dense)
    # Keep at least 15 mm of descending aorta, so the catheter visibly comes from below.
    from_tip = s[-1] - s[int(np.argmin(np.linalg.norm(dense - arch_end, axis=1)))]
    lo, hi = scene.p.catheter_length_mm
    keep = s >= s[-1] - float(rng.uniform(min(max(lo, from_tip + 15.0), hi), hi))
    pts_out = resample_polyline(dense[keep], scene.p.spacing_mm)
    french = 6 if rng.random() < 0.7 else 5
    inner = (1.78 if french == 6 else 1.47) + float(rng.uniform(-0.05, 0.05))
    info = {
        "french": french,
        "outer_diameter_mm": french / 3.0,
        "inner_diameter_mm": inner,
    }
    return VesselRecord("catheter", pts_out, "catheter", d0=inner), info
