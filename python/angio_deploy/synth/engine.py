"""The synthetic angiography engine: one seed in, one case folder with truth out.

Each case is a pure function of (generator version, seed): all randomness comes from a
numpy Generator seeded with both, so the same seed gives byte-identical files for a given
version. ``synthesise(out_dir, count, seed, version=...)`` writes cases with seeds
seed, seed + 1, ..., seed + count - 1 as folders ``case_<seed>``. The versions and their
distributions are :mod:`angio_deploy.synth.profiles`; the default, version 1, is the one
every published number was measured on.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import uid as dcm_uid
from scipy.spatial import cKDTree

from angio_deploy._version import __version__
from angio_deploy.errors import InputError
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.jsonio import dumps
from angio_deploy.stitching import union_tubes

from .anatomy import generate_anatomy
from .model import Anatomy, SegmentOfInterest, Vessel
from .profiles import GENERATOR_VERSION, GENERATOR_VERSIONS, GeneratorProfile, generator_profile
from .truth import Rings, lumen_mask, ring_mesh, segment_rings, segment_slice
from .views import ViewSpec, draw_view_pair
from .xray import ImagingParams, draw_imaging_params, render_view

log = logging.getLogger(__name__)

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_VERSIONS",
    "SynthCase",
    "case_rng",
    "generate_case",
    "synthesise",
    "write_case",
]
#: Margin (pixels) the segment of interest keeps from the image border in both views.
BORDER_MARGIN_PX = 24.0
#: The segment's projected length must be at least this share of its true length
#: (times magnification): clinicians pick views that do not foreshorten it badly.
MIN_FORESHORTENING = 0.45
#: SOI click noise (pixels, standard deviation; clipped at 3 sigma).
CLICK_NOISE_PX = 1.2
#: Transfer syntaxes of the written views, with their shares.
TRANSFER_SYNTAXES = (
    (dcm_uid.JPEGLSLossless, 0.6),
    (dcm_uid.RLELossless, 0.2),
    (dcm_uid.ExplicitVRLittleEndian, 0.2),
)

ProgressCallback = Callable[[int, int], None]


@dataclass(eq=False)
class SynthCase:
    """Everything about one synthetic case, in memory."""

    seed: int
    anatomy: Anatomy
    views: tuple[ViewSpec, ViewSpec]
    stored: tuple[np.ndarray, np.ndarray]
    bits_stored: tuple[int, int]
    transfer_syntax: str
    soi_points: list[dict[str, list[float]]]
    side_points: list[list[dict[str, list[float]]]]
    rings: Rings
    side_rings: list[Rings]
    masks: tuple[np.ndarray, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = GENERATOR_VERSION

    @property
    def case_id(self) -> str:
        return f"case_{self.seed:07d}"


def case_rng(seed: int, version: str | int | None = None) -> np.random.Generator:
    """The generator of case ``seed`` of generator ``version`` (None: the default)."""
    key = generator_profile(version).seed_key
    return np.random.default_rng(np.random.SeedSequence([key, int(seed)]))


def _segment_points(anatomy: Anatomy, soi: SegmentOfInterest) -> np.ndarray:
    v = anatomy.vessels[soi.vessel]
    return segment_slice(v, soi.s_start_mm, soi.s_end_mm)["centres"]


def _views_acceptable(anatomy: Anatomy, specs: tuple[ViewSpec, ViewSpec]) -> bool:
    segments = [anatomy.soi, *anatomy.side_sois]
    for spec in specs:
        g = spec.true
        for soi in segments:
            pts = _segment_points(anatomy, soi)
            if not g.contains(g.project(pts), margin_px=BORDER_MARGIN_PX).all():
                return False
        pts = _segment_points(anatomy, anatomy.soi)
        uv = g.project(pts)
        projected = float(np.linalg.norm(np.diff(uv, axis=0), axis=1).sum())
        ideal = anatomy.soi.length_mm / float(g.pixel_size_at_mm(pts.mean(axis=0))[0])
        if projected < MIN_FORESHORTENING * ideal:
            return False
    return True


def _overlap(anatomy: Anatomy, g: ViewGeometry) -> dict[str, float]:
    """Share of the SOI's projected centreline covered by other vessels in this view."""
    soi_v = anatomy.vessels[anatomy.soi.vessel]
    piece = segment_slice(soi_v, anatomy.soi.s_start_mm, anatomy.soi.s_end_mm)
    uv = g.project(piece["centres"])
    px = g.pixel_size_at_mm(piece["centres"].mean(axis=0))[0]
    r_soi = np.sqrt(piece["semi_axes"].prod(axis=1)) / px
    covered = np.zeros(len(uv), dtype=bool)
    for k, v in enumerate(anatomy.vessels):
        if k == anatomy.soi.vessel or any(k == s.vessel for s in anatomy.side_sois):
            continue
        if v.parent == anatomy.soi.vessel and v.parent_s_mm is not None:
            # Branches are joined to the SOI at their origin; only count their course.
            keep = v.arc_lengths > 3.0 * float(v.radius[0]) + 2.0
        else:
            keep = np.ones(len(v.points), dtype=bool)
        if not keep.any():
            continue
        ov = g.project(v.points[keep])
        ok = np.isfinite(ov).all(axis=1)
        if not ok.any():
            continue
        tree = cKDTree(ov[ok])
        rv = float(v.radius[keep].max()) / px
        d, _ = tree.query(uv, k=1)
        covered |= d < (r_soi + rv)
    return {"overlap_fraction": float(covered.mean())}


