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

from angio_deploy import kernels
from angio_deploy._version import __version__
from angio_deploy.io.case import Case, load_case

from .pipeline.mi import MIResult, Progress, mesh_initialisation, reprojection_dice, summary
from .pipeline.segmenters import FrangiSegmenter, OnnxSegmenter, Segmenter

log = logging.getLogger(__name__)

SEGMENTERS = ("network", "frangi")


@dataclass(eq=False)
class Reconstruction:
    """One reconstructed case: the mesh-initialisation result and its report."""

    case: Case
    mi: MIResult
    report: dict[str, Any]

    @property
    def vertices(self):
        """(6000, 3) mesh vertices, world mm (LPS), ring-major."""
        return self.mi.vertices

    @property
    def faces(self):
        return self.mi.faces

    def write(self, out_dir: str | Path) -> Path:
        """Write all outputs (CASE_FORMAT.md) into ``out_dir`` atomically."""
        from .pipeline.outputs import write_outputs

        return write_outputs(out_dir, self.mi, self.report)


class Reconstructor:
    """Loads the segmenter once; :meth:`reconstruct` runs one case (thread-safe).

    ``segmenter``: "network" (the shipped U-Net through ONNX Runtime) or "frangi" (the
    classical baseline, needs scikit-image), or any object with the
    :class:`~angio_deploy.pipeline.segmenters.Segmenter` interface. ``provider``: ONNX
    Runtime provider ("auto", "cpu", "cuda", "tensorrt").
    """

    def __init__(self, segmenter: str | Segmenter = "network", *, provider: str = "auto"):
        if isinstance(segmenter, str):
            if segmenter == "network":
                segmenter = OnnxSegmenter(provider=provider)
            elif segmenter == "frangi":
                segmenter = FrangiSegmenter()
            else:
                raise ValueError(f"unknown segmenter {segmenter!r}; use one of {SEGMENTERS}")
        self.segmenter = segmenter

    def reconstruct(
        self,
        case: str | Path | Case,
        *,
        refine_geometry: bool = True,
        progress: Progress | None = None,
    ) -> Reconstruction:
        """Reconstruct a case folder (or an already loaded :class:`Case`).

        ``refine_geometry`` refines view B's geometry against view A (GEOMETRY.md) before
        triangulating. Surface refinement (the graph network) is not available yet: the
        result is the mesh initialisation (what ``run --no-refine`` asks for).
        """
        t0 = time.perf_counter()
        if not isinstance(case, Case):
            case = load_case(case)
        t_load = time.perf_counter() - t0
        if progress is not None:
            progress("load", t_load)
        mi = mesh_initialisation(case, self.segmenter, refine=refine_geometry, progress=progress)
        t_q = time.perf_counter()
        dice = reprojection_dice(mi)
        timings = {"load": t_load, **mi.timings_s, "quality": time.perf_counter() - t_q}
        timings["total"] = time.perf_counter() - t0
        report = self._report(case, mi, dice, timings, refine_geometry)
        return Reconstruction(case=case, mi=mi, report=report)

    def _report(
        self, case: Case, mi: MIResult, dice, timings, refine_geometry: bool
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
            "backend": {"kernels": kernels.BACKEND, **self.segmenter.report()},
            "stages": {
                "mesh_initialisation": True,
                "geometry_refinement": refine_geometry,
                "surface_refinement": False,
            },
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
