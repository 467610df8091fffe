"""X-ray image formation of a synthetic angiogram: anatomy + view geometry -> XA pixels.

Physics (one effective energy, monochromatic Beer-Lambert):

1. Line integrals per pixel ray (dimensionless): background chest
   (:mod:`angio_deploy.synth.background`) ``L_bg``; contrast in every vessel lumen
   ``L_v = sum_vessels mu_I * fill_class * vessel.iodine * chord`` with the chord (mm)
   from the closed-form path-length kernel ``kernels.tube_path_lengths``; the catheter
   likewise plus a thin radio-opaque wall.
2. Focal-spot blur: a finite focal spot of size f (mm) blurs an object at depth z from the
   source with a penumbra f (SID - z) / z at the detector. It acts on the object's
   *transmission*, so the vessel transmission ``exp(-L_v)`` (vessels sit near the
   isocenter, z = SOD) is convolved with a Gaussian of FWHM = penumbra before it multiplies
   the background transmission. The background is smooth at that scale and is left as is.
3. Primary counts ``N0 * vignetting * collimation * exp(-L_bg) * blurred exp(-L_v)``. N0
   (unattenuated quanta per pixel) is set like automatic exposure control: so that the
   median in-field pixel behind the patient receives ``counts_behind_patient`` quanta.
4. Scatter: scatter-to-primary ratio ``spr`` times a wide low-pass of the primary (anti-
   scatter grid leaves SPR ~0.3-1.5 in cardiac imaging); it lowers vessel contrast.
5. Quantum noise (Poisson), then the detector PSF (applied after the noise: scintillator
   light spread blurs each detected quantum), then additive electronic noise.
6. Log, display processing (dynamic-range compression, automatic window, gamma, unsharp
   masking) and quantisation to 8 or 12 bits stored, MONOCHROME2 (vessels dark).

Mass attenuation coefficients: NIST XCOM (iodine, water, ICRU cortical bone), log-log
interpolated in energy.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.synth import detector as det
from angio_deploy.synth.background import TEXTURE_WEIGHTS, Materials, Rays, chest_integral
from angio_deploy.synth.model import Anatomy, Vessel

log = logging.getLogger(__name__)

#: NIST XCOM mass attenuation coefficients (cm^2/g) at 40, 50, 60, 70, 80 keV.
_E_KEV = np.array([40.0, 50.0, 60.0, 70.0, 80.0])
_MU_RHO = {
    "iodine": np.array([22.10, 12.32, 7.614, 5.016, 3.510]),
    "water": np.array([0.2683, 0.2269, 0.2059, 0.1948, 0.1837]),
    "bone": np.array([0.6655, 0.4242, 0.3148, 0.2579, 0.2229]),
}
_DENSITY = {"tissue": 1.06, "lung": 0.26, "cortical": 1.92, "trabecular": 1.18}


def mass_attenuation(material: str, energy_kev: float) -> float:
    """Mass attenuation coefficient (cm^2/g) of "iodine", "water" or "bone" at energy_kev."""
    e = float(np.clip(energy_kev, _E_KEV[0], _E_KEV[-1]))
    return float(np.exp(np.interp(np.log(e), np.log(_E_KEV), np.log(_MU_RHO[material]))))


def materials_at(energy_kev: float) -> Materials:
    """Linear attenuation coefficients (1/mm) of chest materials at the effective energy.

    Soft tissue and lung are water-like at their densities; trabecular bone is a
    water/cortical-bone mixture (density 1.18, 18 % bone by mass).
    """
    w = mass_attenuation("water", energy_kev)
    b = mass_attenuation("bone", energy_kev)
    return Materials(
        tissue=w * _DENSITY["tissue"] / 10.0,
        lung=w * _DENSITY["lung"] / 10.0,
        cortical=b * _DENSITY["cortical"] / 10.0,
        trabecular=(0.82 * w + 0.18 * b) * _DENSITY["trabecular"] / 10.0,
    )


@dataclass(frozen=True)
class ImagingParams:
    """Physical and display parameters of one view (see :func:`draw_imaging_params`).

    Units: ``energy_kev`` keV; ``mu_iodine_per_mm`` 1/mm of the contrast medium in the
    lumen at full opacification (``fill_*`` and ``Vessel.iodine`` scale it);
    ``counts_behind_patient`` detected quanta per pixel at the median in-field pixel;
    ``focal_spot_mm`` nominal focal spot size; ``detector_psf_px`` PSF width (sigma for
    "gaussian", scale for "exponential") in pixels; ``vignetting``/``heel`` fractional
    losses; ``clutter`` scales the background texture (0: none); ``spr`` scatter-to-primary
    ratio; ``electronic_noise`` counts (sd); ``texture_weights`` the soft-tissue texture
    amplitudes (``background.texture_integral``). The switches ``quantum_noise``, ``blur`` and
    ``background`` exist for tests (an ideal image: :meth:`ideal`).
    """

    energy_kev: float = 55.0
    mu_iodine_per_mm: float = 0.25
    fill_artery: float = 1.0
    fill_catheter: float = 1.0
    catheter_wall_mu_per_mm: float = 0.04
    counts_behind_patient: float = 1000.0
    focal_spot_mm: float = 0.6
    detector_psf: str = "gaussian"
    detector_psf_px: float = 0.7
    vignetting: float = 0.15
    heel: float = 0.05
    heel_angle_rad: float = 0.0
    collimation: det.Collimation = field(default_factory=det.Collimation)
    clutter: float = 1.0
    spr: float = 0.6
    electronic_noise: float = 1.0
    display: det.Display = field(default_factory=det.Display)
    bits_stored: int = 8
    supersample: int = 1
    quantum_noise: bool = True
    blur: bool = True
    background: bool = True
    unattenuated_line_integral: float = 4.0  # background L used when background is off
    texture_weights: tuple[float, float] = TEXTURE_WEIGHTS

    @classmethod
    def ideal(cls, **overrides: Any) -> ImagingParams:
        """No noise, blur, background, scatter, vignetting, collimation or display
        processing: stored = linear map of log counts (for tests)."""
        base = cls(
            counts_behind_patient=1e6,
            vignetting=0.0,
            heel=0.0,
            clutter=0.0,
            spr=0.0,
            electronic_noise=0.0,
            quantum_noise=False,
            blur=False,
            background=False,
            bits_stored=12,
        )
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested dataclasses as dicts)."""
        d = asdict(self)
        d["collimation"] = self.collimation.to_dict()
        d["display"] = self.display.to_dict()
        if self.texture_weights == TEXTURE_WEIGHTS:
            # Only when changed: meta.json of generator version 1 stays as it was.
            d.pop("texture_weights")
        else:
            d["texture_weights"] = list(self.texture_weights)
        return d


