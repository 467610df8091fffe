"""Distributions of the synthetic anatomy generator (lengths mm, angles degrees)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .lesions import LesionParams

# Version of the anatomy model, recorded in meta.json; bump it when a draw changes.
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class AnatomyParams:
    """Distributions of the anatomy generator (lengths mm, angles degrees).

    Dodge et al. 1992 reference diameters are (mean, sd) in mm.
    """

    left_share: float = 0.7
    spacing_mm: float = 0.45
    dodge_lm: tuple[float, float] = (4.5, 0.5)
    dodge_lad_prox: tuple[float, float] = (3.7, 0.4)
    dodge_lad_dist: tuple[float, float] = (1.9, 0.4)
    dodge_lcx_prox: tuple[float, float] = (3.4, 0.5)
    dodge_rca_prox: tuple[float, float] = (3.9, 0.6)
    finet_share: float = 0.4
    branch_angle_deg: tuple[float, float] = (35.0, 95.0)
    soi_length_mm: tuple[float, float] = (20.0, 80.0)
    side_soi_share: float = 0.3
    side_soi_length_mm: tuple[float, float] = (10.0, 30.0)
    lesion_count_probs: tuple[float, float, float] = (0.15, 0.65, 0.20)
    side_lesion_share: float = 0.3
    extra_lesion_share: float = 0.25
    lesions: LesionParams = field(default_factory=LesionParams)
    ellipse_ratio_max: float = 1.3
    placement_jitter_mm: float = 10.0
    catheter_length_mm: tuple[float, float] = (150.0, 250.0)