def _fit_circular_field(params: ImagingParams, spec: ViewSpec, anatomy: Anatomy) -> ImagingParams:
    """Widen a circular field of view until every segment of interest lies inside it by
    :data:`BORDER_MARGIN_PX`, as the rectangular image border is checked (the operator
    keeps the segment in the field); other parameters unchanged, no random draw."""
    c = params.collimation
    if c.circle <= 0:
        return params
    g = spec.true
    H, W = g.height, g.width
    need = 0.0
    for soi in (anatomy.soi, *anatomy.side_sois):
        uv = g.project(_segment_points(anatomy, soi))
        r = np.hypot(uv[:, 0] - (W - 1) / 2, uv[:, 1] - (H - 1) / 2)
        need = max(need, float(r.max()) + BORDER_MARGIN_PX)
    circle = need / (0.5 * min(H, W))
    if circle <= c.circle:
        return params
    return replace(params, collimation=replace(c, circle=circle))


def _click(rng: np.random.Generator, uv: np.ndarray) -> list[float]:
    noise = np.clip(rng.normal(0.0, CLICK_NOISE_PX, 2), -3 * CLICK_NOISE_PX, 3 * CLICK_NOISE_PX)
    return [round(float(x), 1) for x in uv + noise]


def generate_case(
    seed: int, *, size: int | None = None, version: str | int | None = None
) -> SynthCase:
    """Generate synthetic case ``seed`` of generator ``version`` ("1", "2"; None: the
    default, :data:`GENERATOR_VERSION`) in memory (see module docstring). ``size``
    forces the image side (px) instead of drawing it."""
    profile: GeneratorProfile = generator_profile(version)
    rng = case_rng(seed, profile.version)
    for _attempt in range(20):
        anatomy = generate_anatomy(rng, params=profile.anatomy)
        soi_vessel = anatomy.vessels[anatomy.soi.vessel]
        for _ in range(20):
            specs = draw_view_pair(
                rng, anatomy.tree, soi_vessel.name, size=size, ranges=profile.views
            )
            if _views_acceptable(anatomy, specs):
                break
        else:
            continue
        break
    else:  # pragma: no cover - acceptance is high
        raise RuntimeError(f"seed {seed}: no acceptable anatomy/view combination")

    rendered = []
    params_all = []
    for spec in specs:
        params = draw_imaging_params(rng, ranges=profile.imaging)
        params = _fit_circular_field(params, spec, anatomy)
        params_all.append(params)
        rendered.append(render_view(anatomy, spec.true, params, rng))

    ts_names = [t for t, _ in TRANSFER_SYNTAXES]
    ts_p = np.array([p for _, p in TRANSFER_SYNTAXES])
    transfer_syntax = ts_names[int(rng.choice(len(ts_names), p=ts_p / ts_p.sum()))]

    def endpoints(soi: SegmentOfInterest) -> np.ndarray:
        piece = segment_slice(anatomy.vessels[soi.vessel], soi.s_start_mm, soi.s_end_mm)
        return piece["centres"][[0, -1]]

    soi_points = []
    for spec in specs:
        uv = spec.true.project(endpoints(anatomy.soi))
        soi_points.append({"start": _click(rng, uv[0]), "end": _click(rng, uv[1])})
    side_points = []
    for side in anatomy.side_sois:
        per_view = []
        for spec in specs:
            uv = spec.true.project(endpoints(side))
            per_view.append({"start": _click(rng, uv[0]), "end": _click(rng, uv[1])})
        side_points.append(per_view)

    rings = segment_rings(soi_vessel, anatomy.soi)
    side_rings = [segment_rings(anatomy.vessels[s.vessel], s) for s in anatomy.side_sois]
    pieces = [
        segment_slice(anatomy.vessels[s.vessel], s.s_start_mm, s.s_end_mm)
        for s in (anatomy.soi, *anatomy.side_sois)
    ]
    masks = tuple(lumen_mask(spec.true, pieces) for spec in specs)

    case = SynthCase(
        seed=seed,
        anatomy=anatomy,
        views=specs,  # type: ignore[arg-type]
        stored=(rendered[0].stored, rendered[1].stored),
        bits_stored=(rendered[0].bits_stored, rendered[1].bits_stored),
        transfer_syntax=transfer_syntax,
        soi_points=soi_points,
        side_points=side_points,
        rings=rings,
        side_rings=side_rings,
        masks=masks,  # type: ignore[arg-type]
        version=profile.version,
    )
    case.meta = _meta(case, params_all, rendered)
    return case