@dataclass(frozen=True)
class ImagingRanges:
    """Ranges :func:`draw_imaging_params` draws from; the defaults are generator version
    1's (:mod:`angio_deploy.synth.profiles`). Uniform unless named otherwise.

    ``iodine_mg_ml`` lumen iodine concentration (mgI/ml); ``fill_artery`` its share in
    arteries; ``spr`` scatter-to-primary ratio; ``window_margin`` display window widening
    (fraction of its width, each side); ``window_level`` in-field median display value;
    ``counts_behind_patient`` quanta per pixel (log-uniform); ``clutter`` background
    texture scale. Version-2 additions, drawn only when set (so version 1 draws what it
    always drew): ``circular_share`` of views with a circular field of radius
    ``circle_radius`` (times half the image side; blades then open); ``shutter_level``
    display value range behind the collimator (None: as the display chain leaves it);
    ``catheter_unfilled_share`` of views whose catheter holds blood or saline, not
    contrast (fill 0-0.15). ``unsharp_amount``/``unsharp_sigma_px`` the edge
    enhancement of the 80 % of views that have it; ``texture_weights`` fixed.
    """

    iodine_mg_ml: tuple[float, float] = (120.0, 320.0)
    fill_artery: tuple[float, float] = (0.55, 1.0)
    spr: tuple[float, float] = (0.3, 1.2)
    window_margin: tuple[float, float] = (0.3, 0.5)
    window_level: tuple[float, float] = (0.4, 0.48)
    counts_behind_patient: tuple[float, float] = (130.0, 650.0)
    clutter: tuple[float, float] = (0.3, 1.6)
    circular_share: float = 0.0
    circle_radius: tuple[float, float] = (1.0, 1.0)
    shutter_level: tuple[float, float] | None = None
    catheter_unfilled_share: float = 0.0
    unsharp_amount: tuple[float, float] = (0.2, 1.0)
    unsharp_sigma_px: tuple[float, float] = (2.0, 8.0)
    texture_weights: tuple[float, float] = TEXTURE_WEIGHTS


