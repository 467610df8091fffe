"""One C-arm view's projection geometry, as GEOMETRY.md defines it.

World frame: DICOM patient coordinates (LPS, mm) with the C-arm isocenter at the origin.
Pixels: u = column, v = row, zero-based, pixel centres at integers, principal point at
the image centre. A view is built either from positioner angles and distances
(:meth:`ViewGeometry.from_angles`) or from an explicit 3x4 matrix
(:meth:`ViewGeometry.from_matrix`); both give identical projections for the same geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy.errors import InputError
from angio_deploy.limits import (
    MAX_ANGLE_DEG,
    PIXEL_SPACING_RANGE_MM,
    SID_RANGE_MM,
    SOD_RANGE_MM,
)


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def carm_rotation(primary_deg: float, secondary_deg: float) -> np.ndarray:
    """M = Rz(alpha) . Rx(-beta) (GEOMETRY.md), angles in degrees."""
    return _rz(math.radians(primary_deg)) @ _rx(-math.radians(secondary_deg))


def source_of(P: np.ndarray) -> np.ndarray:
    """X-ray source (mm, world frame) of a 3x4 projection matrix: its null vector."""
    M = P[:, :3]
    return -np.linalg.solve(M, P[:, 3])


@dataclass(frozen=True, eq=False)
class ViewGeometry:
    """Projection geometry of one view.

    Attributes are in mm and degrees; ``pixel_spacing_mm`` is (row, column) spacing at
    the detector plane. For a view built from an explicit matrix the angle and distance
    fields are None. ``provenance`` says where each value came from (DICOM tag, fallback,
    case.json override, explicit matrix) and is copied into the run report.
    """

    width: int
    height: int
    matrix: np.ndarray
    primary_angle_deg: float | None = None
    secondary_angle_deg: float | None = None
    sid_mm: float | None = None
    sod_mm: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    provenance: dict[str, str] = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_angles(
        cls,
        primary_angle_deg: float,
        secondary_angle_deg: float,
        sid_mm: float,
        sod_mm: float,
        pixel_spacing_mm: tuple[float, float] | list[float],
        width: int,
        height: int,
        *,
        isocenter_offset_mm: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
        provenance: dict[str, str] | None = None,
    ) -> ViewGeometry:
        """Geometry from positioner angles (deg), SID and SOD (mm), detector spacing (mm/px).

        ``isocenter_offset_mm`` is where this view's isocenter sits in the world frame
        (0 for the reference view); refinement moves it to undo table shifts.
        """
        a, b = float(primary_angle_deg), float(secondary_angle_deg)
        sid, sod = float(sid_mm), float(sod_mm)
        ps_r, ps_c = (float(x) for x in pixel_spacing_mm)
        _check_positive({"sid_mm": sid, "sod_mm": sod, "pixel_spacing_mm": min(ps_r, ps_c)})
        _check_ranges(a, b, sid, sod, (ps_r, ps_c))
        if not sod < sid:
            raise InputError(
                f"source-to-isocenter distance {sod} mm must be less than source-to-detector "
                f"distance {sid} mm",
                field="sod_mm",
            )
        if width < 1 or height < 1:
            raise InputError(f"image size {width} x {height} is not positive", field="size")
        M = carm_rotation(a, b)
        e_u = M @ np.array([1.0, 0.0, 0.0])
        e_v = M @ np.array([0.0, 0.0, -1.0])
        d = M @ np.array([0.0, -1.0, 0.0])
        S = -sod * d + np.asarray(isocenter_offset_mm, dtype=np.float64)
        R = np.stack([e_u, e_v, d])
        K = np.array(
            [[sid / ps_c, 0.0, (width - 1) / 2.0], [0.0, sid / ps_r, (height - 1) / 2.0], [0, 0, 1]]
        )
        P = K @ np.concatenate([R, (-R @ S)[:, None]], axis=1)
        return cls(
            width=int(width),
            height=int(height),
            matrix=P,
            primary_angle_deg=a,
            secondary_angle_deg=b,
            sid_mm=sid,
            sod_mm=sod,
            pixel_spacing_mm=(ps_r, ps_c),
            provenance=dict(provenance or {}),
        )

    @classmethod
    def from_matrix(
        cls,
        P: np.ndarray | list[list[float]],
        width: int,
        height: int,
        *,
        provenance: dict[str, str] | None = None,
    ) -> ViewGeometry:
        """Geometry from an explicit 3x4 matrix (world mm -> homogeneous pixels).

        The matrix is rescaled so that its depth row has unit norm and the isocenter
        (world origin) has positive depth; any overall scale or sign is accepted.
        """
        Pa = np.asarray(P, dtype=np.float64)
        if Pa.shape != (3, 4) or not np.all(np.isfinite(Pa)):
            raise InputError(
                f"must be a 3x4 matrix of finite numbers, got shape {Pa.shape}",
                field="projection_matrix",
            )
        n = np.linalg.norm(Pa[2, :3])
        if n == 0 or abs(np.linalg.det(Pa[:, :3])) < 1e-12 * n**3:
            raise InputError("is singular (no camera centre)", field="projection_matrix")
        Pa = Pa / n
        if Pa[2, 3] < 0:
            Pa = -Pa
        if not Pa[2, 3] > 0:
            raise InputError(
                "places the isocenter (world origin) at the source; it must lie in front",
                field="projection_matrix",
            )
        if width < 1 or height < 1:
            raise InputError(f"image size {width} x {height} is not positive", field="size")
        prov = {"matrix": "explicit projection_matrix"}
        prov.update(provenance or {})
        return cls(width=int(width), height=int(height), matrix=Pa, provenance=prov)

    # -- derived quantities -------------------------------------------------------------
    @property
    def P(self) -> np.ndarray:
        """3x4 projection matrix, world mm -> homogeneous pixels (depth row unit norm)."""
        return self.matrix

    @property
    def source_mm(self) -> np.ndarray:
        """X-ray source position in the world frame (mm): the null vector of P."""
        return source_of(self.matrix)

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from the source toward the detector (the principal ray)."""
        d = self.matrix[2, :3]
        return d / np.linalg.norm(d)

    @property
    def focal_px(self) -> tuple[float, float]:
        """Focal lengths (f_u, f_v) in pixels: SID / pixel spacing, from the matrix."""
        M = self.matrix[:, :3] / np.linalg.norm(self.matrix[2, :3])
        d = M[2]
        # Rows of M are f_u e_u + c_u d, f_v e_v + c_v d, d with e_u, e_v, d orthonormal.
        cu = float(M[0] @ d)
        cv = float(M[1] @ d)
        fu = float(np.linalg.norm(M[0] - cu * d))
        fv = float(np.linalg.norm(M[1] - cv * d))
        return fu, fv

    def depth_mm(self, X: np.ndarray) -> np.ndarray:
        """Distance (mm) of points X (N, 3) from the source along the principal ray."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return (X - self.source_mm) @ self.direction

    def pixel_size_at_mm(self, X: np.ndarray) -> np.ndarray:
        """Size (mm) at the 3D points X (N, 3) of one image pixel, (N,) (mean of u and v)."""
        fu, fv = self.focal_px
        return self.depth_mm(X) * 0.5 * (1.0 / fu + 1.0 / fv)

    def magnification_at(self, X: np.ndarray) -> np.ndarray:
        """Geometric magnification (detector size / object size) at points X (N, 3).

        Needs SID (views from angles); SID / depth. At the isocenter this is SID / SOD.
        """
        if self.sid_mm is None:
            raise ValueError("magnification needs SID; this view came from a matrix")
        return self.sid_mm / self.depth_mm(X)

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (N, 3) mm -> pixels (N, 2) [u, v] (NaN at or behind the source)."""
        return kernels.project(self.matrix, X)

    def backproject(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) -> rays: origins at the source (N, 3) mm, unit directions (N, 3)."""
        return kernels.backproject(self.matrix, uv)

    def contains(self, uv: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        """Whether pixel positions (N, 2) lie inside the image (pixel centres -0.5 .. W-0.5)."""
        uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
        lo = -0.5 + margin_px
        return (
            np.isfinite(uv).all(axis=1)
            & (uv[:, 0] >= lo)
            & (uv[:, 1] >= lo)
            & (uv[:, 0] <= self.width - 0.5 - margin_px)
            & (uv[:, 1] <= self.height - 0.5 - margin_px)
        )

    def moved(
        self, rotation: np.ndarray, translation_mm: np.ndarray, *, note: str = "refined"
    ) -> ViewGeometry:
        """This view after a rigid correction of where the world sits in it.

        A world point X is imaged as if it were at ``rotation @ X + translation_mm`` (the
        rotation about the isocenter): P' = P [R | t]. Angles and distances are kept as
        read (they describe the header); provenance gains ``correction``.
        """
        R = np.asarray(rotation, dtype=np.float64)
        t = np.asarray(translation_mm, dtype=np.float64)
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = t
        prov = dict(self.provenance)
        prov["correction"] = note
        return ViewGeometry(
            width=self.width,
            height=self.height,
            matrix=self.matrix @ T,
            primary_angle_deg=self.primary_angle_deg,
            secondary_angle_deg=self.secondary_angle_deg,
            sid_mm=self.sid_mm,
            sod_mm=self.sod_mm,
            pixel_spacing_mm=self.pixel_spacing_mm,
            provenance=prov,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: angles, distances, spacing, size, matrix and provenance."""
        return {
            "width": self.width,
            "height": self.height,
            "primary_angle_deg": self.primary_angle_deg,
            "secondary_angle_deg": self.secondary_angle_deg,
            "sid_mm": self.sid_mm,
            "sod_mm": self.sod_mm,
            "pixel_spacing_mm": None
            if self.pixel_spacing_mm is None
            else list(self.pixel_spacing_mm),
            "projection_matrix": self.matrix.tolist(),
            "source_mm": self.source_mm.tolist(),
            "provenance": dict(self.provenance),
        }


