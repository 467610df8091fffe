"""SR training data: mesh initialisation run once per synthetic case and cached.

For every seed the engine's case is written to a temporary folder and read back through
the runtime (DICOM decoding included), then mesh initialisation runs with the TRUE view
geometry and without geometry refinement. Why the true geometry: part of the header error
is unobservable from two images (docs/DATASET.md), so an MI mesh made with the headers is
displaced from the truth in a way no image feature explains; training on it would teach
the network to guess. With the true geometry the input mesh, the image features and the
target agree; at run time SR works in the refined geometry, where mesh and images agree.

One ``<key>.npz`` per case (float32 unless noted):

- ``crops`` (2, C, H, W) float16: the encoder input per view (standardised image crop,
  segmenter probability), exactly as :func:`angio_deploy.pipeline.sr.encoder_input`.
- ``crop_P`` (2, 3, 4) float64: world-to-crop projections.
- ``mi`` (6000, 3), ``truth`` (6000, 3): world mm, ring-major.
- ``reference`` (3,) float64: view A's direction (the frame's roll).

Beside it, ``<key>.surface.npy`` (6000, 3) float32: each MI vertex's nearest point on the
truth surface (:func:`surface_target`), the correspondence-free regression target.

``index.json`` lists the cases, the failures (with their errors), the segmenter (its
model hash), the generator version and the channels.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import multiprocessing as mp
import tempfile
import time
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

INDEX = "index.json"
SURFACE_SUFFIX = ".surface.npy"
FORMAT = "angio-sr-cache/1"


@lru_cache(maxsize=2)
def _network(models_dir: str | None):
    from angio_deploy.pipeline.segmenters import OnnxSegmenter

    return OnnxSegmenter(folder=models_dir, intra_op_threads=1)


def _segmenter(kind: str, models_dir: str | None, masks=None):
    from angio_deploy.pipeline.segmenters import OracleSegmenter

    if kind == "network":
        return _network(models_dir)
    if kind == "oracle":
        return OracleSegmenter(masks)
    raise ValueError(f"segmenter must be 'network' or 'oracle', got {kind!r}")


def case_sample(seed: int, segmenter: str = "network", models_dir: str | None = None):
    """(arrays dict, segmenter report) for one seed; raises AngioDeployError when MI fails."""
    from PIL import Image

    from angio_deploy.evaluate import with_true_geometry
    from angio_deploy.io.case import load_case
    from angio_deploy.io.mesh_io import read_ply
    from angio_deploy.pipeline.mi import mesh_initialisation
    from angio_deploy.pipeline.sr import encoder_input
    from angio_deploy.synth.engine import generate_case, write_case

    with tempfile.TemporaryDirectory() as tmp:
        d = write_case(generate_case(int(seed)), Path(tmp) / "case")
        case = with_true_geometry(load_case(d))
        masks = None
        if segmenter == "oracle":
            masks = {
                v.name: np.asarray(Image.open(d / "truth" / f"mask_{v.name}.png")) > 0
                for v in case.views
            }
        seg = _segmenter(segmenter, models_dir, masks)
        mi = mesh_initialisation(case, seg, geometry_refinement=False)
        truth, _, _ = read_ply(d / "truth" / "mesh.ply")
    arrays = {
        "crops": np.stack([encoder_input(vr) for vr in mi.views]).astype(np.float16),
        "crop_P": np.stack(
            [vr.crop.projection(g.P) for vr, g in zip(mi.views, mi.geometries, strict=True)]
        ),
        "mi": mi.vertices.astype(np.float32),
        "truth": np.asarray(truth, dtype=np.float32),
        "reference": np.asarray(mi.geometries[0].direction, dtype=np.float64),
    }
    return arrays, seg.report()


def _job(args: tuple[int, str, str | None, str]) -> dict[str, Any]:
    from angio_deploy.errors import AngioDeployError

    seed, segmenter, models_dir, out = args
    key = f"seed_{seed:07d}"
    try:
        arrays, report = case_sample(seed, segmenter, models_dir)
    except AngioDeployError as exc:
        return {"seed": seed, "error": str(exc)}
    final = Path(out) / f"{key}.npz"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(final, buf.getvalue())  # a killed build leaves no half-written case
    # A rebuilt case (a broken file redone) needs its surface target recomputed.
    final.with_suffix(SURFACE_SUFFIX).unlink(missing_ok=True)
    return {"seed": seed, "key": key, "segmenter": report}


def surface_target(mi: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each MI vertex's nearest point (mm) on the truth surface (the open ring mesh).

    Why not the truth vertex of the same index: MI and truth place their rings and the
    vertices around each ring independently (clicks, frame roll), so vertex i of MI and of
    the truth differ along the vessel and around it by about as much as the surfaces
    differ (true geometry, val: 0.17 mm along the axis, 0.25 mm across, while the ring
    radii differ by 0.09 mm). A network regressing that gets no image evidence for it
    and learns to output nothing (seen: 0.016 mm mean displacement after an epoch). The
    nearest surface point keeps MI's parametrisation and asks only for the surface.
    """
    from angio_deploy.metrics.surface import closest_points
    from angio_deploy.topology import N_AROUND, ring_faces

    faces = ring_faces(len(truth) // N_AROUND, N_AROUND)
    return closest_points(mi, truth, faces)[1].astype(np.float32)


def _surface_job(path: str) -> None:
    p = Path(path)
    with np.load(p) as z:
        target = surface_target(z["mi"].astype(np.float64), z["truth"].astype(np.float64))
    buf = io.BytesIO()
    np.save(buf, target)
    atomic_write_bytes(p.with_suffix(SURFACE_SUFFIX), buf.getvalue())


def add_surface_targets(out: str | Path, workers: int = 1) -> int:
    """Write the missing ``<key>.surface.npy`` of a cache folder; returns how many."""
    todo = [
        str(p)
        for p in sorted(Path(out).glob("seed_*.npz"))
        if not p.with_suffix(SURFACE_SUFFIX).is_file()
    ]
    if workers > 1 and len(todo) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_surface_job, todo, chunksize=8):
                pass
    else:
        for t in todo:
            _surface_job(t)
    return len(todo)