@dataclass(frozen=True)
class RenderedView:
    """One rendered view: stored pixels, bits, [0, 1] image and statistics.

    ``stored`` (H, W) uint8 (8 bits) or uint16 (12 bits), MONOCHROME2 (vessels dark);
    ``image`` = stored / (2**bits_stored - 1) as float32.
    """

    stored: np.ndarray
    bits_stored: int
    image: np.ndarray
    stats: dict[str, Any]


# -- parameter draws ---------------------------------------------------------------------


def draw_imaging_params(
    rng: np.random.Generator,
    *,
    bits_stored: int | None = None,
    ranges: ImagingRanges | None = None,
) -> ImagingParams:
    """Draw one view's imaging parameters, from easy (high dose, dense contrast, little
    clutter) to hard. ``ranges`` (None: generator version 1's) holds the ranges that
    differ between generator versions; the version-1 values and their reasons:

    * Effective energy 50-65 keV (cardiac cine runs at 70-90 kVp with Cu filtration).
      Iodine concentration in the lumen 120-320 mgI/ml (300-370 mgI/ml contrast diluted
      by blood during a hand injection), so mu_I = 0.08-0.39 /mm.
    * Fill: arteries 0.55-1.0 of that (inflow mixing, frame in the cycle), catheter
      0.85-1.0 (undiluted contrast in the catheter).
    * Detected counts behind the patient 130-650 quanta per pixel (log-uniform): 1/sqrt(N)
      = 4-9 % before the detector PSF, 2-5 % per pixel after it (the PSF averages over
      ~4-10 pixels of noise), as cine detector doses (~0.1-0.2 uGy/frame) give.
    * Focal spot 0.3-1.0 mm; detector PSF 0.5-1.0 px (Gaussian 70 %, exponential tails 30 %).
    * Vignetting 0-30 % corner loss, heel 0-8 %; collimation: none in 25 % of views,
      otherwise 0.5-6 % blocked on each side with probability 0.7, octagonal corners in
      30 %, blade penumbra 1-4 px, transmission 0.5-4 %.
    * Scatter-to-primary 0.3-1.2 behind the grid; clutter 0.3-1.6.
    * Display: DRC 0.5-0.85 (sigma 20-50 px), window at the 0.2-1 % / 99-99.8 % quantiles
      widened 30-50 % each side, in-field median at display level 0.4-0.48 (the real
      clinical frames: 0.41-0.44, p5-p95 spread 0.29-0.35), gamma 0.9-1.12, unsharp
      masking 0.2-1.0 (sigma 2-8 px) in 80 % of views.
    * 8 bits stored in 80 % of views, 12 in 20 % (both occur in real XA files).
    """
    r = ranges or ImagingRanges()
    energy = rng.uniform(50.0, 65.0)
    conc_mg_ml = rng.uniform(*r.iodine_mg_ml)
    mu_i = conc_mg_ml / 1000.0 * mass_attenuation("iodine", energy) / 10.0
    if bits_stored is None:
        bits_stored = 8 if rng.random() < 0.8 else 12
    if rng.random() < 0.25:
        coll = det.Collimation()
    else:
        side = rng.uniform(0.005, 0.06, size=4) * (rng.random(4) < 0.7)
        coll = det.Collimation(
            left=float(side[0]),
            right=float(side[1]),
            top=float(side[2]),
            bottom=float(side[3]),
            chamfer=float(rng.uniform(0.04, 0.1)) if rng.random() < 0.3 else 0.0,
            softness_px=float(rng.uniform(1.0, 4.0)),
            transmission=float(rng.uniform(0.005, 0.04)),
        )
    disp = det.Display(
        drc=float(rng.uniform(0.5, 0.85)),
        drc_sigma_px=float(rng.uniform(20.0, 50.0)),
        window_lo_q=float(rng.uniform(0.002, 0.01)),
        window_hi_q=float(rng.uniform(0.99, 0.998)),
        window_margin=float(rng.uniform(*r.window_margin)),
        window_level=float(rng.uniform(*r.window_level)),
        gamma=float(rng.uniform(0.9, 1.12)),
        unsharp_amount=float(rng.uniform(*r.unsharp_amount)) if rng.random() < 0.8 else 0.0,
        unsharp_sigma_px=float(rng.uniform(*r.unsharp_sigma_px)),
    )
    n_lo, n_hi = r.counts_behind_patient
    params = ImagingParams(
        energy_kev=float(energy),
        mu_iodine_per_mm=float(mu_i),
        fill_artery=float(rng.uniform(*r.fill_artery)),
        fill_catheter=float(rng.uniform(0.85, 1.0)),
        catheter_wall_mu_per_mm=float(rng.uniform(0.02, 0.08)),
        counts_behind_patient=float(np.exp(rng.uniform(np.log(n_lo), np.log(n_hi)))),
        focal_spot_mm=float(rng.uniform(0.3, 1.0)),
        detector_psf="gaussian" if rng.random() < 0.7 else "exponential",
        detector_psf_px=float(rng.uniform(0.5, 1.0)),
        vignetting=float(rng.uniform(0.0, 0.3)),
        heel=float(rng.uniform(0.0, 0.08)),
        heel_angle_rad=float(rng.uniform(0.0, 2 * math.pi)),
        collimation=coll,
        clutter=float(rng.uniform(*r.clutter)),
        spr=float(rng.uniform(*r.spr)),
        electronic_noise=float(rng.uniform(0.5, 3.0)),
        display=disp,
        bits_stored=int(bits_stored),
        texture_weights=r.texture_weights,
    )
    return _version2_draws(rng, r, params)


