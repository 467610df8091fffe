"""Generator versions of the synthetic engine: every distribution that differs between
versions, in one place.

A case is a pure function of (generator version, seed). Version "1" is the engine every
published number was measured on (the test split, seeds 2,000,000+); its files must stay
byte-identical, so its profile holds exactly the values the code had before versions
existed. Version "2" (issue 10, part 2) draws images that look like real angiograms:
about twice the vessel contrast, a narrower noise range, the many-patient display level,
300-400 px views, circular fields of view with black shutters, denser and more tortuous
trees, catheters unfilled in a share of views, less soft-tissue clutter.

Each profile is three frozen parameter sets handed to the code that draws from them:
:class:`~angio_deploy.synth.anatomy_params.AnatomyParams` (the anatomy),
:class:`~angio_deploy.synth.views.ViewRanges` (image size and field of view) and
:class:`~angio_deploy.synth.xray.ImagingRanges` (contrast, dose, display, collimation).
The extra draws of version 2 are guarded by parameters whose version-1 value (0 or None)
draws nothing, so version 1 consumes its random stream exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .anatomy_params import AnatomyParams
from .versions import GENERATOR_VERSION, GENERATOR_VERSIONS
from .views import ViewRanges
from .xray import ImagingRanges

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "PROFILES",
    "GeneratorProfile",
    "generator_profile",
]


@dataclass(frozen=True)
class GeneratorProfile:
    """The distributions of one generator version (see the module docstring)."""

    version: str
    anatomy: AnatomyParams = field(default_factory=AnatomyParams)
    views: ViewRanges = field(default_factory=ViewRanges)
    imaging: ImagingRanges = field(default_factory=ImagingRanges)

    @property
    def seed_key(self) -> int:
        """The version's integer in the case generator's SeedSequence."""
        return int(self.version)


#: Version 1: the defaults of each parameter set (the engine as published).
PROFILE_V1 = GeneratorProfile(version="1")

#: Version 2: real-looking frames; the reasons per value in docs/DATASET.md ("What
#: generator v2 changed"), measured by tools/appearance_stats.py.
PROFILE_V2 = GeneratorProfile(
    version="2",
    anatomy=AnatomyParams(
        model_version=3,
        # Denser trees: named side branches nearly always present, more twigs on the
        # main vessels, twigs every 6-11 mm, and twigs on twigs (a third generation).
        side_presence_min=0.75,
        extra_main_twigs=3,
        twig_spacing_mm=(6.0, 11.0),
        twig_max_generation=3,
        # More tortuous: wiggle and meander amplitudes 2.5x, every vessel meanders, bends
        # down to ~3.5 mm radius allowed (real distal vessels corkscrew).
        tortuosity_scale=2.5,
        twist_scale=2.5,
        twist_min=0.12,
        kappa_max_scale=2.0,
        # Partial filling rarer and milder: real diagnostic runs are well opacified.
        partial_fill_share=0.2,
        partial_fill_fade=(0.05, 0.3),
    ),
    views=ViewRanges(
        small_share=0.35,
        small_size_px=(300, 400),
        large_share=0.1,
        # Narrower fields on small images, wider on large ones: vessel widths 2-25 px.
        fov_small_mm=(110.0, 170.0),
        fov_large_mm=(200.0, 250.0),
    ),
    imaging=ImagingRanges(
        iodine_mg_ml=(200.0, 350.0),
        fill_artery=(0.7, 1.0),
        spr=(0.25, 0.8),
        window_margin=(0.2, 0.35),
        window_level=(0.47, 0.62),
        counts_behind_patient=(130.0, 260.0),
        clutter=(0.4, 1.1),
        circular_share=0.4,
        circle_radius=(0.92, 1.12),
        shutter_level=(0.03, 0.09),
        catheter_unfilled_share=0.25,
        # Less 1/f^3 soft tissue flattens the background spectrum (-2.5 -> real -2.2).
        texture_weights=(0.035, 0.035),
    ),
)

PROFILES: dict[str, GeneratorProfile] = {p.version: p for p in (PROFILE_V1, PROFILE_V2)}
if tuple(PROFILES) != GENERATOR_VERSIONS:  # pragma: no cover - a new version half added
    raise RuntimeError("synth.versions.GENERATOR_VERSIONS and the profiles disagree")


def generator_profile(version: str | int | None = None) -> GeneratorProfile:
    """The profile of generator ``version`` ("1", "2"; None: :data:`GENERATOR_VERSION`).

    Raises ValueError for an unknown version.
    """
    key = GENERATOR_VERSION if version is None else str(version)
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(
            f"unknown generator version {version!r}; known: {', '.join(GENERATOR_VERSIONS)}"
        ) from None
