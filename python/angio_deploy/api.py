"""The Python API vendors embed: load the models once, reconstruct many cases.

    from angio_deploy import Reconstructor, MemoryView, case_from_memory

    rec = Reconstructor(threads=4, intra_op_threads=4)   # shipped segmenter, ONNX Runtime
    rec_out = rec.reconstruct("path/to/case")            # a case folder (CASE_FORMAT.md)
    case = case_from_memory([MemoryView(img_a, soi_a, geometry=geo_a),
                             MemoryView(ds_b, soi_b)], case_id="patient-7")
    rec_out = rec.reconstruct(case)                      # ... or pixels already in memory
    result = rec_out.to_result()                         # typed, immutable (result_types)
    result.main.mesh.ply_bytes()                         # mesh.ply's bytes, no disk
    rec_out.write("path/to/out")                         # meshes, centreline, report, ...

docs/API.md has the complete example. :meth:`Reconstructor.reconstruct` returns a
:class:`Reconstruction`, which holds the pipeline's own objects (what the CLI, evaluate
and batch use); :meth:`Reconstruction.to_result` gives the typed, immutable
:class:`~angio_deploy.result_types.ReconstructionResult` a host application should rely
on (its fields are the public contract; the internal objects may change).

A :class:`Reconstructor` is thread-safe: ONNX Runtime sessions are shared and their runs
are thread-safe, and every other stage works on per-call data. Pass ``progress`` to get
``(stage, seconds)`` after each stage, and ``cancel`` (a :class:`CancelToken`) to stop a
run between stages with :class:`~angio_deploy.errors.Cancelled`. Log records of a run
carry ``case_id`` (:mod:`angio_deploy.case_log`).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy._version import __version__
from angio_deploy.case_log import CaseLogAdapter, case_context, install_record_factory
from angio_deploy.errors import Cancelled, ImplausibleResultError
from angio_deploy.io.case import Case, load_case
from angio_deploy.result_types import (
    QCA,
    Mesh,
    Provenance,
    Quality,
    ReconstructionResult,
    Segment,
    SkippedBranch,
    frozen_array,
    frozen_json,
    report_text,
)
from angio_deploy.topology import N_AROUND, ring_faces

from .pipeline.branches import attach, bifurcation_report, bifurcation_warnings
from .pipeline.mi import SkippedSegment, branch_error, initialise_segments, summary
from .pipeline.qca import BranchQCA, branch_qca
from .pipeline.quality import implausibilities, reprojection_dice
from .pipeline.result import MIResult, Progress
from .pipeline.segmenters import FrangiSegmenter, OnnxSegmenter, Segmenter
from .stitching import JoinedMesh, union_tubes

log = logging.getLogger(__name__)

SEGMENTERS = ("network", "frangi")


class CancelToken:
    """Cancels a run from another thread: :meth:`cancel` sets it, the run checks it
    between stages and raises :class:`~angio_deploy.errors.Cancelled` (exit 130, never
    exit 70); nothing is written. One token may serve many runs."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask every run holding this token to stop at its next stage boundary."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self, source: str | None = None, stage: str | None = None) -> None:
        """Raise :class:`Cancelled` (naming the case and the last stage) when cancelled."""
        if self._event.is_set():
            where = f" after stage {stage!r}" if stage else ""
            raise Cancelled(f"cancelled by the caller{where}", source=source)


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
            case_dir=self.case.folder,  # None for a case built in memory
            branches=self.branches,
            joined=self.joined,
            qca=self.qca,
        )

    def to_result(self) -> ReconstructionResult:
        """The typed, immutable result (:mod:`angio_deploy.result_types`): copies, so
        later changes to this object do not reach it."""
        rep = self.report
        dice = rep["quality"]["reprojection_dice"]
        qca = {q.branch: q for q in self.qca}
        qca_dicts = {d["branch"]: d for d in rep["qca"]["branches"]}
        info = {b["branch"]: b for b in rep.get("branches", []) if not b.get("skipped")}
        main = _segment(self.result, qca[self.result.branch], qca_dicts, dice, rep)
        branches = tuple(
            _segment(
                b, qca[b.branch], qca_dicts, info[b.branch]["reprojection_dice"], info[b.branch]
            )
            for b in self.branches
        )
        joined = None
        if self.joined is not None:
            joined = Mesh(
                name="joined",
                vertices=frozen_array(self.joined.vertices, np.float64),
                faces=frozen_array(self.joined.faces, np.int64),
                closed_faces=frozen_array(self.joined.faces, np.int64),
                vertex_data=frozen_json({}),
                watertight=self.joined.status == "NoError",
            )
        quality = Quality(
            reprojection_dice=tuple(float(x) for x in _dice_values(dice)),
            view_separation_deg=float(rep["view_separation_deg"]),
            details=frozen_json(rep["quality"]),
        )
        provenance = Provenance(
            case_source=self.case.source,
            case_id=self.case.id,
            versions=frozen_json(rep["versions"]),
            backend=frozen_json(rep["backend"]),
            stages=frozen_json(rep["stages"]),
            views=tuple(frozen_json(v) for v in rep["views"]),
            timings_s=frozen_json(rep["timings_s"]),
        )
        return ReconstructionResult(
            case_id=self.case.id,
            main=main,
            branches=branches,
            joined=joined,
            skipped=tuple(SkippedBranch(s.name, s.reason) for s in self.skipped),
            quality=quality,
            warnings=tuple(rep["warnings"]),
            provenance=provenance,
            report_json=report_text(rep),
        )