def _version2_draws(
    rng: np.random.Generator, r: ImagingRanges, params: ImagingParams
) -> ImagingParams:
    """The draws generator version 2 adds, after all of version 1's (none with version
    1's ranges): circular field, black shutter, unfilled catheter."""
    if r.circular_share > 0 and rng.random() < r.circular_share:
        c = params.collimation
        # A round field: the blades open (their edges would lie in the dark corners).
        circ = replace(c, left=0.0, right=0.0, top=0.0, bottom=0.0, chamfer=0.0)
        circ = replace(circ, circle=float(rng.uniform(*r.circle_radius)))
        params = replace(params, collimation=circ)
    if r.shutter_level is not None:
        disp = replace(params.display, shutter_level=float(rng.uniform(*r.shutter_level)))
        params = replace(params, display=disp)
    if r.catheter_unfilled_share > 0 and rng.random() < r.catheter_unfilled_share:
        params = replace(params, fill_catheter=float(rng.uniform(0.0, 0.15)))
    return params


# -- rendering ---------------------------------------------------------------------------


def vessel_chords(vessel: Vessel, geometry: ViewGeometry, supersample: int = 1) -> np.ndarray:
    """Path length (H, W) mm of each pixel ray inside the vessel's lumen."""
    return kernels.tube_path_lengths(
        geometry.P,
        vessel.lumen_centres,
        vessel.semi_axes,
        vessel.major_dir,
        geometry.width,
        geometry.height,
        supersample=supersample,
    )


