"""Distributions of the synthetic anatomy generator (lengths mm, angles degrees)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .lesions import LesionParams


@dataclass(frozen=True)
class AnatomyParams:
    """Distributions of the anatomy generator (lengths mm, angles degrees).

    Dodge et al. 1992 reference diameters are (mean, sd) in mm. ``model_version`` is the
    anatomy model's version, recorded in meta.json (``anatomy.generator_version``); bump
    it when a draw changes. The defaults are the anatomy of generator version 1; the
    fields after ``catheter_length_mm`` are the knobs generator version 2 turns
    (:mod:`angio_deploy.synth.profiles`), whose defaults leave version 1 as it was:

    * ``side_presence_min``: floor of every side branch's presence probability;
    * ``extra_main_twigs``: twigs added to each main vessel's side-branch table;
    * ``twig_spacing_mm``: one twig per this much (mm) of a side branch;
    * ``twig_max_generation``: deepest generation of a twig (2: twigs on named side
      branches only; 3: twigs also carry twigs);
    * ``tortuosity_scale``, ``twist_scale``, ``kappa_max_scale``: factors on every walk's
      wiggle (rad/mm), meander (rad/mm) and largest turning rate (1/mm); ``twist_min``
      (rad/mm) is added to every walk's meander;
    * ``partial_fill_share``, ``partial_fill_fade``: share of runs whose contrast fades
      toward the small branches, and the fade drawn for them (fraction of the iodine
      lost in generation-2 twigs).
    """

    model_version: int = 2
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
    side_presence_min: float = 0.0
    extra_main_twigs: int = 0
    twig_spacing_mm: tuple[float, float] = (9.0, 16.0)
    twig_max_generation: int = 2
    tortuosity_scale: float = 1.0
    twist_scale: float = 1.0
    kappa_max_scale: float = 1.0
    twist_min: float = 0.0
    partial_fill_share: float = 0.4
    partial_fill_fade: tuple[float, float] = (0.1, 0.45)