def _dice_values(dice: Any) -> list[float]:
    """Reprojection Dice per view (a, b) as the report holds it."""
    return [float(x) for x in dice]


def _segment(
    seg: MIResult, q: BranchQCA, qca_dicts: dict[str, Any], dice: Any, info: dict[str, Any]
) -> Segment:
    """A typed :class:`Segment` of one pipeline segment, as the result folder holds it."""
    rings = len(seg.radius_mm)
    d = qca_dicts[q.branch]
    refined = info.get("surface_refinement")
    if isinstance(refined, dict):
        refined = refined.get("applied")
    mesh = Mesh(
        name=seg.branch,
        vertices=frozen_array(seg.vertices, np.float64),
        faces=frozen_array(seg.faces, np.int64),
        closed_faces=frozen_array(ring_faces(rings, N_AROUND, caps=True), np.int64),
        vertex_data=frozen_json({"ring": frozen_array(np.repeat(np.arange(rings), N_AROUND))}),
        watertight=False,
    )
    return Segment(
        name=seg.branch,
        mesh=mesh,
        centreline_mm=frozen_array(seg.centreline_mm, np.float64),
        radius_mm=frozen_array(seg.radius_mm, np.float64),
        qca=QCA(
            branch=q.branch,
            length_mm=float(d["length_mm"]),
            mld_mm=float(d["mld_mm"]),
            mld_position_mm=float(d["mld_position_mm"]),
            reference_diameter_at_mld_mm=float(d["reference_diameter_at_mld_mm"]),
            percent_ds=float(d["percent_ds"]),
            percent_as=float(d["percent_as"]),
            profile_arc_mm=frozen_array(q.arc_mm, np.float64),
            profile_diameter_mm=frozen_array(q.diameter_mm, np.float64),
            profile_reference_mm=frozen_array(q.reference_mm, np.float64),
            details=frozen_json(d),
        ),
        reprojection_dice=tuple(_dice_values(dice)),
        surface_refined=bool(refined),
    )


class _Checkpoint:
    """The progress callback the pipeline gets: forwards to the caller's, then checks the
    cancel token, so every stage boundary is a cancellation point."""

    def __init__(self, progress: Progress | None, cancel: CancelToken | None, source: str):
        self.progress = progress
        self.cancel = cancel
        self.source = source

    def __call__(self, stage: str, seconds: float) -> None:
        if self.progress is not None:
            self.progress(stage, seconds)
        self.check(stage)

    def check(self, stage: str) -> None:
        if self.cancel is not None:
            self.cancel.check(self.source, stage)


