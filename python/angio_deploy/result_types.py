"""The typed, immutable result a host application gets (:class:`ReconstructionResult`).

Built from a :class:`~angio_deploy.api.Reconstruction` (the pipeline's own objects) by
:meth:`~angio_deploy.api.Reconstruction.to_result`. Every class here is a frozen
dataclass; arrays are read-only copies and mappings read-only views, so a result can be
handed between threads and cached without anyone changing it. Units: world millimetres
in the DICOM patient frame (LPS), pixels [u = column, v = row] (GEOMETRY.md).

Mesh bytes come from the same encoders as the files (:mod:`angio_deploy.io.mesh_io`):
``result.main.mesh.ply_bytes()`` is byte for byte the ``mesh.ply`` that
``Reconstruction.write`` writes, without touching disk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from angio_deploy.io.jsonio import dumps
from angio_deploy.io.mesh_io import ply_bytes, stl_bytes

__all__ = [
    "QCA",
    "Mesh",
    "Provenance",
    "Quality",
    "ReconstructionResult",
    "Segment",
    "SkippedBranch",
    "frozen_array",
    "frozen_json",
]


def frozen_array(a: Any, dtype: Any = None) -> np.ndarray:
    """A read-only copy of ``a``."""
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


def frozen_json(value: Any) -> Any:
    """A JSON-like value with dicts as read-only mappings and lists as tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen_json(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen_json(v) for v in value)
    return value


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh: ``vertices`` (N, 3) float64 mm (LPS), ``faces`` (F, 3) int64,
    counter-clockwise seen from outside.

    ``vertex_data``: per-vertex arrays the PLY carries (``ring`` for a tube).
    ``closed_faces``: the triangles the STL holds -- a tube's with flat end caps
    (watertight), else ``faces``. ``watertight``: whether ``faces`` alone is closed.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    closed_faces: np.ndarray
    vertex_data: Mapping[str, np.ndarray]
    watertight: bool

    def ply_bytes(self) -> bytes:
        """Binary little-endian PLY, the bytes the result folder's PLY holds."""
        return ply_bytes(self.vertices, self.faces, vertex_data=dict(self.vertex_data))

    def stl_bytes(self) -> bytes:
        """Binary STL of ``closed_faces``, the bytes the result folder's STL holds."""
        return stl_bytes(self.vertices, self.closed_faces)


@dataclass(frozen=True)
class QCA:
    """Quantitative coronary analysis of one branch (METRICS.md): lengths and
    diameters in mm, percentages of the reference diameter. ``profile_*`` are per ring
    along the centreline, proximal first; ``details`` is the report's ``qca`` entry."""

    branch: str
    length_mm: float
    mld_mm: float
    mld_position_mm: float
    reference_diameter_at_mld_mm: float
    percent_ds: float
    percent_as: float
    profile_arc_mm: np.ndarray
    profile_diameter_mm: np.ndarray
    profile_reference_mm: np.ndarray
    details: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class Segment:
    """One reconstructed segment (the main one or a side branch, attached): its open tube
    mesh (100 rings x 60 vertices, ring-major), centreline (100, 3) mm, lumen radius
    (100,) mm per ring, QCA and the reprojection Dice of its mesh on each view's
    segmentation (view a, view b)."""

    name: str
    mesh: Mesh
    centreline_mm: np.ndarray
    radius_mm: np.ndarray
    qca: QCA
    reprojection_dice: tuple[float, ...]
    surface_refined: bool


@dataclass(frozen=True)
class SkippedBranch:
    """A side branch left out (``skip_failed_branches``) and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Quality:
    """Quality checks: the main segment's reprojection Dice per view, the angle between
    the two views (degrees) and the report's ``quality`` section (``details``)."""

    reprojection_dice: tuple[float, ...]
    view_separation_deg: float
    details: Mapping[str, Any]


@dataclass(frozen=True)
class Provenance:
    """Where the result came from: versions, backend (kernels, segmenter, provider,
    model hashes, threads), stages run, the geometry used per view with each value's
    source, per-stage timings (s), and the case's source (``<memory:ID>`` or folder)."""

    case_source: str
    case_id: str | None
    versions: Mapping[str, Any]
    backend: Mapping[str, Any]
    stages: Mapping[str, Any]
    views: tuple[Mapping[str, Any], ...]
    timings_s: Mapping[str, float]


@dataclass(frozen=True, eq=False)
class ReconstructionResult:
    """A reconstructed case. ``main``: the main segment; ``branches``: the side branches
    (attached to the main segment); ``joined``: their watertight union with the main
    segment (None without side branches); ``skipped``: branches left out; ``warnings``:
    everything the report warns about. ``report_json`` is report.json's text
    (angio-report/1, ``report.schema.json``); :meth:`report` parses it."""

    case_id: str | None
    main: Segment
    branches: tuple[Segment, ...]
    joined: Mesh | None
    skipped: tuple[SkippedBranch, ...]
    quality: Quality
    warnings: tuple[str, ...]
    provenance: Provenance
    report_json: str

    @property
    def centreline_mm(self) -> np.ndarray:
        """The main segment's centreline (100, 3) mm."""
        return self.main.centreline_mm

    @property
    def radius_mm(self) -> np.ndarray:
        """The main segment's lumen radius per ring (100,) mm."""
        return self.main.radius_mm

    @property
    def meshes(self) -> tuple[Mesh, ...]:
        """Every mesh: main, each branch, then the joined one when there is one."""
        out = [self.main.mesh, *(b.mesh for b in self.branches)]
        return (*out, self.joined) if self.joined is not None else tuple(out)

    def report(self) -> dict[str, Any]:
        """The report as a fresh (mutable) dict."""
        return json.loads(self.report_json)


def report_text(report: Mapping[str, Any]) -> str:
    """report.json's text, as the result folder holds it."""
    return dumps(report)