def _lesions_in_soi(vessel: Vessel, soi: SegmentOfInterest) -> list[dict[str, Any]]:
    out = []
    for les in vessel.lesions:
        if soi.s_start_mm <= les.center_s_mm <= soi.s_end_mm:
            d = les.to_dict()
            d["position_from_start_mm"] = les.center_s_mm - soi.s_start_mm
            out.append(d)
    return out


def _meta(case: SynthCase, params_all, rendered) -> dict[str, Any]:
    a = case.anatomy
    v = a.vessels[a.soi.vessel]
    return {
        "generator": "angio-deploy synth",
        "generator_version": case.version,
        "package_version": __version__,
        "seed": case.seed,
        "tree": a.tree,
        "vessel": v.name,
        "soi": {
            "vessel": v.name,
            "s_start_mm": a.soi.s_start_mm,
            "s_end_mm": a.soi.s_end_mm,
            "length_mm": a.soi.length_mm,
        },
        "stenoses": _lesions_in_soi(v, a.soi),
        "reference_radius_mm": case.rings.reference_radius.tolist(),
        "side_branches": [
            {
                "vessel": a.vessels[s.vessel].name,
                "length_mm": s.length_mm,
                "reference_radius_mm": r.reference_radius.tolist(),
            }
            for s, r in zip(a.side_sois, case.side_rings, strict=True)
        ],
        "bifurcations": [
            {
                "parent": a.vessels[b.parent].name,
                "s_mm": b.s_mm,
                "daughters": [a.vessels[d].name for d in b.daughters],
                "diameters_mm": list(b.diameters_mm),
                "law": b.law,
                "exponent": b.exponent,
                "angle_deg": b.angle_deg,
            }
            for b in a.bifurcations
        ],
        "views": [
            {
                **spec.to_dict(),
                "imaging": p.to_dict(),
                "stats": r.stats,
                "bits_stored": r.bits_stored,
                **_overlap(a, spec.true),
            }
            for spec, p, r in zip(case.views, params_all, rendered, strict=True)
        ],
        "transfer_syntax": str(dcm_uid.UID(case.transfer_syntax).name),
        "anatomy": a.meta,
    }


