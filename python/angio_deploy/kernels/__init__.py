"""The geometry kernels: native C++ core with plain-numpy twins.

The backend is chosen once, at import: the compiled extension ``angio_deploy._native``
when it imports, otherwise (or when the environment variable ANGIO_DEPLOY_PUREPYTHON=1
is set) the numpy twins in :mod:`angio_deploy.kernels._numpy`. ``BACKEND`` records the
choice ("native" or "numpy") and the run report carries it.

Every public function validates and converts its arguments here, once, so both
backends see the same contiguous float64 (or float32 for feature maps) arrays.
:func:`get_backend` returns the same API bound to a named backend, which is how the tests
compare the two.

Threads: the native core's multi-threaded kernels (:func:`sample_bilinear`,
:func:`tube_path_lengths`) use at most :func:`get_threads` worker threads (and never more
than 8, fewer when the work is small; any count gives the same values). The default is
$ANGIO_DEPLOY_THREADS when set, else the CPUs this process may use (its affinity mask,
capped by a cgroup CPU quota, as ONNX Runtime's sessions count them). :func:`set_threads`
changes it for the process; :func:`thread_limit` for the calling thread (a
``with`` block, e.g. one :class:`~angio_deploy.api.Reconstructor` call), without touching
other threads' runs. A per-call ``threads=`` argument overrides both.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import types
from collections.abc import Iterator, Sequence

import numpy as np

from . import _numpy

log = logging.getLogger(__name__)

ENV_FORCE_NUMPY = "ANGIO_DEPLOY_PUREPYTHON"
ENV_THREADS = "ANGIO_DEPLOY_THREADS"


def _load_native() -> types.ModuleType | None:
    try:
        from angio_deploy import _native
    except ImportError as exc:  # pragma: no cover - depends on the build
        log.warning("native core unavailable (%s); using the numpy twins", exc)
        return None
    return _native


def _forced_numpy() -> bool:
    return os.environ.get(ENV_FORCE_NUMPY, "").strip().lower() not in ("", "0", "false", "no")


_NATIVE = _load_native()
BACKEND = "numpy" if (_forced_numpy() or _NATIVE is None) else "native"


def available_backends() -> list[str]:
    """Names of the backends this installation can use ("native" only when compiled)."""
    return ["native", "numpy"] if _NATIVE is not None else ["numpy"]


def default_threads() -> int:
    """$ANGIO_DEPLOY_THREADS (a positive integer) when set, else the CPUs this process may
    use (affinity mask capped by the cgroup quota). A bad value is logged and ignored.
    Counted once per value of the variable (kernels are called many times a case)."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if raw not in _DEFAULT_THREADS:
        _DEFAULT_THREADS[raw] = _count_threads(raw)
    return _DEFAULT_THREADS[raw]


_DEFAULT_THREADS: dict[str, int] = {}


def _count_threads(raw: str) -> int:
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n >= 1:
            return n
        log.warning("%s=%r is not a positive integer; ignored", ENV_THREADS, raw)
    from angio_deploy.backends.session import available_cpu_count

    return available_cpu_count()


# Process-wide setting (set_threads) and the calling context's override (thread_limit):
# a contextvar so that two host threads running cases with different limits never see
# each other's value.
_process_threads: int | None = None
_context_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "angio_deploy_threads", default=None
)