def _check_positive(values: dict[str, float]) -> None:
    for name, v in values.items():
        if not (math.isfinite(v) and v > 0):
            raise InputError(f"must be a positive number, got {v}", field=name)


def _check_ranges(a: float, b: float, sid: float, sod: float, spacing: tuple[float, float]) -> None:
    """Refuse physically impossible C-arm values (limits.py) with the field at fault."""
    for name, v in (("primary_angle_deg", a), ("secondary_angle_deg", b)):
        if not (math.isfinite(v) and abs(v) <= MAX_ANGLE_DEG):
            raise InputError(
                f"{v:g} deg is not an angle within +/-{MAX_ANGLE_DEG:g} deg", field=name
            )
    for name, v, (lo, hi) in (("sid_mm", sid, SID_RANGE_MM), ("sod_mm", sod, SOD_RANGE_MM)):
        if not lo <= v <= hi:
            raise InputError(f"{v:g} mm is outside the plausible {lo:g}-{hi:g} mm", field=name)
    lo, hi = PIXEL_SPACING_RANGE_MM
    if not all(lo <= x <= hi for x in spacing):
        raise InputError(
            f"{spacing[0]:g} x {spacing[1]:g} mm/px is outside the plausible {lo:g}-{hi:g} mm",
            field="pixel_spacing_mm",
        )


def ray_angle_deg(a: ViewGeometry, b: ViewGeometry) -> float:
    """Angle theta (degrees, 0-180) between the views' principal rays (source to detector)."""
    c = float(np.clip(a.direction @ b.direction, -1.0, 1.0))
    return math.degrees(math.acos(c))


def separation_angle_deg(a: ViewGeometry, b: ViewGeometry) -> float:
    """The views' separation (degrees, 0-90): the angle between their viewing *lines*,
    min(theta, 180 - theta) (GEOMETRY.md, "Ill-posed input"). Views 170 or 180 degrees
    apart see nearly the same projection, mirrored, and triangulate as badly as views 10
    or 0 degrees apart."""
    theta = ray_angle_deg(a, b)
    return min(theta, 180.0 - theta)
