"""Main vessels of the synthetic coronary tree: LM, LAD and LCx (left) or RCA (right).

World frame: DICOM LPS, millimetres. Grooves are laid out in heart surface coordinates
(``anatomy_scene``): the anterior interventricular groove (LAD), the left and right
atrioventricular grooves (LCx, RCA) on an oblique AV ring, and the posterior
interventricular groove (PDA). Main vessels pursue their groove; their side branches are
planned and grown by ``anatomy_branches``. Reference diameters follow Dodge et al. 1992.
"""

from __future__ import annotations

import math

import numpy as np

from angio_deploy.curves import arc_lengths

from .anatomy_aorta import place_aortic_root
from .anatomy_branches import grow_sides, plan_sides, set_taper, with_extra_twigs
from .anatomy_curves import Pursuit, hermite, resample_polyline
from .anatomy_diameters import Law, murray_exponent, reconcile
from .anatomy_heart import rotation_about, unit
from .anatomy_params import AnatomyParams
from .anatomy_scene import Scene, VesselRecord


def draw_dodge(rng: np.random.Generator, p: AnatomyParams) -> dict[str, float]:
    """Per-case Dodge diameters (mm), each clipped to +/- 2.5 sd of its mean."""
    out = {}
    for key in ("lm", "lad_prox", "lad_dist", "lcx_prox", "rca_prox"):
        mean, sd = getattr(p, f"dodge_{key}")
        out[key] = float(mean + sd * np.clip(rng.standard_normal(), -2.5, 2.5))
    return out


def lm_bifurcation(
    rng: np.random.Generator, dodge: dict[str, float], p: AnatomyParams
) -> tuple[Law, np.ndarray]:
    """Law and reconciled (LM, LAD, LCx) diameters (mm) at the left main bifurcation.

    Murray with the exponent the draws imply when it lies in [2.1, 3]; otherwise Finet or the
    nearest Murray exponent, whichever moves the diameters least.
    """
    d = np.array([dodge["lm"], dodge["lad_prox"], dodge["lcx_prox"]])
    sigma = np.array([p.dodge_lm[1], p.dodge_lad_prox[1], p.dodge_lcx_prox[1]])
    k = murray_exponent(*d)
    if k is not None and 2.1 <= k <= 3.0 and rng.random() >= p.finet_share:
        return Law("murray", k), d
    options = [Law("finet"), Law("murray", 2.1 if k is not None and k < 2.1 else 3.0)]
    if rng.random() >= p.finet_share:
        options = options[1:]
    fits = [
        (float(np.sum(((reconcile(d, sigma, law) - d) / sigma) ** 2)), i)
        for i, law in enumerate(options)
    ]
    law = options[min(fits)[1]]
    return law, reconcile(d, sigma, law)