def _complete(path: Path) -> bool:
    """Whether a cached case file opens and holds every array."""
    try:
        # Our own handle: np.load leaks its file when the zip is broken.
        with open(path, "rb") as fh, np.load(fh) as z:
            return {"crops", "crop_P", "mi", "truth", "reference"} <= set(z.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def build_sr_cache(
    out: str | Path,
    seeds: Sequence[int],
    *,
    segmenter: str = "network",
    models_dir: str | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Build (or complete: cases already cached are kept) an SR cache folder."""
    from angio_deploy.synth.engine import GENERATOR_VERSION

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in seeds if not _complete(out / f"seed_{int(s):07d}.npz")]
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    jobs = [(int(s), segmenter, models_dir, str(out)) for s in todo]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for k, r in enumerate(pool.imap(_job, jobs, chunksize=4)):
                results.append(r)
                if (k + 1) % 50 == 0:
                    log.info("%d/%d cases (%.0f s)", k + 1, len(jobs), time.perf_counter() - t0)
    else:
        for k, j in enumerate(jobs):
            results.append(_job(j))
            if (k + 1) % 50 == 0:
                log.info("%d/%d cases (%.0f s)", k + 1, len(jobs), time.perf_counter() - t0)
    old = json.loads((out / INDEX).read_text()) if (out / INDEX).is_file() else {}
    failures = {
        **old.get("failures", {}),
        **{str(r["seed"]): r["error"] for r in results if "error" in r},
    }
    seg_report = next((r["segmenter"] for r in results if "segmenter" in r), old.get("segmenter"))
    keys = sorted(p.stem for p in out.glob("seed_*.npz"))
    index = {
        "format": FORMAT,
        "generator_version": GENERATOR_VERSION,
        "segmenter_kind": segmenter,
        "segmenter": seg_report,
        "geometry": "true (truth/meta.json), no geometry refinement",
        "keys": keys,
        "failures": failures,
        "seconds": round(time.perf_counter() - t0, 1) + old.get("seconds", 0.0),
    }
    (out / INDEX).write_text(json.dumps(index, indent=1, default=str) + "\n")
    log.info("%d cases cached, %d failed", len(keys), len(failures))
    n = add_surface_targets(out, workers)
    log.info("%d surface targets written", n)
    return index


class SRCache:
    """Read side of an SR cache folder: ``len``, ``[i]`` -> dict of numpy arrays."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.index = json.loads((self.path / INDEX).read_text())
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{self.path}: not an SR cache ({self.index.get('format')!r})")
        self.keys: list[str] = list(self.index["keys"])

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """The case's arrays, plus ``truth_surface`` where its surface target exists."""
        with np.load(self.path / f"{self.keys[i]}.npz") as z:
            out = {k: z[k] for k in z.files}
        surface = self.path / f"{self.keys[i]}{SURFACE_SUFFIX}"
        if surface.is_file():
            out["truth_surface"] = np.load(surface)
        return out

    def mi_mae_mm(self) -> np.ndarray:
        """Per case: mean distance (mm) from each MI vertex to its truth vertex."""
        out = np.empty(len(self.keys))
        for i, key in enumerate(self.keys):
            with np.load(self.path / f"{key}.npz") as z:  # reads only these two arrays
                out[i] = np.linalg.norm(z["mi"] - z["truth"], axis=1).mean()
        return out

    def within(self, max_mi_mae_mm: float | None) -> SRCache:
        """The cases whose MI is within ``max_mi_mae_mm`` of the truth (:meth:`mi_mae_mm`;
        None keeps all): MI that followed another vessel is beyond a local correction."""
        if max_mi_mae_mm is None:
            return self
        keep = self.mi_mae_mm() <= max_mi_mae_mm
        log.info(
            "%s: %d of %d cases kept (MI MAE <= %.2f mm)",
            self.path.name,
            keep.sum(),
            len(keep),
            max_mi_mae_mm,
        )
        return self.subset(keep)

    def subset(self, keep: np.ndarray) -> SRCache:
        """The same cache restricted to the cases where ``keep`` (bool, one per case) holds."""
        new = copy.copy(self)
        new.keys = [k for k, ok in zip(self.keys, np.asarray(keep, bool), strict=True) if ok]
        return new
