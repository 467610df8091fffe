"""Chest background of a synthetic angiogram, in attenuation units (line integrals).

Everything here returns dimensionless line integrals ``sum(mu * path length)`` per pixel
ray, to be used in Beer-Lambert ``exp(-L)`` by :mod:`angio_deploy.synth.xray`.

World frame: DICOM LPS, mm, isocenter at the origin (GEOMETRY.md). Rays start at the
X-ray source and pass through pixel centres (u = column, v = row).

What is 3D and what is 2D:

* 3D, projected exactly through the view geometry with closed-form chords (ray-convex
  intervals, no voxel grid): the thorax (elliptic cylinder of soft tissue), the two lungs
  (ellipsoids of low-density tissue), the heart (the Anatomy's ellipsoid, which displaces
  lung), the two diaphragm domes (ellipsoids whose top surfaces give the sharp
  lung/soft-tissue edge) and the spine (vertebral bodies as finite elliptic cylinders with
  a cortical shell, pedicles as ellipsoids). Rays through lung lose
  ``(mu_tissue - mu_lung)`` times the lung chord outside heart and domes.
* 3D centrelines, 2D profile: the ribs. Each rib is a 3D curve around the thorax (posterior
  end at its vertebra, sloping down anteriorly) that is projected through the geometry; its
  chord profile across the projected curve is the chord of an elliptical bone section of the
  local projected width (via a distance transform), with a cortical shell. Path lengths of
  ribs seen end-on are therefore underestimated.
* 2D procedural: soft-tissue and lung texture (1/f^beta noise at several scales; lung
  texture modulated by the projected lung chord). These differ between the two views of a
  case; the 3D structures above are the same patient in both views.

The random chest (rib heights, spine position, lung sizes) is drawn from a generator seeded
by the Anatomy (``anatomy.meta["chest_seed"]`` or a hash of the heart ellipsoid), so both
views of a case see the same chest.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from angio_deploy.synth.model import Anatomy

# -- rays ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rays:
    """Pixel rays of one view: source (3,) mm and the inverse of P's left 3x3 block.

    The direction of the ray through pixel (u, v) is ``Minv @ (u, v, 1)`` (unnormalised,
    unit depth); :meth:`directions` returns unit vectors for a pixel window.
    """

    source: np.ndarray
    minv: np.ndarray
    width: int
    height: int
    focal_px: float

    @classmethod
    def from_matrix(cls, P: np.ndarray, width: int, height: int) -> Rays:
        M = np.asarray(P, dtype=np.float64)[:, :3]
        minv = np.linalg.inv(M)
        source = -minv @ np.asarray(P, dtype=np.float64)[:, 3]
        # Depth row has unit norm after ViewGeometry normalisation; f = |row 0 - (row0.d) d|.
        d = M[2] / np.linalg.norm(M[2])
        f = float(np.linalg.norm(M[0] - (M[0] @ d) * d)) / float(np.linalg.norm(M[2]))
        return cls(source, minv, int(width), int(height), f)

    def half(self) -> Rays:
        """The rays through every second pixel (coarse pixel (i, j) = pixel (2 i, 2 j))."""
        P = np.linalg.inv(self.minv)
        P = np.concatenate([P, (-P @ self.source)[:, None]], axis=1)
        P = np.diag([0.5, 0.5, 1.0]) @ P
        return Rays.from_matrix(P, (self.width + 1) // 2, (self.height + 1) // 2)

    def directions(
        self, u0: int = 0, u1: int | None = None, v0: int = 0, v1: int | None = None, step: int = 1
    ) -> np.ndarray:
        """Unit directions (h, w, 3) of the rays through pixels [v0:v1:step, u0:u1:step]."""
        u1 = self.width if u1 is None else u1
        v1 = self.height if v1 is None else v1
        u = np.arange(u0, u1, step, dtype=np.float64)
        v = np.arange(v0, v1, step, dtype=np.float64)
        D = (
            self.minv[:, 0][None, None, :] * u[None, :, None]
            + self.minv[:, 1][None, None, :] * v[:, None, None]
            + self.minv[:, 2][None, None, :]
        )
        D /= np.linalg.norm(D, axis=2, keepdims=True)
        return D

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (N, 3) mm -> pixels (N, 2); points behind the source give NaN."""
        M = np.linalg.inv(self.minv)
        h = (np.atleast_2d(X) - self.source) @ M.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = h[:, :2] / h[:, 2:3]
        uv[h[:, 2] <= 0] = np.nan
        return uv

    def depth(self, X: np.ndarray) -> np.ndarray:
        """Depth (N,) mm of points along the principal ray (distance from the source plane)."""
        M = np.linalg.inv(self.minv)
        d = M[2] / np.linalg.norm(M[2])
        return (np.atleast_2d(X) - self.source) @ d

    def window(self, corners: np.ndarray, margin: int = 2) -> tuple[int, int, int, int] | None:
        """Pixel window (u0, u1, v0, v1) covering the projection of 3D points, or None."""
        uv = self.project(corners)
        if not np.all(np.isfinite(uv)):
            return (0, self.width, 0, self.height)
        u0 = max(math.floor(uv[:, 0].min()) - margin, 0)
        u1 = min(math.ceil(uv[:, 0].max()) + margin + 1, self.width)
        v0 = max(math.floor(uv[:, 1].min()) - margin, 0)
        v1 = min(math.ceil(uv[:, 1].max()) + margin + 1, self.height)
        if u0 >= u1 or v0 >= v1:
            return None
        return (u0, u1, v0, v1)