def build_left(scene: Scene, dodge: dict[str, float]) -> dict[str, float]:
    """LM -> LAD (diagonals, septals) and LCx (obtuse marginals); places the aortic root.

    Returns the Dodge diameters used (mm; reconciled at the LM bifurcation, and the LAD's
    distal diameter with the arc length where it is measured).
    """
    rng, heart = scene.rng, scene.heart
    law, (d_lm, d_lad, d_cx) = lm_bifurcation(rng, dodge, scene.p)
    dodge_used = {"lm": d_lm, "lad_prox": d_lad, "lcx_prox": d_cx}
    gap = float(rng.uniform(0.3, 1.2))
    h_lad, h_cx = 0.5 * d_lad + gap, 0.5 * d_cx + gap
    t0 = float(scene.t_av(np.array(scene.phi_lad)))
    tau = np.linspace(0.0, 1.0, 200)
    phi = scene.phi_lad + float(np.deg2rad(rng.uniform(-10, 15))) * tau
    # In most hearts the LAD wraps around the apex onto the inferior wall; t beyond 1
    # continues over the apex down the opposite meridian (phi + pi).
    t_end = float(rng.uniform(0.9, 0.97)) if rng.random() < 0.4 else float(rng.uniform(1.05, 1.3))
    t_raw = t0 + (t_end - t0) * tau
    over = t_raw > 1.0
    phi = np.where(over, phi + np.pi, phi)
    lad_path = scene.groove(np.where(over, 2.0 - t_raw, t_raw), phi, h_lad, 3.0)
    p_bif = lad_path[0]
    d_lad0 = unit(lad_path[4] - lad_path[0])
    aorta = scene.aorta = place_aortic_root(rng, p_bif, d_lad0)
    lad_pts = scene.walk(
        p_bif,
        d_lad0,
        190.0,
        lambda s: h_lad,
        Pursuit(lad_path),
        0.02,
        twist=float(rng.uniform(0.02, 0.07)),
        twist_from=(110.0, 150.0),
    )

    # LM: from the ostium (leaving the sinus perpendicular to the root) into the LAD.
    n = max(8, math.ceil(aorta.lm_length / 0.1))
    # Leaving the sinus between its normal and the straight line to the bifurcation
    # keeps the short LM from bending more tightly than real ones do.
    lm_dir0 = unit(aorta.u_left + unit(p_bif - aorta.o_left))
    lm_pts = resample_polyline(hermite(aorta.o_left, lm_dir0, p_bif, d_lad0, n), scene.p.spacing_mm)
    lm = scene.add(VesselRecord("LM", lm_pts, "ostial", offset_mm=h_lad, d0=d_lm, decay=0.0))
    lad = scene.add(VesselRecord("LAD", lad_pts, "epicardial", lm, scene.length(lm), h_lad, d_lad))

    # LCx leaves at the LM bifurcation angle, then follows the left AV groove.
    n0 = heart.normal(p_bif)
    alpha = np.deg2rad(rng.uniform(60.0, 95.0))
    d_cx0 = rotation_about(n0, alpha) @ d_lad0
    if d_cx0 @ heart.azimuth_dir(p_bif) < 0:
        d_cx0 = rotation_about(n0, -alpha) @ d_lad0
    phi_end = float(np.deg2rad(rng.uniform(130.0, 185.0)))
    phis = np.linspace(scene.phi_lad + 0.45, phi_end, 160)
    cx_path = scene.groove(scene.t_av(phis), phis, h_cx, 3.0)
    cx_pts = scene.walk(p_bif, d_cx0, 220.0, lambda s: h_cx, Pursuit(cx_path), 0.02)
    lcx = scene.add(VesselRecord("LCx", cx_pts, "epicardial", lm, scene.length(lm), h_cx, d_cx))
    scene.record_bifurcation(lm, scene.length(lm), (lad, lcx), (d_lm, d_lad, d_cx), law)

    lad_len = scene.length(lad)
    sides = plan_sides(
        scene,
        lad,
        with_extra_twigs(
            scene,
            [
                ("D1", 0.12, 0.30, 0.50, 0.72, "diagonal", 1.0),
                ("D2", 0.33, 0.52, 0.45, 0.65, "diagonal", 1.0),
                ("D3", 0.55, 0.70, 0.40, 0.55, "diagonal", 0.5),
                ("S1", 0.08, 0.25, 0.25, 0.40, "septal", 1.0),
                ("S2", 0.25, 0.45, 0.25, 0.38, "septal", 1.0),
                ("S3", 0.45, 0.65, 0.22, 0.35, "septal", 0.6),
                ("D4", 0.70, 0.82, 0.40, 0.55, "diagonal", 0.4),
                ("S4", 0.62, 0.80, 0.25, 0.38, "septal", 0.5),
                ("LADt1", 0.10, 0.60, 0.20, 0.30, "twig", 0.7),
                ("LADt2", 0.78, 0.90, 0.40, 0.60, "twig", 0.8),
                ("LADt3", 0.90, 0.97, 0.40, 0.60, "twig", 0.6),
            ],
            "LADt",
        ),
    )
    dist = float(np.clip(dodge["lad_dist"], 1.2, 0.7 * d_lad))
    set_taper(scene, lad, d_lad, dist, 0.75 * lad_len, sides)
    dodge_used["lad_dist"] = float(scene.recs[lad].diameter_at(0.75 * lad_len))
    dodge_used["lad_dist_s_mm"] = 0.75 * lad_len
    grow_sides(scene, lad, sides)

    cx_sides = plan_sides(
        scene,
        lcx,
        with_extra_twigs(
            scene,
            [
                ("OM1", 0.15, 0.40, 0.50, 0.75, "marginal", 1.0),
                ("OM2", 0.42, 0.65, 0.45, 0.65, "marginal", 1.0),
                ("OM3", 0.68, 0.85, 0.40, 0.55, "marginal", 0.5),
                ("Cxt1", 0.05, 0.40, 0.20, 0.30, "twig", 0.6),
                ("Cxt2", 0.50, 0.95, 0.35, 0.55, "twig", 0.7),
            ],
            "Cxt",
        ),
    )
    cx_end = d_cx * float(rng.uniform(0.40, 0.55))
    set_taper(scene, lcx, d_cx, cx_end, scene.length(lcx), cx_sides)
    grow_sides(scene, lcx, cx_sides)
    return dodge_used


