"""Aortic root of the synthetic scene: ascending direction, root centre, coronary ostia.

World frame: DICOM LPS, millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy_heart import unit


@dataclass(frozen=True)
class AorticRoot:
    """The aortic root (world mm): ``d_ao`` ascending direction (unit), ``root`` centre,
    ``r_root`` radius, left/right ostia ``o_left``/``o_right`` with the unit directions
    ``u_left``/``u_right`` from the root centre toward their sinuses, and the left main
    length ``lm_length`` (ostium to LM bifurcation)."""

    d_ao: np.ndarray
    lm_length: float
    o_left: np.ndarray
    r_root: float
    root: np.ndarray
    u_left: np.ndarray
    u_right: np.ndarray
    o_right: np.ndarray


def place_aortic_root(rng: np.random.Generator, p_bif: np.ndarray, d_lad: np.ndarray) -> AorticRoot:
    """Aortic root: LM ostium back from the LM bifurcation ``p_bif`` (world mm; the LAD,
    leaving in unit direction ``d_lad``, roughly continues the LM), root centre, RCA
    ostium."""
    jit = 0.15 * rng.standard_normal((4, 3))
    d_ao = unit(np.array([-0.2, -0.3, 1.0]) + jit[0])  # ascending: up, anterior, right
    # LM traced back from its bifurcation: right, posterior, up, against the LAD.
    w_l = unit(unit(np.array([-1.0, 0.9, 0.3]) + jit[1]) - 0.8 * d_lad)
    lm_length = float(rng.uniform(8.0, 15.0))
    o_left = p_bif + lm_length * w_l
    r_root = float(rng.uniform(12.0, 16.0))
    u_l = unit(-w_l - (-w_l @ d_ao) * d_ao)  # left sinus faces the LM
    root = o_left - r_root * u_l
    ant_right = np.array([-0.45, -1.0, 0.0]) + jit[2]
    u_r = unit(ant_right - (ant_right @ d_ao) * d_ao)  # right sinus: anterior
    o_right = root + r_root * u_r
    return AorticRoot(
        d_ao=d_ao,
        lm_length=lm_length,
        o_left=o_left,
        r_root=r_root,
        root=root,
        u_left=u_l,
        u_right=u_r,
        o_right=o_right,
    )