# -- closed-form ray/convex intervals ------------------------------------------------------

Interval = tuple[np.ndarray, np.ndarray]


def _quadratic_interval(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> Interval:
    """Roots t0 <= t1 of A t^2 + B t + C = 0 (A > 0); empty (t0 = t1 = 0) where none."""
    disc = B * B - 4.0 * A * C
    ok = (disc > 0) & (A > 1e-300)
    s = np.sqrt(np.where(ok, disc, 0.0))
    A2 = np.where(ok, 2.0 * A, 1.0)
    t0 = np.where(ok, (-B - s) / A2, 0.0)
    t1 = np.where(ok, (-B + s) / A2, 0.0)
    return t0, t1


def ellipsoid_interval(
    source: np.ndarray, D: np.ndarray, centre: np.ndarray, axes: np.ndarray, R: np.ndarray
) -> Interval:
    """Entry/exit distances (mm) of unit rays ``source + t D`` through an ellipsoid.

    The ellipsoid is ``|R^T (x - centre) / axes| <= 1``: columns of R are its principal
    directions, ``axes`` its semi-axes (mm). Rays that miss give an empty interval.
    """
    p = ((source - centre) @ R) / axes
    q = (D @ R) / axes
    A = np.einsum("...i,...i->...", q, q)
    B = 2.0 * (q @ p)
    C = float(p @ p) - 1.0
    return _quadratic_interval(A, B, np.full_like(A, C))


def cylinder_interval(
    source: np.ndarray,
    D: np.ndarray,
    centre: np.ndarray,
    axis: np.ndarray,
    major: np.ndarray,
    semi: tuple[float, float],
    half_length: float = math.inf,
) -> Interval:
    """Entry/exit distances (mm) of unit rays through a finite elliptic cylinder.

    ``axis`` and ``major`` are orthogonal unit vectors; ``semi`` = (a along major, b along
    axis x major) in mm; the cylinder spans ``half_length`` mm either side of ``centre``
    along ``axis`` (inf: unbounded).
    """
    minor = np.cross(axis, major)
    w = source - centre
    p = np.array([w @ major / semi[0], w @ minor / semi[1]])
    q = np.stack([D @ major / semi[0], D @ minor / semi[1]], axis=-1)
    A = np.einsum("...i,...i->...", q, q)
    B = 2.0 * (q @ p)
    t0, t1 = _quadratic_interval(A, B, np.full_like(A, float(p @ p) - 1.0))
    if math.isfinite(half_length):
        da = D @ axis
        wa = float(w @ axis)
        safe = np.where(np.abs(da) > 1e-12, da, 1e-12)
        s0 = (-half_length - wa) / safe
        s1 = (half_length - wa) / safe
        lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
        inside = abs(wa) <= half_length
        par = np.abs(da) <= 1e-12
        lo = np.where(par, -np.inf if inside else 0.0, lo)
        hi = np.where(par, np.inf if inside else 0.0, hi)
        t0, t1 = np.maximum(t0, lo), np.minimum(t1, hi)
    return t0, np.maximum(t1, t0)


def length(iv: Interval) -> np.ndarray:
    """Length (mm) of an interval (0 where empty)."""
    return np.maximum(iv[1] - iv[0], 0.0)


def overlap(a: Interval, b: Interval) -> np.ndarray:
    """Length (mm) of the intersection of two intervals."""
    return np.maximum(np.minimum(a[1], b[1]) - np.maximum(a[0], b[0]), 0.0)


# -- the chest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Materials:
    """Linear attenuation coefficients (1/mm) at the effective energy."""

    tissue: float
    lung: float
    cortical: float
    trabecular: float


@dataclass(frozen=True)
class Chest:
    """A patient's chest in the world frame (mm), placed around the Anatomy's heart."""

    mid_x: float  # mid-sagittal plane x
    body_y: float  # thorax centre y
    body_semi: tuple[float, float]  # thorax semi-axes (lateral, AP)
    lungs: tuple[tuple[np.ndarray, np.ndarray], ...]  # (centre, semi-axes), axis-aligned
    domes: tuple[tuple[np.ndarray, np.ndarray], ...]
    spine_y: float
    vertebra_z: np.ndarray  # centres (K,) mm of the vertebral bodies
    vertebra_semi: tuple[float, float]  # (lateral, AP) mm, typical
    vertebra_half_height: float  # typical
    ribs: tuple[np.ndarray, ...]  # centrelines (N, 3) mm
    rib_semi: tuple[float, float]  # (height, thickness) mm, typical
    vertebra_semis: np.ndarray  # (K, 2) per-vertebra (lateral, AP) semi-axes mm
    vertebra_dx: np.ndarray  # (K,) lateral offsets mm (slight scoliosis)
    vertebra_hh: np.ndarray  # (K,) half heights mm
    rib_scale: np.ndarray  # (R, 3) per rib: height scale, thickness scale, density
    bone_blur_mm: tuple[float, float]  # (ribs, spine) blur at the object (motion, penumbra)
    heart_centre: np.ndarray
    heart_axes: np.ndarray
    heart_rotation: np.ndarray


def chest_seed(anatomy: Anatomy) -> int:
    """Seed for the chest of this anatomy: meta["chest_seed"] or a hash of the heart."""
    if "chest_seed" in anatomy.meta:
        return int(anatomy.meta["chest_seed"])
    buf = b"".join(
        np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes()
        for a in (anatomy.heart_center_mm, anatomy.heart_axes_mm, anatomy.heart_rotation)
    )
    return int.from_bytes(hashlib.sha256(buf).digest()[:8], "little")


def draw_chest(anatomy: Anatomy) -> Chest:
    """Draw a plausible chest around the Anatomy's heart (deterministic per anatomy).

    Sizes (mm): thorax AP diameter 190-270, lateral/AP ratio 1.3-1.5; heart centre 20-45 mm
    left of the midline; vertebral bodies 75-95 mm posterior to the heart centre, pitch
    24-28 mm, semi-axes ~20 x 16; diaphragm dome tops just under the heart (the left one
    10-25 mm lower); 12 rib pairs, section semi-axes ~6 x 3.5.
    """
    rng = np.random.default_rng(chest_seed(anatomy))
    hc = np.asarray(anatomy.heart_center_mm, dtype=np.float64)
    ha = np.asarray(anatomy.heart_axes_mm, dtype=np.float64)
    ap = rng.uniform(190.0, 270.0)
    lat = ap * rng.uniform(1.3, 1.5)
    mid_x = hc[0] - rng.uniform(20.0, 45.0)
    body_y = hc[1] + rng.uniform(0.0, 20.0)
    lung_semi = np.array([lat * 0.22, ap * 0.36, 120.0])
    heart_bottom = hc[2] - 0.8 * float(ha.max())
    dome_top_r = heart_bottom + rng.uniform(-5.0, 15.0)
    dome_top_l = dome_top_r - rng.uniform(10.0, 25.0)
    lungs = tuple(
        (np.array([mid_x + s * lat * 0.26, body_y - 5.0, dome_top_r + 70.0]), lung_semi)
        for s in (-1.0, 1.0)
    )
    dome_semi = np.array([lat * 0.3, ap * 0.42, rng.uniform(70.0, 100.0)])
    domes = (
        (np.array([mid_x - lat * 0.2, body_y, dome_top_r - dome_semi[2]]), dome_semi),
        (np.array([mid_x + lat * 0.22, body_y, dome_top_l - dome_semi[2]]), dome_semi),
    )
    spine_y = hc[1] + rng.uniform(75.0, 95.0)
    pitch = rng.uniform(24.0, 28.0)
    z_top = hc[2] + 9.0 * pitch
    # Vertebral bodies grow caudally and vary a little in size, height and alignment.
    vz = z_top - pitch * np.arange(18) + rng.normal(0.0, 0.6, 18)
    v_semi = (rng.uniform(18.0, 22.0), rng.uniform(14.0, 17.0))
    grow = np.linspace(0.92, 1.08, 18)
    v_semis = np.stack(
        [
            v_semi[0] * grow * rng.uniform(0.93, 1.07, 18),
            v_semi[1] * grow * rng.uniform(0.93, 1.07, 18),
        ],
        axis=1,
    )
    sway = rng.uniform(0.0, 2 * np.pi, 2)
    k_idx = np.arange(18)
    v_dx = rng.uniform(0.0, 4.0) * np.sin(k_idx / rng.uniform(4.0, 8.0) + sway[0]) + rng.normal(
        0.0, 0.7, 18
    )
    v_hh = 0.5 * pitch - rng.uniform(3.0, 4.5, 18)
    rib_semi = (rng.uniform(5.0, 7.0), rng.uniform(2.5, 3.5))
    # Ribs are irregular: spacing, slope, bend, width, thickness and mineralisation vary
    # from rib to rib (and left to right).
    ribs = tuple(
        _rib_curve(
            mid_x,
            body_y,
            lat,
            ap,
            spine_y,
            vz[k] + rng.uniform(0.15, 0.45) * pitch + rng.normal(0.0, 0.1 * pitch),
            side,
            rng,
        )
        for k in range(12)
        for side in (-1.0, 1.0)
    )
    rib_scale = np.stack(
        [rng.uniform(0.75, 1.25, 24), rng.uniform(0.8, 1.2, 24), rng.uniform(0.55, 1.1, 24)],
        axis=1,
    )
    return Chest(
        mid_x=float(mid_x),
        body_y=float(body_y),
        body_semi=(float(lat / 2), float(ap / 2)),
        lungs=lungs,
        domes=domes,
        spine_y=float(spine_y),
        vertebra_z=vz,
        vertebra_semi=(float(v_semi[0]), float(v_semi[1])),
        vertebra_half_height=float(np.mean(v_hh)),
        ribs=ribs,
        rib_semi=rib_semi,
        vertebra_semis=v_semis,
        vertebra_dx=v_dx,
        vertebra_hh=v_hh,
        rib_scale=rib_scale,
        bone_blur_mm=(float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.5, 1.1))),
        heart_centre=hc,
        heart_axes=ha,
        heart_rotation=np.asarray(anatomy.heart_rotation, dtype=np.float64),
    )