def build_right(scene: Scene, dodge: dict[str, float]) -> dict[str, float]:
    """RCA (conus, sinus node, RV and acute marginals, PDA, posterolateral branches);
    places the aortic root. Returns the Dodge diameter used (mm)."""
    rng, heart = scene.rng, scene.heart
    d_rca = float(dodge["rca_prox"])
    dodge_used = {"rca_prox": d_rca}
    gap = float(rng.uniform(0.3, 1.2))
    h = 0.5 * d_rca + gap
    # The aortic root is placed from the (unused) left main geometry, as on the left.
    t0 = float(scene.t_av(np.array(scene.phi_lad)))
    aorta = scene.aorta = place_aortic_root(
        rng, heart.offset_surface(np.array(t0), np.array(scene.phi_lad), h), heart.e_long
    )
    phi0 = float(np.deg2rad(rng.uniform(-45.0, -25.0)))
    phi_end = scene.phi_pda - float(np.deg2rad(rng.uniform(15.0, 40.0)))
    phis = np.linspace(phi0, phi_end, 200)
    path = scene.groove(scene.t_av(phis), phis, h, 3.0)
    start_dir = unit(aorta.u_right + unit(path[0] - aorta.o_right))
    pts = scene.walk(aorta.o_right, start_dir, 260.0, lambda s: h, Pursuit(path), 0.025)
    rca = scene.add(VesselRecord("RCA", pts, "ostial", offset_mm=h, d0=d_rca))
    length = scene.length(rca)
    _, phi_pts = heart.coords(pts)
    phi_un = np.unwrap(phi_pts)
    s_axis = arc_lengths(pts)
    crux = float(np.interp(scene.phi_pda, phi_un[::-1], s_axis[::-1]))
    crux = float(np.clip(crux, 0.6 * length, length - 12.0)) / length
    sides = plan_sides(
        scene,
        rca,
        with_extra_twigs(
            scene,
            [
                ("conus", 0.02, 0.06, 0.25, 0.35, "conus", 1.0),
                ("SN", 0.05, 0.10, 0.25, 0.35, "sinus", 0.5),
                ("RV1", 0.22, 0.38, 0.30, 0.45, "rv", 1.0),
                ("RV2", 0.40, 0.52, 0.30, 0.45, "rv", 0.5),
                ("AM", 0.55, min(0.7, crux - 0.06), 0.35, 0.55, "acute", 1.0),
                ("PDA", crux - 0.03, crux, 0.50, 0.70, "pda", 1.0),
                ("PL1", crux + 0.03, min(crux + 0.08, 0.94), 0.40, 0.60, "pl", 1.0),
                ("PL2", min(crux + 0.09, 0.95), 0.97, 0.35, 0.50, "pl", 0.5),
                ("RVt1", 0.12, 0.50, 0.20, 0.30, "twig", 0.7),
                ("RVt2", 0.30, 0.60, 0.20, 0.30, "twig", 0.5),
            ],
            "RVt",
        ),
    )
    end = d_rca * float(rng.uniform(0.45, 0.6))
    set_taper(scene, rca, d_rca, end, length, sides)
    grow_sides(scene, rca, sides)
    return dodge_used
