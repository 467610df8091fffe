"""The Python API vendors embed: load the models once, reconstruct many cases.

    from angio_deploy.api import Reconstructor

    rec = Reconstructor()                       # shipped segmenter, ONNX Runtime (CPU/GPU)
    result = rec.reconstruct("path/to/case")    # a case folder (CASE_FORMAT.md)
    result.write("path/to/case/out")            # meshes, centreline, report, overlays

A :class:`Reconstructor` is thread-safe: ONNX Runtime sessions are shared and their runs
are thread-safe, and every other stage works on per-call data. Pass ``progress`` to get
``(stage, seconds)`` after each stage.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy._version import __version__
from angio_deploy.errors import ImplausibleResultError
from angio_deploy.io.case import Case, load_case

from .pipeline.branches import attach, bifurcation_report
from .pipeline.mi import SkippedSegment, branch_error, initialise_segments, summary
from .pipeline.qca import BranchQCA, branch_qca
from .pipeline.quality import implausibilities, reprojection_dice
from .pipeline.result import MIResult, Progress
from .pipeline.segmenters import FrangiSegmenter, OnnxSegmenter, Segmenter
from .stitching import JoinedMesh, union_tubes

log = logging.getLogger(__name__)

SEGMENTERS = ("network", "frangi")


@dataclass(eq=False)
class Reconstruction:
    """One reconstructed case: the final main-segment mesh (``result``: surface-refined
    when SR ran, else the mesh initialisation), its mesh initialisation ``mi``, the side
    branches (final, attached to the main segment), the joined watertight mesh when there
    are side branches, the QCA of every branch, the branches left out, and the report."""

    case: Case
    mi: MIResult
    report: dict[str, Any]
    result: MIResult | None = None
    branches: tuple[MIResult, ...] = ()
    joined: JoinedMesh | None = None
    qca: tuple[BranchQCA, ...] = ()
    skipped: tuple[SkippedSegment, ...] = ()

    def __post_init__(self) -> None:
        if self.result is None:
            self.result = self.mi

    @property
    def vertices(self):
        """(6000, 3) main-segment mesh vertices, world mm (LPS), ring-major."""
        return self.result.vertices

    @property
    def faces(self):
        return self.result.faces

    def write(self, out_dir: str | Path) -> Path:
        """Write all outputs (CASE_FORMAT.md) into ``out_dir`` atomically.

        ``out_dir`` may be new, empty or an earlier result, never the case folder or a
        folder containing it: :class:`~angio_deploy.errors.OutputError` (exit 73)."""
        from .pipeline.outputs import write_outputs

        return write_outputs(
            out_dir,
            self.result,
            self.report,
            case_dir=self.case.path,
            branches=self.branches,
            joined=self.joined,
            qca=self.qca,
        )


class Reconstructor:
    """Loads the models once; :meth:`reconstruct` runs one case (thread-safe).

    ``segmenter``: "network" (the shipped U-Net through ONNX Runtime) or "frangi" (the
    classical baseline, needs scikit-image), or any object with the
    :class:`~angio_deploy.pipeline.segmenters.Segmenter` interface. ``provider``: ONNX
    Runtime provider ("auto", "cpu", "cuda", "tensorrt"). ``surface``: load the surface
    refinement models -- None (default) when they are shipped, True to require them
    (ModelFileError otherwise), False never. ``models_dir``: another model folder.
    """

    def __init__(
        self,
        segmenter: str | Segmenter = "network",
        *,
        provider: str = "auto",
        surface: bool | None = None,
        models_dir: str | Path | None = None,
    ):
        from .models import ModelFileError
        from .pipeline.sr import SurfaceRefiner

        if isinstance(segmenter, str):
            if segmenter == "network":
                segmenter = OnnxSegmenter(folder=models_dir, provider=provider)
            elif segmenter == "frangi":
                segmenter = FrangiSegmenter()
            else:
                raise ValueError(f"unknown segmenter {segmenter!r}; use one of {SEGMENTERS}")
        self.segmenter = segmenter
        self.refiner: SurfaceRefiner | None = None
        self.surface_note: str | None = None
        if surface is False:
            self.surface_note = "not requested"
        elif surface is None and not isinstance(segmenter, OnnxSegmenter):
            # SR was trained on the network's probabilities: another segmenter's are no
            # input it knows. surface=True overrides (diagnostics).
            self.surface_note = (
                f"surface refinement needs the network segmenter, not {segmenter.name}"
            )
        else:
            try:
                self.refiner = SurfaceRefiner(folder=models_dir, provider=provider)
            except ModelFileError as exc:
                if surface:
                    raise
                self.surface_note = "the surface refinement models are not shipped"
                log.info("surface refinement unavailable: %s", exc)

    def reconstruct(
        self,
        case: str | Path | Case,
        *,
        refine_geometry: bool = True,
        refine_surface: bool = True,
        force: bool = False,
        skip_failed_branches: bool = False,
        progress: Progress | None = None,
    ) -> Reconstruction:
        """Reconstruct a case folder (or an already loaded :class:`Case`): the main segment
        and every side branch, joined into one watertight mesh.

        ``refine_geometry`` refines view B's geometry against view A (GEOMETRY.md) once,
        from every segment's correspondences, before triangulating. ``refine_surface``
        runs surface refinement on each segment's mesh initialisation when its models are
        loaded (see ``surface``; the stages are those shipped: the ring-profile network,
        then the paper's graph network if present); the report says whether it ran, which
        stages, how far it moved the surface and, if it did not run, why.

        A side branch that cannot be reconstructed raises InputError naming it
        (``side_branches[k]``), or with ``skip_failed_branches`` is left out and reported.
        An obviously wrong result (:mod:`angio_deploy.pipeline.quality`: the mesh covers
        the vessel in neither view, exploded rings) raises
        :class:`~angio_deploy.errors.ImplausibleResultError`; ``force`` returns it with
        the problems as warnings instead.
        """
        t0 = time.perf_counter()
        if not isinstance(case, Case):
            case = load_case(case)
        t_load = time.perf_counter() - t0
        if progress is not None:
            progress("load", t_load)
        segs = initialise_segments(
            case,
            self.segmenter,
            geometry_refinement=refine_geometry,
            skip_failed_branches=skip_failed_branches,
            progress=progress,
        )
        skipped = list(segs.skipped)
        mi = segs.main
        timings: dict[str, float] = {"load": t_load, **mi.timings_s}
        finals = []
        for seg in segs.results:
            out = seg
            if refine_surface and self.refiner is not None:
                out = self.refiner.refine(seg, progress=progress)
                for k, v in out.timings_s.items():
                    if k not in seg.timings_s:
                        timings[k] = timings.get(k, 0.0) + v
            finals.append(out)
        result = finals[0]

        t_q = time.perf_counter()
        dice = reprojection_dice(result)
        problems = implausibilities(result, dice)
        if problems and not force:
            raise ImplausibleResultError(
                "; ".join(problems) + " -- not written (--force writes it anyway)",
                source=str(case.path),
            )
        implausible = [f"IMPLAUSIBLE RESULT, written because forced: {p}" for p in problems]
        branch_info: list[dict[str, Any]] = []
        branches: list[MIResult] = []
        attachments = []
        for b_mi, b in zip(segs.results[1:], finals[1:], strict=True):
            b_dice = reprojection_dice(b)
            b_problems = implausibilities(b, b_dice)
            if b_problems and not force:
                err = branch_error(b.branch, "; ".join(b_problems), source=str(case.path))
                if not skip_failed_branches:
                    raise err
                log.warning("%s", err)
                skipped.append(SkippedSegment(b.branch, "; ".join(b_problems)))
                continue
            implausible += [
                f"IMPLAUSIBLE {b.branch}, written because forced: {p}" for p in b_problems
            ]
            moved, att = attach(result, b)
            branches.append(moved)
            attachments.append(att)
            branch_info.append(
                {
                    "branch": b.branch,
                    "reprojection_dice": b_dice,
                    "surface_refinement": b is not b_mi,
                    **summary(moved),
                }
            )
        timings["quality"] = time.perf_counter() - t_q

        t_s = time.perf_counter()
        joined = None
        if branches:
            joined = union_tubes([result.vertices, *(b.vertices for b in branches)])
        qca = [branch_qca(result.centreline_mm, result.radius_mm, result.geometries)]
        qca += [
            branch_qca(b.centreline_mm, b.radius_mm, b.geometries, branch=b.branch)
            for b in branches
        ]
        bifurcations = [
            bifurcation_report(result, b, qca[0], q, att)
            for b, q, att in zip(branches, qca[1:], attachments, strict=True)
        ]
        timings["stitch_qca"] = time.perf_counter() - t_s

        surface: dict[str, Any] = {"applied": result is not mi}
        if result is mi:
            surface["reason"] = "not requested" if not refine_surface else self.surface_note
        else:
            # How far SR moved the MI surface, and whether the views agree better with it:
            # a reader sees at once when SR made a large or an unhelpful change. Vertex by
            # vertex: an upper bound on the surface's move (rebuilt rings may also turn a
            # little about the axis, which moves vertices along the same surface).
            moved_mm = np.linalg.norm(result.vertices - mi.vertices, axis=1)
            surface["displacement_mm"] = {
                "mean": float(moved_mm.mean()),
                "p95": float(np.percentile(moved_mm, 95)),
                "max": float(moved_mm.max()),
            }
            surface["reprojection_dice_before"] = reprojection_dice(mi)
        timings["total"] = time.perf_counter() - t0
        report = self._report(case, result, dice, timings, refine_geometry, surface)
        report["qca"] = {
            "branches": [q.to_dict() for q in qca],
            "bifurcations": bifurcations,
        }
        report["branches"] = branch_info + [
            {"branch": s.name, "skipped": True, "reason": s.reason} for s in skipped
        ]
        for b in branches:
            report["warnings"].extend(b.warnings)
        for s in skipped:
            report["warnings"].append(f"{s.name} left out (--skip-failed-branches): {s.reason}")
        if joined is not None:
            report["joined"] = joined.to_dict()
            report["outputs"]["mesh_joined.ply"] = "main and side branches joined (watertight)"
            report["outputs"]["mesh_joined.stl"] = "the same joined mesh as STL"
            for b in branches:
                report["outputs"][f"{b.branch}.ply"] = f"{b.branch}: its own tube, 100 x 60 rings"
        report["warnings"].extend(implausible)
        return Reconstruction(
            case=case,
            mi=mi,
            report=report,
            result=result,
            branches=tuple(branches),
            joined=joined,
            qca=tuple(qca),
            skipped=tuple(skipped),
        )

    def _report(
        self,
        case: Case,
        mi: MIResult,
        dice,
        timings,
        refine_geometry: bool,
        surface: dict[str, Any],
    ) -> dict[str, Any]:
        views = []
        for v, g in zip(case.views, mi.geometries, strict=True):
            d = v.describe()
            d["geometry_used"] = g.to_dict()
            views.append(d)
        return {
            "format": "angio-report/1",
            "case": str(case.path),
            "id": case.id,
            "versions": {
                "angio_deploy": __version__,
                "python": platform.python_version(),
            },
            "backend": {
                "kernels": kernels.BACKEND,
                **self.segmenter.report(),
                **({"surface_refinement": self.refiner.report()} if self.refiner else {}),
            },
            "stages": {
                "mesh_initialisation": True,
                "geometry_refinement": refine_geometry,
                "surface_refinement": surface["applied"],
            },
            "surface_refinement": surface,
            "views": views,
            "view_separation_deg": case.separation_deg,
            "quality": {"reprojection_dice": dice, **summary(mi)},
            "timings_s": timings,
            "warnings": [*case.warnings, *mi.warnings],
            "outputs": {
                "mesh.ply": "100 rings x 60 vertices, open tube, vertex order kept",
                "mesh.stl": "the same tube with flat end caps (watertight)",
            },
        }