def _rib_curve(
    mid_x: float,
    body_y: float,
    lat: float,
    ap: float,
    spine_y: float,
    z0: float,
    side: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One rib centreline (N, 3) mm: from beside its vertebra around the thorax wall to
    the front, sloping 40-80 mm down toward its anterior end (costal cartilage not shown)."""
    psi = np.linspace(math.radians(80.0), math.radians(-55.0), 90)
    inset = rng.uniform(12.0, 20.0)
    ax, ay = lat / 2 - inset, ap / 2 - inset
    x = mid_x + side * ax * np.cos(psi)
    y = body_y + ay * np.sin(psi)
    prog = (psi[0] - psi) / (psi[0] - psi[-1])
    z = (
        z0
        - rng.uniform(35.0, 85.0) * prog ** rng.uniform(1.1, 1.6)
        + rng.uniform(3.0, 13.0) * np.sin(np.pi * prog)
        + rng.uniform(-4.0, 4.0) * np.sin(2.0 * np.pi * prog + rng.uniform(0.0, np.pi))
    )
    # Posterior end joins the vertebra (transverse process) rather than the body wall.
    x[:4] = np.linspace(mid_x + side * 25.0, x[4], 4)
    y[:4] = np.linspace(spine_y, y[4], 4)
    return np.stack([x, y, z], axis=1)


def _full(rays: Rays, step: int) -> np.ndarray:
    return rays.directions(step=step)


def soft_tissue_integral(chest: Chest, rays: Rays, mat: Materials, step: int = 2) -> np.ndarray:
    """Line integral (h, w) of thorax, lungs, heart and diaphragm at pixels [::step, ::step].

    Smooth except at the diaphragm and heart edges, so a coarse grid upsampled by the
    caller is accurate to well under the noise.
    """
    D = _full(rays, step)
    S = rays.source
    body = cylinder_interval(
        S, D, np.array([chest.mid_x, chest.body_y, 0.0]), np.array([0.0, 0.0, 1.0]),
        np.array([1.0, 0.0, 0.0]), chest.body_semi,
    )  # fmt: skip
    heart = ellipsoid_interval(S, D, chest.heart_centre, chest.heart_axes, chest.heart_rotation)
    eye = np.eye(3)
    domes = [ellipsoid_interval(S, D, c, a, eye) for c, a in chest.domes]
    lung_len = np.zeros(D.shape[:2])
    for c, a in chest.lungs:
        lung = ellipsoid_interval(S, D, c, a, eye)
        lung = (np.maximum(lung[0], body[0]), np.minimum(lung[1], body[1]))
        ll = length(lung) - overlap(lung, heart) - sum(overlap(lung, d) for d in domes)
        lung_len += np.maximum(ll, 0.0)
    return (mat.tissue * length(body) - (mat.tissue - mat.lung) * lung_len).astype(np.float32)


def lung_chord(chest: Chest, rays: Rays, step: int = 4) -> np.ndarray:
    """Lung path length (h, w) mm at pixels [::step, ::step] (used to place lung texture)."""
    D = _full(rays, step)
    eye = np.eye(3)
    return sum(length(ellipsoid_interval(rays.source, D, c, a, eye)) for c, a in chest.lungs)


def _slab(source: np.ndarray, D: np.ndarray, z0: float, z1: float) -> Interval:
    """Ray parameter interval (mm) inside the horizontal slab z0 <= z <= z1."""
    dz = D[..., 2]
    safe = np.where(np.abs(dz) > 1e-12, dz, 1e-12)
    a = (z0 - source[2]) / safe
    b = (z1 - source[2]) / safe
    return np.minimum(a, b), np.maximum(a, b)


def spine_integral(chest: Chest, rays: Rays, mat: Materials, out: np.ndarray) -> None:
    """Add the vertebral bodies (cortical shell and endplates, trabecular core) and the
    pedicles to ``out``.

    Each vertebral body is its own finite elliptic cylinder (size, height and lateral
    position vary from level to level; disc spaces between them are soft tissue),
    evaluated inside the pixel window of its projection. Pedicles are small ellipsoids
    with a thin, partly mineralised rim. The spine lies far from the isocenter and moves
    with respiration, so its integral is blurred by ``chest.bone_blur_mm`` (at the object,
    converted to pixels by the local magnification): no crisp drawn outlines.
    """
    zaxis, xaxis = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    shell = 0.6
    d_cort = mat.cortical - mat.tissue
    d_trab = mat.trabecular - mat.tissue
    zs = chest.vertebra_z
    smax = chest.vertebra_semis.max(axis=0)
    col_c = np.array([chest.mid_x, chest.spine_y, 0.5 * (zs.min() + zs.max())])
    ext = np.array([smax[0] + 16.0, smax[1] + 25.0, 0.5 * (zs.max() - zs.min()) + 16.0])
    win = rays.window(_box(col_c + np.array([0.0, 10.0, 0.0]), ext), margin=8)
    if win is None:
        return
    u0, u1, v0, v1 = win
    S = rays.source
    D = rays.directions(u0, u1, v0, v1)
    acc = np.zeros(D.shape[:2])
    for k, z in enumerate(zs):
        sa, sb = (float(x) for x in chest.vertebra_semis[k])
        hh = float(chest.vertebra_hh[k])
        c = np.array([chest.mid_x + float(chest.vertebra_dx[k]), chest.spine_y, z])
        w = rays.window(_box(c + np.array([0.0, 10.0, 0.0]), np.array([sa + 12, sb + 25, hh])))
        if w is None:
            continue
        a0, a1 = max(w[0], u0) - u0, min(w[1], u1) - u0
        b0, b1 = max(w[2], v0) - v0, min(w[3], v1) - v0
        if a0 >= a1 or b0 >= b1:
            continue
        Dv = D[b0:b1, a0:a1]
        o = cylinder_interval(S, Dv, c, zaxis, xaxis, (sa, sb), hh)
        i = cylinder_interval(S, Dv, c, zaxis, xaxis, (sa - shell, sb - shell), hh - shell)
        lo, li = length(o), length(i)
        acc[b0:b1, a0:a1] += d_cort * (lo - li) + d_trab * li
        for side in (-1.0, 1.0):
            pc = c + np.array([side * (sa - 6.0), sb + 9.0, 3.0])
            pa = np.array([3.5, 8.0, 5.0]) * (0.85 + 0.3 * (sa / smax[0] - 0.9))
            pw = rays.window(_box(pc, pa))
            if pw is None:
                continue
            pa0, pa1 = max(pw[0], u0) - u0, min(pw[1], u1) - u0
            pb0, pb1 = max(pw[2], v0) - v0, min(pw[3], v1) - v0
            if pa0 >= pa1 or pb0 >= pb1:
                continue
            Dp = D[pb0:pb1, pa0:pa1]
            po = length(ellipsoid_interval(S, Dp, pc, pa, np.eye(3)))
            pi = length(ellipsoid_interval(S, Dp, pc, pa - 0.4, np.eye(3)))
            acc[pb0:pb1, pa0:pa1] += 0.45 * d_cort * (po - pi) + 0.8 * d_trab * pi
    px_per_mm = rays.focal_px / float(rays.depth(col_c[None])[0])
    sigma = chest.bone_blur_mm[1] * px_per_mm
    if sigma > 0.3:
        acc = ndi.gaussian_filter(acc, sigma, mode="nearest")
    out[v0:v1, u0:u1] += acc.astype(np.float32)


def _box(c: np.ndarray, ext: np.ndarray) -> np.ndarray:
    s = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float)
    return c + s * ext


def rib_integral(chest: Chest, rays: Rays, mat: Materials, out: np.ndarray) -> None:
    """Add the ribs to ``out`` (H, W): projected 3D centrelines with elliptical bone profile.

    Posterior and anterior halves are rasterised separately (they cross in most views) on a
    half-resolution grid; a Euclidean distance transform gives each pixel's distance to the
    nearest projected rib point and that point's projected half-width (section height x
    focal length / depth). The chord through a section of half-width w at offset d is
    ``2 t sqrt(1 - (d/w)^2)`` (t: semi-thickness along the ray), the marrow likewise with
    the cortical shell removed. Each rib has its own height, thickness and mineralisation
    (``chest.rib_scale``), widening toward its anterior end; the result is blurred by
    ``chest.bone_blur_mm[0]`` at the object (respiratory motion, penumbra).
    """
    H, W = rays.height, rays.width
    step = 2
    h2, w2 = (H + step - 1) // step, (W + step - 1) // step
    a_mm, t_mm = chest.rib_semi
    shell = 1.0
    d_cort = mat.cortical - mat.tissue
    d_marrow = mat.trabecular - mat.tissue
    acc = np.zeros((h2, w2), dtype=np.float32)
    depths = []
    for posterior in (True, False):
        pts, a_l, t_l, r_l = [], [], [], []
        for r, rib in enumerate(chest.ribs):
            n = rib.shape[0]
            half = rib[: n // 2 + 1] if posterior else rib[n // 2 :]
            # Densify so projected neighbours are < 1 coarse pixel apart.
            seg = np.linspace(0.0, 1.0, 4, endpoint=False)
            dense = (half[:-1, None, :] * (1 - seg[None, :, None])) + (
                half[1:, None, :] * seg[None, :, None]
            )
            dense = dense.reshape(-1, 3)
            prog = np.linspace(0.0, 0.5, len(dense)) + (0.0 if posterior else 0.5)
            ha, ht, rho = (float(x) for x in chest.rib_scale[r])
            pts.append(dense)
            a_l.append(a_mm * ha * (0.85 + 0.35 * prog))
            t_l.append(np.full(len(dense), t_mm * ht))
            r_l.append(np.full(len(dense), rho))
        P3 = np.concatenate(pts)
        a_pt, t_pt, rho_pt = np.concatenate(a_l), np.concatenate(t_l), np.concatenate(r_l)
        uv = rays.project(P3) / step
        depth = rays.depth(P3)
        ok = np.isfinite(uv).all(axis=1)
        ui = np.rint(uv[ok, 0]).astype(np.int64)
        vi = np.rint(uv[ok, 1]).astype(np.int64)
        inside = (ui >= -20) & (ui < w2 + 20) & (vi >= -20) & (vi < h2 + 20)
        if not inside.any():
            continue
        sel = np.flatnonzero(ok)[inside]
        depths.append(float(np.median(depth[sel])))
        wpx = a_pt[sel] * rays.focal_px / depth[sel] / step
        ui, vi = ui[inside] + 20, vi[inside] + 20
        label = np.zeros((h2 + 40, w2 + 40), dtype=np.int64)
        label[vi, ui] = np.arange(1, ui.size + 1)
        dist, (iy, ix) = ndi.distance_transform_edt(label == 0, return_indices=True)
        dist = dist[20:-20, 20:-20]
        idx = label[iy[20:-20, 20:-20], ix[20:-20, 20:-20]] - 1
        w = wpx[idx]
        a_i, t_i, rho_i = a_pt[sel][idx], t_pt[sel][idx], rho_pt[sel][idx]
        r_out = np.clip(dist / w, 0.0, 1.0)
        w_in = w * np.maximum(a_i - shell, 0.5) / a_i
        r_in = np.clip(dist / w_in, 0.0, 1.0)
        chord_out = 2.0 * t_i * np.sqrt(1.0 - r_out**2)
        chord_in = 2.0 * np.maximum(t_i - shell, 0.3) * np.sqrt(1.0 - r_in**2)
        small = rho_i * (d_cort * (chord_out - chord_in) + d_marrow * chord_in)
        if not posterior:
            small *= 0.6  # anterior ribs are thinner and less mineralised
        acc += small.astype(np.float32)
    if not depths:
        return
    sigma = chest.bone_blur_mm[0] * rays.focal_px / float(np.mean(depths)) / step
    if sigma > 0.2:
        acc = ndi.gaussian_filter(acc, sigma, mode="nearest")
    out += upsample(acc, H, W)


def upsample(img: np.ndarray, H: int, W: int) -> np.ndarray:
    """Bilinear upsampling of a coarse grid to (H, W).

    The coarse grid samples full-resolution pixels 0, step, 2 step, ... with
    step = ceil(H / h); pixels past the last coarse sample repeat it.
    """
    h, w = img.shape
    if (h, w) == (H, W):
        return img
    if -(-H // h) == 2 and -(-W // w) == 2:
        return _upsample2(img, H, W)

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = -(-n_out // n_in)
        x = np.minimum(np.arange(n_out, dtype=np.float32) / step, n_in - 1)
        x0 = np.minimum(x.astype(np.int64), max(n_in - 2, 0))
        x1 = np.minimum(x0 + 1, n_in - 1)
        return x0, x1, (x - x0).astype(np.float32)

    y0, y1, fy = axis(H, h)
    x0, x1, fx = axis(W, w)
    top = img[y0]
    bot = img[y1]
    fx = fx[None, :]
    a = top[:, x0] * (1 - fx) + top[:, x1] * fx
    b = bot[:, x0] * (1 - fx) + bot[:, x1] * fx
    fy = fy[:, None]
    return a * (1 - fy) + b * fy


def _upsample2(img: np.ndarray, H: int, W: int) -> np.ndarray:
    """:func:`upsample` for a step of exactly 2 on both axes, by slicing (same values)."""

    def rows(x: np.ndarray, n: int) -> np.ndarray:
        m = x.shape[0]
        y = np.empty((n, *x.shape[1:]), dtype=np.float32)
        y[0::2] = x[: (n + 1) // 2]
        mid = 0.5 * (x[:-1] + x[1:])
        k = n // 2
        y[1::2][: min(k, m - 1)] = mid[:k]
        if k > m - 1:
            y[1::2][m - 1 :] = x[-1]
        return y

    return rows(rows(img.astype(np.float32, copy=False), H).T, W).T.copy()


def power_law_texture(
    rng: np.random.Generator, shape: tuple[int, int], beta: float, f_min: float = 1.0 / 256
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian texture (h, w) with power spectrum ~ 1/f^beta.

    Frequencies in cycles/pixel; below ``f_min`` the spectrum is flat (no DC blow-up).
    """
    h, w = shape
    noise = rng.standard_normal((h, w), dtype=np.float32)
    F = sfft.rfft2(noise)
    fy = sfft.fftfreq(h)[:, None]
    fx = sfft.rfftfreq(w)[None, :]
    f = np.maximum(np.sqrt(fx * fx + fy * fy), f_min)
    F *= (f ** (-beta / 2.0)).astype(np.float32)
    F[0, 0] = 0.0
    tex = sfft.irfft2(F, s=(h, w))
    sd = float(tex.std())
    return (tex / sd if sd > 0 else tex).astype(np.float32)