def vessel_line_integral(
    anatomy: Anatomy, geometry: ViewGeometry, params: ImagingParams
) -> tuple[np.ndarray, np.ndarray | None]:
    """Contrast line integral (H, W) float32 of all vessels and the catheter, and the SOI
    vessel's chord map (mm) (None when the SOI vessel index is out of range)."""
    H, W = geometry.height, geometry.width
    total = np.zeros((H, W), dtype=np.float32)
    soi_chord = None
    for i, v in enumerate(anatomy.vessels):
        chord = vessel_chords(v, geometry, params.supersample)
        fill = params.fill_catheter if v.kind == "catheter" else params.fill_artery
        total += (params.mu_iodine_per_mm * fill * v.iodine * chord).astype(np.float32)
        if v.kind == "catheter" and params.catheter_wall_mu_per_mm > 0:
            wall_v = _catheter_wall(v)
            outer = vessel_chords(wall_v, geometry, params.supersample)
            total += (params.catheter_wall_mu_per_mm * np.maximum(outer - chord, 0.0)).astype(
                np.float32
            )
        if i == anatomy.soi.vessel:
            soi_chord = chord
    return total, soi_chord


def _catheter_wall(v: Vessel) -> Vessel:
    """The catheter's outer surface: lumen plus a 0.25 mm wall (a 6 F catheter is 2 mm
    outside, ~1.5 mm lumen)."""
    return replace(v, semi_axes=v.semi_axes + 0.25, offset=v.offset)