def _checked_progress(
    progress: Progress | None, cancel: CancelToken | None, source: str
) -> _Checkpoint:
    return _Checkpoint(progress, cancel, source)


class Reconstructor:
    """Loads the models once; :meth:`reconstruct` runs one case (thread-safe).

    ``segmenter``: "network" (the shipped U-Net through ONNX Runtime) or "frangi" (the
    classical baseline, needs scikit-image), or any object with the
    :class:`~angio_deploy.pipeline.segmenters.Segmenter` interface. ``provider``: ONNX
    Runtime provider ("auto", "cpu", "cuda", "tensorrt"). ``surface``: load the surface
    refinement models -- None (default) when they are shipped, True to require them
    (ModelFileError otherwise), False never. ``models_dir``: another model folder.

    Threads: ``intra_op_threads`` is ONNX Runtime's intra-op thread count per session
    (None: every CPU this process may use, affinity and cgroup quota counted);
    ``threads`` the native core's limit during this reconstructor's runs (None:
    :func:`angio_deploy.kernels.get_threads`, i.e. $ANGIO_DEPLOY_THREADS or the same CPU
    count). A host running N cases at once gives each about CPUs / N.
    """

    def __init__(
        self,
        segmenter: str | Segmenter = "network",
        *,
        provider: str = "auto",
        surface: bool | None = None,
        models_dir: str | Path | None = None,
        intra_op_threads: int | None = None,
        threads: int | None = None,
    ):
        from .models import ModelFileError
        from .pipeline.sr import SurfaceRefiner

        if threads is not None:
            kernels.check_threads(threads)
        self.threads = threads
        install_record_factory()
        session: dict[str, Any] = {"provider": provider}
        if intra_op_threads is not None:
            session["intra_op_threads"] = kernels.check_threads(intra_op_threads)
        if isinstance(segmenter, str):
            if segmenter == "network":
                segmenter = OnnxSegmenter(folder=models_dir, **session)
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
                self.refiner = SurfaceRefiner(folder=models_dir, **session)
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
        cancel: CancelToken | None = None,
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

        ``cancel``: a :class:`CancelToken`, checked after every stage (the pipeline's
        ``progress`` points) and between segments; a cancelled run raises
        :class:`~angio_deploy.errors.Cancelled`. Every log record of the run carries
        ``case_id`` (:mod:`angio_deploy.case_log`), and the native core uses at most
        ``threads`` threads (see the class).
        """
        label = str(case) if not isinstance(case, Case) else case.source
        with contextlib.ExitStack() as stack:
            stack.enter_context(kernels.thread_limit(self.threads))
            stack.enter_context(
                case_context(case.id if isinstance(case, Case) and case.id else label)
            )
            if not isinstance(case, Case):
                t0 = time.perf_counter()
                case = load_case(case)
                t_load = time.perf_counter() - t0
            else:
                t0, t_load = time.perf_counter(), 0.0
            # The id is known only once case.json is read.
            stack.enter_context(case_context(case.id or case.source))
            clog = CaseLogAdapter(log, case.id or case.source)
            clog.info("reconstructing %s", case.source)
            checked = _checked_progress(progress, cancel, case.source)
            checked("load", t_load)
            out = self._reconstruct(
                case,
                t0,
                t_load,
                refine_geometry=refine_geometry,
                refine_surface=refine_surface,
                force=force,
                skip_failed_branches=skip_failed_branches,
                progress=checked,
            )
            clog.info("done in %.2f s", out.report["timings_s"]["total"])
            return out

    def _reconstruct(
        self,
        case: Case,
        t0: float,
        t_load: float,
        *,
        refine_geometry: bool,
        refine_surface: bool,
        force: bool,
        skip_failed_branches: bool,
        progress: _Checkpoint,
    ) -> Reconstruction:
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
            progress.check(f"{seg.branch} done")
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
        progress.check("quality")

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
        progress.check("stitch_qca")

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
        report["warnings"].extend(bifurcation_warnings(bifurcations))
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
                # The native core's thread limit in this run (Reconstructor(threads=)).
                "kernel_threads": kernels.get_threads(),
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