#: Amplitudes (attenuation units, times clutter) of the soft-tissue 1/f^3 texture and
#: the 1/f^2 mottle (generator version 1's; version 2 draws its own, ImagingParams).
TEXTURE_WEIGHTS = (0.06, 0.03)


def texture_integral(
    rng: np.random.Generator,
    H: int,
    W: int,
    lung: np.ndarray,
    clutter: float,
    mat: Materials,
    weights: tuple[float, float] = TEXTURE_WEIGHTS,
) -> np.ndarray:
    """Soft-tissue and lung texture (H, W) in attenuation units (2D procedural).

    Soft tissue: 1/f^3 texture (anatomical noise; Burgess 2001) of amplitude ~0.06 x
    clutter plus a 1/f^2 mid-scale mottle (amplitude 0.03, flat below 1/40 cycles/px:
    overlapping soft-tissue and vessel shadows of 5-20 mm); ``weights`` sets both. Lung:
    1/f^2.5 texture (pulmonary vessels and airways) scaled by the local lung chord (mm) so
    it appears only where there is lung. Generated at half resolution.
    """
    h, w = (H + 1) // 2, (W + 1) // 2
    soft = power_law_texture(rng, (h, w), 3.0, f_min=1.0 / 128)
    mid = power_law_texture(rng, (h, w), 2.0, f_min=1.0 / 40)
    fine = power_law_texture(rng, (h, w), 2.5, f_min=1.0 / 64)
    lung_h = upsample(lung.astype(np.float32), h, w)
    lung_amp = 0.12 * (mat.tissue - mat.lung) * lung_h * 0.25
    w_soft, w_mid = weights
    tex = clutter * (w_soft * soft + w_mid * mid + lung_amp * np.maximum(fine, -2.5))
    return upsample(tex.astype(np.float32), H, W)