def check_threads(n: int) -> int:
    """``n`` as an int; ValueError unless a positive integer."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    return int(n)


def set_threads(n: int | None) -> None:
    """Set the native core's thread limit for the whole process (None: back to
    :func:`default_threads`)."""
    global _process_threads
    _process_threads = None if n is None else check_threads(n)


def get_threads() -> int:
    """The thread limit a kernel called now uses: the calling context's
    (:func:`thread_limit`), else the process's (:func:`set_threads`), else
    :func:`default_threads`."""
    n = _context_threads.get()
    if n is None:
        n = _process_threads
    return default_threads() if n is None else n


@contextlib.contextmanager
def thread_limit(n: int | None) -> Iterator[None]:
    """``with thread_limit(n):`` kernels called in this thread (context) use at most ``n``
    threads; None leaves the current limit."""
    token = _context_threads.set(None if n is None else check_threads(n))
    try:
        yield
    finally:
        _context_threads.reset(token)


def _threads_arg(threads: int | None) -> int:
    return get_threads() if threads is None else check_threads(threads)


def _f64(a, name: str, shape_tail: tuple[int, ...] | None = None, ndim: int | None = None):
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape_tail is not None and arr.shape[arr.ndim - len(shape_tail) :] != shape_tail:
        raise ValueError(f"{name} must have trailing shape {shape_tail}, got {arr.shape}")
    return arr


def _matrix(P, name: str = "P") -> np.ndarray:
    P = _f64(P, name, (3, 4), ndim=2)
    return P


class Kernels:
    """The kernel API bound to one implementation (``native`` or ``numpy``)."""

    def __init__(self, name: str):
        if name == "native":
            if _NATIVE is None:
                from angio_deploy.errors import BackendUnavailableError

                raise BackendUnavailableError("the native core (angio_deploy._native) is not built")
            self._impl = _NATIVE
        elif name == "numpy":
            self._impl = _numpy
        else:
            raise ValueError(f"unknown kernel backend {name!r}; use 'native' or 'numpy'")
        self.name = name

    def __repr__(self) -> str:
        return f"Kernels({self.name!r})"

    # -- projection -------------------------------------------------------------
    def project(self, P, X) -> np.ndarray:
        """Project world points X (N, 3) mm to pixels [u, v].

        P is one 3x4 matrix (-> (N, 2)) or a stack (V, 3, 4) (-> (V, N, 2)). Points at or
        behind the source give NaN.
        """
        Pa = np.ascontiguousarray(P, dtype=np.float64)
        single = Pa.ndim == 2
        Ps = Pa[None] if single else Pa
        if Ps.ndim != 3 or Ps.shape[1:] != (3, 4):
            raise ValueError(f"P must be (3, 4) or (V, 3, 4), got {Pa.shape}")
        Xa = _f64(X, "X", (3,), ndim=2)
        out = self._impl.project(Ps, Xa)
        return out[0] if single else out

    def backproject(self, P, uv) -> tuple[np.ndarray, np.ndarray]:
        """Rays through pixels uv (N, 2): origins (N, 3) mm at the source, unit directions."""
        return self._impl.backproject(_matrix(P), _f64(uv, "uv", (2,), ndim=2))

    # -- triangulation ------------------------------------------------------------
    def triangulate(self, P1, P2, uv1, uv2, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Corresponding pixels uv1, uv2 (N, 2) -> world points (N, 3) mm and RMS error (N,) px."""
        uv1 = _f64(uv1, "uv1", (2,), ndim=2)
        uv2 = _f64(uv2, "uv2", (2,), ndim=2)
        if uv1.shape != uv2.shape:
            raise ValueError(f"uv1 {uv1.shape} and uv2 {uv2.shape} must have the same shape")
        if iterations < 0:
            raise ValueError("iterations must be >= 0")
        return self._impl.triangulate(
            _matrix(P1, "P1"), _matrix(P2, "P2"), uv1, uv2, int(iterations)
        )

    def correspond_centrelines(
        self, P1, P2, line1, line2, n_out: int = 100, iterations: int = 3
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two 2D centrelines (start to end, px) -> 3D centreline (n_out, 3) mm.

        Also returns the sub-pixel partner on line 2 of every point of line 1 (M1, 2).
        """
        line1 = _f64(line1, "line1", (2,), ndim=2)
        line2 = _f64(line2, "line2", (2,), ndim=2)
        if line1.shape[0] < 2 or line2.shape[0] < 2:
            raise ValueError("each centreline needs at least 2 points")
        if n_out < 2:
            raise ValueError("n_out must be >= 2")
        return self._impl.correspond_centrelines(
            _matrix(P1, "P1"), _matrix(P2, "P2"), line1, line2, int(n_out), int(iterations)
        )

    # -- meshing ------------------------------------------------------------------
    def tube_mesh(
        self,
        centres,
        radii=None,
        *,
        ellipses=None,
        n_around: int = 60,
        caps: bool = False,
        reference=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tube around centres (N, 3) mm -> vertices (N * n_around, 3) mm, faces (F, 3) int64.

        Give ``radii`` (N,) mm for circular rings or ``ellipses`` (N, 3) = (semi-axis a mm,
        semi-axis b mm, angle of a from the frame normal in radians). ``caps`` closes both
        ends (watertight) without adding vertices. Vertex j of a ring lies on the ray at
        angle 2 pi j / n_around from the ring's frame normal (at the ellipse's distance in
        that direction). ``reference`` (3,) fixes the first frame normal: the reference
        made orthogonal to the first tangent (default: the world axis least aligned with
        it); later frames are rotation-minimising.
        """
        c = _f64(centres, "centres", (3,), ndim=2)
        if c.shape[0] < 2:
            raise ValueError("a tube needs at least 2 centre points")
        if (radii is None) == (ellipses is None):
            raise ValueError("give exactly one of radii or ellipses")
        if radii is not None:
            r = _f64(radii, "radii", ndim=1)
            if r.shape[0] != c.shape[0]:
                raise ValueError(f"radii has {r.shape[0]} values for {c.shape[0]} centres")
            axes = np.ascontiguousarray(np.stack([r, r, np.zeros_like(r)], axis=1))
        else:
            axes = _f64(ellipses, "ellipses", (3,), ndim=2)
            if axes.shape[0] != c.shape[0]:
                raise ValueError(f"ellipses has {axes.shape[0]} rows for {c.shape[0]} centres")
        if n_around < 3:
            raise ValueError("n_around must be >= 3")
        ref = np.zeros(3) if reference is None else _f64(reference, "reference", (3,), ndim=1)
        return self._impl.tube_mesh(c, axes, int(n_around), bool(caps), ref)

    # -- sampling and rasterisation -------------------------------------------------
    def sample_bilinear(
        self,
        maps: Sequence[np.ndarray],
        uv,
        width: int,
        height: int,
        *,
        threads: int | None = None,
    ) -> np.ndarray:
        """Bilinear samples of channel-last maps [(Hk, Wk, Ck)] at image pixels uv (N, 2).

        ``width`` x ``height`` is the image the pixel coordinates refer to; each map covers
        the whole image (align_corners=False, border clamp). Returns (N, sum Ck) in the
        maps' dtype (float32 or float64, all maps alike). ``threads``: most worker
        threads (default :func:`get_threads`).
        """
        if len(maps) == 0:
            raise ValueError("maps must not be empty")
        dtype = np.dtype(maps[0].dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"maps must be float32 or float64, got {dtype}")
        ms = []
        for k, m in enumerate(maps):
            if m.dtype != dtype or m.ndim != 3:
                raise ValueError(f"map {k} must be a 3-D (H, W, C) {dtype} array")
            ms.append(np.ascontiguousarray(m))
        if width < 1 or height < 1:
            raise ValueError("width and height must be positive")
        n_threads = _threads_arg(threads)
        return self._impl.sample_bilinear(
            ms, _f64(uv, "uv", (2,), ndim=2), int(width), int(height), n_threads
        )

    def rasterise_silhouette(self, P, vertices, faces, width: int, height: int) -> np.ndarray:
        """Binary silhouette (height, width) uint8 of a triangle mesh projected with P."""
        V = _f64(vertices, "vertices", (3,), ndim=2)
        F = np.ascontiguousarray(faces, dtype=np.int64)
        if F.ndim != 2 or F.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {F.shape}")
        if F.size and (F.min() < 0 or F.max() >= V.shape[0]):
            raise ValueError("faces index vertices out of range")
        if width < 1 or height < 1:
            raise ValueError("width and height must be positive")
        return self._impl.rasterise_silhouette(_matrix(P), V, F, int(width), int(height))

    # -- image formation ------------------------------------------------------------
    def tube_path_lengths(
        self,
        P,
        centres,
        semi_axes,
        major_dir,
        width: int,
        height: int,
        supersample: int = 1,
        *,
        threads: int | None = None,
    ) -> np.ndarray:
        """Length (mm) of each pixel's X-ray path inside a tube -> (height, width) float64.

        The tube has M >= 2 cross-sections in the world frame (LPS mm): centres (M, 3) mm,
        ellipse semi-axes (M, 2) = (a, b) mm, and major_dir (M, 3), the direction of
        semi-axis a (perpendicular to the local tangent; any length, normalised here; its
        sign does not matter). It is the union of the M - 1 segments between consecutive
        centres (zero-length ones are skipped): elliptic cylinders with the averaged end
        ellipses, clipped by planes through the centres whose normals bisect adjacent
        segment directions, so the segments tile the tube wherever its curvature radius
        exceeds its radius.

        The ray of pixel (u = column, v = row) leaves the source (the camera centre of P)
        along M^-1 (u, v, 1), as :meth:`backproject`; only the part in front of the source
        counts and it is not cut at the detector. ``supersample`` s averages s x s sub-rays
        per pixel at offsets (i + 0.5) / s - 0.5 in u and v. ``threads``: most worker
        threads (default :func:`get_threads`).
        """
        P = _matrix(P)
        c = _f64(centres, "centres", (3,), ndim=2)
        m = c.shape[0]
        if m < 2:
            raise ValueError("a tube needs at least 2 centre points")
        ax = _f64(semi_axes, "semi_axes", (2,), ndim=2)
        if ax.shape[0] != m:
            raise ValueError(f"semi_axes has {ax.shape[0]} rows for {m} centres")
        md = _f64(major_dir, "major_dir", (3,), ndim=2)
        if md.shape[0] != m:
            raise ValueError(f"major_dir has {md.shape[0]} rows for {m} centres")
        if not np.isfinite(P).all():
            raise ValueError("P must be finite")
        if np.linalg.det(P[:, :3]) == 0.0:
            raise ValueError("P has a singular left 3x3 block (no camera centre)")
        if not np.isfinite(c).all():
            raise ValueError("centres must be finite")
        if not (np.isfinite(ax) & (ax > 0.0)).all():
            raise ValueError("semi_axes must be positive and finite")
        norm = np.sqrt(np.einsum("ij,ij->i", md, md))
        if not (np.isfinite(norm) & (norm > 0.0)).all():
            raise ValueError("major_dir rows must be finite and non-zero")
        md = np.ascontiguousarray(md / norm[:, None])
        if width < 1 or height < 1:
            raise ValueError("width and height must be positive")
        s = int(supersample)
        if s != supersample or s < 1:
            raise ValueError(f"supersample must be an integer >= 1, got {supersample!r}")
        n_threads = _threads_arg(threads)
        return self._impl.tube_path_lengths(P, c, ax, md, int(width), int(height), s, n_threads)


_BOUND: dict[str, Kernels] = {}


def get_backend(name: str | None = None) -> Kernels:
    """The kernel API bound to backend ``name`` (default: the one chosen at import)."""
    name = name or BACKEND
    if name not in _BOUND:
        _BOUND[name] = Kernels(name)
    return _BOUND[name]


_default = get_backend()
project = _default.project
backproject = _default.backproject
triangulate = _default.triangulate
correspond_centrelines = _default.correspond_centrelines
tube_mesh = _default.tube_mesh
sample_bilinear = _default.sample_bilinear
rasterise_silhouette = _default.rasterise_silhouette
tube_path_lengths = _default.tube_path_lengths

__all__ = [
    "BACKEND",
    "ENV_FORCE_NUMPY",
    "ENV_THREADS",
    "Kernels",
    "available_backends",
    "backproject",
    "check_threads",
    "correspond_centrelines",
    "default_threads",
    "get_backend",
    "get_threads",
    "project",
    "rasterise_silhouette",
    "sample_bilinear",
    "set_threads",
    "thread_limit",
    "triangulate",
    "tube_mesh",
    "tube_path_lengths",
]