def write_case(case: SynthCase, case_dir: str | Path) -> Path:
    """Write a case folder (CASE_FORMAT.md) with truth/, atomically; returns its path."""
    from PIL import Image

    from angio_deploy.io.atomic import atomic_output_dir
    from angio_deploy.io.centreline_csv import write_centreline_csv
    from angio_deploy.io.dicom.writer import write_xa
    from angio_deploy.io.mesh_io import write_ply

    case_dir = Path(case_dir)
    with atomic_output_dir(case_dir) as tmp:
        views = []
        for k, spec in enumerate(case.views):
            name = f"view_{spec.name}.dcm"
            write_xa(
                tmp / name,
                case.stored[k],
                spec.header,
                bits_stored=case.bits_stored[k],
                transfer_syntax=case.transfer_syntax,
                uid_seed=f"angio-deploy-synth-{case.version}-{case.seed}-{spec.name}",
                metadata={"PatientID": case.case_id, "PatientName": "Synthetic^Case"},
            )
            views.append({"image": name, "soi": case.soi_points[k]})
        doc: dict[str, Any] = {"format": "angio-case/1", "id": case.case_id, "views": views}
        if case.side_points:
            doc["side_branches"] = [{"views": pv} for pv in case.side_points]
        if case.version != "1":
            # Provenance for later versions only: version-1 folders stay byte-identical.
            doc["generator"] = {"name": "angio-deploy synth", "version": case.version}
        (tmp / "case.json").write_text(dumps(doc), encoding="utf-8")

        truth = tmp / "truth"
        truth.mkdir()
        ref = ring_reference(case)
        verts, faces = ring_mesh(case.rings, reference=ref)
        write_ply(truth / "mesh.ply", verts, faces)
        write_centreline_csv(
            truth / "centreline.csv",
            case.rings.centres,
            case.rings.radius,
            ellipse=case.rings.ellipses(ref),
        )
        for k, spec in enumerate(case.views):
            Image.fromarray(case.masks[k] * 255).save(truth / f"mask_{spec.name}.png")
        if case.side_rings:
            joined = joined_truth_mesh(case)
            write_ply(truth / "mesh_joined.ply", *joined)
            for j, r in enumerate(case.side_rings):
                write_ply(truth / f"side_{j}.ply", *ring_mesh(r, reference=ref))
        (truth / "meta.json").write_text(dumps(case.meta), encoding="utf-8")
    return case_dir


def ring_reference(case: SynthCase) -> np.ndarray:
    """Direction that fixes the ring vertex order of truth meshes: view A's viewing
    direction (source to detector; view A's header is exact), as the pipeline uses."""
    return case.views[0].header.direction


def joined_truth_mesh(case: SynthCase) -> tuple[np.ndarray, np.ndarray]:
    """The joined truth: Boolean union of the main and side-branch truth tubes, by the
    same function as the product's mesh_joined (:func:`angio_deploy.stitching.union_tubes`)."""
    ref = ring_reference(case)
    tubes = [ring_mesh(r, reference=ref)[0] for r in [case.rings, *case.side_rings]]
    joined = union_tubes(tubes)
    return joined.vertices, joined.faces


def _one(args: tuple[int, str, int | None, str]) -> str:
    seed, out_dir, size, version = args
    case = generate_case(seed, size=size, version=version)
    return str(write_case(case, Path(out_dir) / case.case_id))


def check_output_dir(out_dir: str | Path, *, overwrite: bool) -> Path:
    """Validate OUT_DIR before anything is written: creatable, writable, empty unless
    ``overwrite``. Raises InputError naming the folder."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise InputError("exists and is not a folder", source=str(out))
        if any(out.iterdir()) and not overwrite:
            raise InputError("is not empty (use --overwrite to write into it)", source=str(out))
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError("is not writable", source=str(out))
    else:
        parent = out.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"cannot be created ({parent} is not writable)", source=str(out))
    return out


def synthesise(
    out_dir: str | Path,
    count: int,
    seed: int,
    *,
    overwrite: bool = False,
    size: int | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    version: str | int | None = None,
) -> list[Path]:
    """Write ``count`` cases (seeds seed .. seed + count - 1) of generator ``version``
    (None: the default, "1") under ``out_dir``.

    Arguments are checked before anything is written. ``workers`` > 1 uses that many
    processes. ``progress(done, total)`` is called after each case.
    """
    if not isinstance(count, int) or count < 0:
        raise InputError(f"must be a non-negative integer, got {count!r}", field="count")
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"must be a non-negative integer, got {seed!r}", field="seed")
    if size not in (None, 512, 1024):
        raise InputError(f"must be 512 or 1024, got {size!r}", field="size")
    try:
        profile = generator_profile(version)
    except ValueError as exc:
        raise InputError(str(exc), field="version") from None
    out = check_output_dir(out_dir, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed + i, str(out), size, profile.version) for i in range(count)]
    paths: list[Path] = []
    if workers <= 1 or count <= 1:
        for job in jobs:
            paths.append(Path(_one(job)))
            if progress:
                progress(len(paths), count)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for p in pool.map(_one, jobs, chunksize=max(1, math.ceil(count / (8 * workers)))):
                paths.append(Path(p))
                if progress:
                    progress(len(paths), count)
    log.info(
        "wrote %d synthetic cases (generator version %s) under %s", len(paths), profile.version, out
    )
    return paths