def chest_integral(
    anatomy: Anatomy,
    rays: Rays,
    mat: Materials,
    rng: np.random.Generator,
    clutter: float,
    texture_weights: tuple[float, float] = TEXTURE_WEIGHTS,
) -> np.ndarray:
    """Whole background line integral (H, W) float32 (dimensionless) for one view
    (``texture_weights``: :func:`texture_integral`'s ``weights``)."""
    chest = draw_chest(anatomy)
    H, W = rays.height, rays.width
    # Heart and diaphragm edges softened by ~4 px: cardiac and respiratory motion during
    # the pulse and the heart not being an exact ellipsoid.
    soft = ndi.gaussian_filter(soft_tissue_integral(chest, rays, mat, step=4), 1.0)
    total = upsample(soft, H, W)
    # The spine is blurred by several pixels (see spine_integral): a half-resolution grid
    # (coarse pixel i at full pixel 2 i, as upsample expects) is accurate enough.
    half = rays.half()
    spine = np.zeros((half.height, half.width), dtype=np.float32)
    spine_integral(chest, half, mat, spine)
    total += upsample(spine, H, W)
    rib_integral(chest, rays, mat, total)
    if clutter > 0:
        lung = lung_chord(chest, rays, step=4)
        total += texture_integral(rng, H, W, lung, clutter, mat, texture_weights)
    return total
