"""Synthetic coronary anatomy: heart, coronary tree, catheter, segment of interest, lesions.

World frame: DICOM LPS, millimetres (+x patient left, +y posterior, +z head), isocenter at
the origin (GEOMETRY.md). Entry point: ``generate_anatomy(rng, params=...)``.

Model in brief, and where each part lives:
- The epicardium is an ellipsoid (about 12 x 9 x 8 cm) whose long axis points left, anterior
  and inferior, with jittered size and orientation (``anatomy_heart``).
- Grooves are laid out in surface coordinates (t along the long axis, azimuth phi): the
  anterior interventricular groove (LAD), the left and right atrioventricular grooves (LCx,
  RCA) on an oblique AV ring, and the posterior interventricular groove (PDA), each with
  smooth random perturbations (``anatomy_scene``, the state the builders share). Vessels
  follow them by a steered walk at a small epicardial offset (radius + fat), with their own
  smooth wiggle and a bounded turning rate, and are spline-resampled at <= 0.5 mm
  (``anatomy_curves``). The main vessels and the aortic root: ``anatomy_tree``,
  ``anatomy_aorta``. Side branches (diagonals, OMs, RV and acute marginals, PL, conus,
  sinus node) leave their parent at a drawn angle and steer toward the apex or the lateral
  wall; septal perforators dive into the septum (``anatomy_branches``).
- Reference diameters follow Dodge et al. 1992 with exponential taper and a smooth step at
  every branch point given by Finet's or a Murray-type law (``anatomy_diameters``).
- Lumen cross-sections are ellipses (axis ratio 1 to ~1.3, smoothly varying, major axis
  rotating smoothly about a twist-free frame) (``anatomy_sections``); lesions narrow them
  (``lesions``), placed in and around the segment of interest (``anatomy_soi``,
  ``lesion_placement``).
- A 5 or 6 French guide catheter comes up the descending aorta, over the arch and down the
  ascending aorta into the left or right coronary ostium (``anatomy_catheter``).
- The distributions are ``AnatomyParams`` (``anatomy_params``); the truth for meta.json is
  ``anatomy_meta``.
"""

from __future__ import annotations

import numpy as np

from .anatomy_catheter import build_catheter
from .anatomy_curves import point_at
from .anatomy_heart import Heart, unit
from .anatomy_meta import anatomy_meta
from .anatomy_params import AnatomyParams
from .anatomy_scene import Scene, chord
from .anatomy_sections import cross_sections, to_vessel
from .anatomy_soi import choose_soi
from .anatomy_tree import build_left, build_right, draw_dodge
from .lesion_placement import place_lesions, shape_lesions
from .model import Anatomy, Vessel

__all__ = ["AnatomyParams", "generate_anatomy", "heart_of"]


def generate_anatomy(rng: np.random.Generator, *, params: AnatomyParams | None = None) -> Anatomy:
    """Generate one synthetic coronary scene (world LPS, mm), deterministic in ``rng``.

    The scene is a left (LM/LAD/LCx) or right (RCA) tree with a guide catheter, one
    segment of interest (SOI) of 20-80 mm, sometimes a side-branch SOI, 0-2 lesions in the
    SOI, and is translated so that the SOI midpoint lies within ``placement_jitter_mm`` of
    the isocenter.
    """
    # The order of the draws below is the scene's definition: reordering changes every case.
    p = params or AnatomyParams()
    scene = Scene(rng, p)
    tree = "left" if rng.random() < p.left_share else "right"
    dodge = draw_dodge(rng, p)
    dodge_used = (build_left if tree == "left" else build_right)(scene, dodge)
    assert scene.aorta is not None  # placed by the tree builders
    ostium_u = scene.aorta.u_left if tree == "left" else scene.aorta.u_right
    ostium_vessel = 0
    first = scene.recs[ostium_vessel].points
    into = unit(chord(first, 2.0))
    cath, catheter_info = build_catheter(scene, first[0], ostium_u, into)
    soi, side_soi = choose_soi(rng, scene, tree, p)
    scene.recs.append(cath)

    vessels: list[Vessel] = []
    base: list[np.ndarray] = []
    ratio_max: list[float] = []
    for rec in scene.recs:
        radius, semi, major, r_max = cross_sections(rng, rec, scene.heart, p.ellipse_ratio_max)
        vessels.append(to_vessel(rec, radius, semi, major))
        base.append(semi)
        ratio_max.append(r_max)
    place_lesions(rng, vessels, soi, side_soi, scene.recs, p)
    for v, semi in zip(vessels, base, strict=True):
        shape_lesions(v, semi, p.lesions.percent_ds)

    # Centre the SOI near the isocenter, as the operator centres the table on it.
    mid, _ = point_at(vessels[soi.vessel].points, 0.5 * (soi.s_start_mm + soi.s_end_mm))
    direction = unit(rng.standard_normal(3))
    jitter = direction * p.placement_jitter_mm * float(rng.random()) ** (1.0 / 3.0)
    shift = jitter - mid
    for v in vessels:
        v.points = v.points + shift
    heart = Heart(scene.heart.center + shift, scene.heart.axes, scene.heart.rotation)
    side_sois = [side_soi] if side_soi is not None else []
    meta = anatomy_meta(
        scene, vessels, tree, dodge, dodge_used, catheter_info, soi, side_sois, shift, ratio_max, p
    )
    return Anatomy(
        vessels=vessels,
        soi=soi,
        side_sois=side_sois,
        bifurcations=scene.bifs,
        tree=tree,
        heart_center_mm=heart.center,
        heart_axes_mm=heart.axes.copy(),
        heart_rotation=heart.rotation.copy(),
        meta=meta,
    )


def heart_of(anatomy: Anatomy) -> Heart:
    """The ellipsoidal epicardium of a generated scene (world LPS, mm)."""
    return Heart(anatomy.heart_center_mm, anatomy.heart_axes_mm, anatomy.heart_rotation)