def _penumbra_px(geometry: ViewGeometry, focal_spot_mm: float, anatomy: Anatomy) -> float:
    """Focal-spot penumbra (pixels, FWHM at the detector) for objects at the SOI depth."""
    v = anatomy.vessels[anatomy.soi.vessel] if anatomy.vessels else None
    X = v.points[len(v.points) // 2][None] if v is not None else np.zeros((1, 3))
    z = float(geometry.depth_mm(X)[0])
    fu, fv = geometry.focal_px
    if geometry.sid_mm is not None and geometry.pixel_spacing_mm is not None:
        sid = geometry.sid_mm
        ps = 0.5 * sum(geometry.pixel_spacing_mm)
    else:  # explicit matrix: the focal length in pixels is SID / spacing; assume 0.3 mm
        ps = 0.3
        sid = 0.5 * (fu + fv) * ps
    return focal_spot_mm * max(sid - z, 0.0) / max(z, 1e-6) / ps


def render_view(
    anatomy: Anatomy,
    geometry: ViewGeometry,
    params: ImagingParams,
    rng: np.random.Generator,
) -> RenderedView:
    """Render one XA view of ``anatomy`` through ``geometry`` (see the module docstring).

    Deterministic for a given rng state (all randomness is drawn from ``rng``; the chest
    geometry from the anatomy). Returns stored values in [0, 2**bits_stored - 1].
    """
    H, W = geometry.height, geometry.width
    mat = materials_at(params.energy_kev)
    rays = Rays.from_matrix(geometry.P, W, H)

    # 1. line integrals
    if params.background:
        L_bg = chest_integral(anatomy, rays, mat, rng, params.clutter, params.texture_weights)
    else:
        L_bg = np.full((H, W), params.unattenuated_line_integral, dtype=np.float32)
    L_v, soi_chord = vessel_line_integral(anatomy, geometry, params)

    # 2. focal-spot blur on the vessel transmission
    T_v = np.exp(-L_v)
    penumbra = _penumbra_px(geometry, params.focal_spot_mm, anatomy)
    if params.blur and penumbra > 0.05:
        T_v = det.blur(T_v, det.gaussian_kernel1d(penumbra / 2.3548))

    # 3. primary counts with AEC
    coll = det.collimation_mask(H, W, params.collimation)
    field_mask = coll > 0.5
    expo = coll
    if params.vignetting > 0 or params.heel > 0:
        expo = expo * det.vignetting(H, W, params.vignetting, params.heel, params.heel_angle_rad)
    T_bg = np.exp(-L_bg)
    med_L = float(np.median(L_bg[::4, ::4][field_mask[::4, ::4]])) if field_mask.any() else 0.0
    n0 = params.counts_behind_patient * math.exp(med_L)
    primary = (n0 * expo) * T_bg * T_v

    # 4. scatter
    if params.spr > 0:
        sigma_px = 60.0 / (0.5 * sum(geometry.pixel_spacing_mm or (0.3, 0.3)))
        scatter = params.spr * det.lowpass(primary, sigma_px)
        expected = primary + scatter
    else:
        expected = primary

    # 5. quanta, detector PSF, electronic noise
    counts = det.poisson_counts(expected, rng) if params.quantum_noise else expected
    psf = det.psf_kernel1d(params.detector_psf, params.detector_psf_px)
    if params.blur:
        counts = det.blur(counts, psf)
    if params.electronic_noise > 0 and params.quantum_noise:
        counts = counts + params.electronic_noise * rng.standard_normal((H, W), dtype=np.float32)

    # 6. log, display, quantisation
    log_img = np.log(np.maximum(counts, 0.5)).astype(np.float32)
    disp01, (lo, hi) = det.display_transform(log_img, field_mask, params.display)
    if params.display.shutter_level is not None and params.collimation.active:
        disp01 = det.black_shutter(disp01, coll, params.collimation, params.display.shutter_level)
    stored = det.quantise(disp01, params.bits_stored)
    image = (stored.astype(np.float32) / float((1 << params.bits_stored) - 1)).astype(np.float32)

    stats = _stats(expected, field_mask, n0, med_L, mat, penumbra, psf, params, (lo, hi))
    if soi_chord is not None:
        stats.update(_soi_cnr(image, soi_chord, field_mask))
    return RenderedView(stored=stored, bits_stored=params.bits_stored, image=image, stats=stats)


def _stats(
    expected: np.ndarray,
    field_mask: np.ndarray,
    n0: float,
    med_L: float,
    mat: Materials,
    penumbra: float,
    psf: np.ndarray,
    params: ImagingParams,
    window: tuple[float, float],
) -> dict[str, Any]:
    """Physical statistics of a view (JSON-ready floats)."""
    inside = expected[::4, ::4][field_mask[::4, ::4]]
    med_counts = float(np.median(inside)) if inside.size else float(np.median(expected))
    noise_factor = math.sqrt(det.noise_power_factor(psf)) if params.blur else 1.0
    sigma_log = noise_factor / math.sqrt(max(med_counts, 1e-9)) if params.quantum_noise else 0.0
    return {
        "n0_per_pixel": float(n0),
        "mean_counts": float(inside.mean()) if inside.size else 0.0,
        "median_counts": med_counts,
        "median_line_integral": med_L,
        "water_equivalent_mm": med_L / mat.tissue * 1.06,
        "noise_sigma_log": sigma_log,
        "noise_sigma_display": sigma_log / max(window[1] - window[0], 1e-9),
        "window_log": [float(window[0]), float(window[1])],
        "focal_penumbra_px": float(penumbra),
        "mu_iodine_per_mm": params.mu_iodine_per_mm,
    }


def _soi_cnr(image: np.ndarray, soi_chord: np.ndarray, field_mask: np.ndarray) -> dict[str, Any]:
    """Contrast-to-noise ratio of the SOI vessel: mean of a 3-8 px ring minus the lumen
    mean (pixels with chord > half the vessel's maximum), over the noise level."""
    from angio_deploy.synth.realism import vessel_cnr

    if soi_chord.max() <= 0:
        return {"soi_cnr": None}
    mask = (soi_chord > 0.5 * float(soi_chord.max())) & field_mask
    if mask.sum() < 10:
        return {"soi_cnr": None}
    return {"soi_cnr": vessel_cnr(image, mask)["cnr"]}
