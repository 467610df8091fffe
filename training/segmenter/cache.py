"""Compact, memory-mappable data cache for the segmenter, built once from the engine.

Layout of a cache folder (no pickles anywhere)::

    meta.json     version, source (seeds + generator version, or case folders), counts,
                  image/mask storage, per-split provenance
    images.bin    every view's stored pixel values, uint16, flat (view_offset, view_shape)
    masks.bin     every sample's binary mask, np.packbits, flat (sample_mask_offset)
    tables.npz    small per-view and per-sample arrays (loaded with allow_pickle=False)

A *view* is one full-resolution angiogram; its float image in [0, 1] (MONOCHROME2 sense)
is ``stored / (2**bits - 1)``, exactly what :func:`angio_deploy.io.case.load_case` gives
for the engine's DICOM files. A *sample* is one segment in one view: its start/end click
points and its lumen mask at full image resolution. Segment 0 is the main SOI; segments
1.. are the case's side branches, each with its own mask.

Two sources:

* **seeds** (the default route): cases are generated in memory with
  :func:`angio_deploy.synth.engine.generate_case` -- no DICOM encode/decode, about 0.5 s a
  case -- and every segment gets its *own* mask re-rendered with
  :func:`angio_deploy.synth.truth.lumen_mask` on that segment's lumen piece. The main-SOI
  mask therefore holds the main segment only, although the engine's ``truth/mask_*.png``
  hold the union of main and side branches.
* **case folders** (anything in the case format with ``truth/mask_a.png`` and
  ``mask_b.png``): views via :func:`~angio_deploy.io.case.load_case` (re-quantised to
  16 bits), one main sample per view with the truth mask as written. Where a case has
  side branches that mask is the union; such samples are flagged (``sample_union``) and the
  dataset leaves them out unless asked (:class:`training.segmenter.dataset.SegDataset`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_VERSION = 1
META_FILE = "meta.json"
IMAGES_FILE = "images.bin"
MASKS_FILE = "masks.bin"
TABLES_FILE = "tables.npz"


@dataclass
class CaseRecord:
    """One case, ready to append to a cache: two views and their samples."""

    key: str  # "seed:<n>" or the folder name
    seed: int  # -1 for folder cases
    stored: list[np.ndarray]  # per view (H, W) uint16
    bits: list[int]
    has_side: bool
    # per sample: (view 0/1, segment, start uv, end uv, mask (H, W) uint8, union flag)
    samples: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, bool]]


def record_from_seed(
    seed: int,
    size: int | None = None,
    include_side: bool = True,
    version: str | int | None = None,
) -> CaseRecord:
    """Generate case ``seed`` of generator ``version`` (None: the engine's default) in
    memory and render a separate mask per segment."""
    from angio_deploy.synth.engine import generate_case
    from angio_deploy.synth.truth import lumen_mask, segment_slice

    case = generate_case(int(seed), size=size, version=version)
    a = case.anatomy
    segments = [a.soi, *(a.side_sois if include_side else [])]
    pieces = [segment_slice(a.vessels[s.vessel], s.s_start_mm, s.s_end_mm) for s in segments]
    samples = []
    for k, spec in enumerate(case.views):
        for j, piece in enumerate(pieces):
            pts = case.soi_points[k] if j == 0 else case.side_points[j - 1][k]
            mask = lumen_mask(spec.true, [piece])
            samples.append(
                (
                    k,
                    j,
                    np.asarray(pts["start"], np.float32),
                    np.asarray(pts["end"], np.float32),
                    mask,
                    False,
                )
            )
    return CaseRecord(
        key=f"seed:{seed}",
        seed=int(seed),
        stored=[np.asarray(s, dtype=np.uint16) for s in case.stored],
        bits=[int(b) for b in case.bits_stored],
        has_side=bool(a.side_sois),
        samples=samples,
    )


def record_from_folder(case_dir: str | Path) -> CaseRecord:
    """Read a case folder with truth masks (the union of main and side branches)."""
    from PIL import Image

    from angio_deploy.io.case import load_case

    case_dir = Path(case_dir)
    case = load_case(case_dir)
    has_side = bool(case.side_branches)
    stored, bits, samples = [], [], []
    for k, view in enumerate(case.views):
        img = np.clip(np.asarray(view.image, dtype=np.float64), 0.0, 1.0)
        stored.append(np.round(img * 65535.0).astype(np.uint16))
        bits.append(16)
        mask_path = case_dir / "truth" / f"mask_{view.name}.png"
        mask = (np.asarray(Image.open(mask_path)) > 0).astype(np.uint8)
        if mask.shape != img.shape:
            raise ValueError(f"{mask_path}: shape {mask.shape} != image shape {img.shape}")
        samples.append(
            (
                k,
                0,
                np.asarray(view.soi.start, np.float32),
                np.asarray(view.soi.end, np.float32),
                mask,
                has_side,
            )
        )
    meta_path = case_dir / "truth" / "meta.json"
    seed = -1
    if meta_path.is_file():
        seed = int(json.loads(meta_path.read_text(encoding="utf-8")).get("seed", -1))
    return CaseRecord(case_dir.name, seed, stored, bits, has_side, samples)


def record_from_real(
    data_dir: str | Path, image_id: int, *, tasks_per_image: int = 40, seed: int = 0
) -> CaseRecord:
    """One real image with a full-tree mask (``images/N.png``, ``masks/N.png``) as a
    one-view record whose samples are SOI tasks drawn from the mask
    (:func:`training.segmenter.real_tasks.make_tasks`)."""
    from angio_deploy.io.images import read_plain_image

    from .real_tasks import make_tasks

    data_dir = Path(data_dir)
    img = read_plain_image(data_dir / "images" / f"{image_id}.png")
    mask = read_plain_image(data_dir / "masks" / f"{image_id}.png") > 0.5
    stored = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint16)
    samples = [
        (
            0,
            0,
            t.start.astype(np.float32),
            t.end.astype(np.float32),
            t.truth.astype(np.uint8),
            False,
        )
        for t in make_tasks(mask, str(image_id), n_tasks=tasks_per_image, seed=seed)
    ]
    return CaseRecord(f"real:{image_id}", -1, [stored], [8], False, samples)


def _seed_job(args: tuple[int, int | None, bool, str | None]) -> CaseRecord:
    return record_from_seed(*args)


def _folder_job(path: str) -> CaseRecord:
    return record_from_folder(path)


def _records(
    seeds: Sequence[int] | None,
    case_dirs: Sequence[str | Path] | None,
    *,
    size: int | None,
    include_side: bool,
    workers: int,
    real: tuple[Path, Sequence[int], int] | None = None,
    version: str | None = None,
) -> Iterable[CaseRecord]:
    if real is not None:
        real_dir, ids, per_image = real
        for i in ids:
            yield record_from_real(real_dir, int(i), tasks_per_image=per_image)
        return
    if seeds is not None:
        fn, jobs = _seed_job, [(int(s), size, include_side, version) for s in seeds]
    else:
        fn, jobs = _folder_job, [str(p) for p in case_dirs or ()]
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    # imap keeps the input order: the cache is identical for any worker count.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(fn, jobs, chunksize=4)


def build_cache(
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    case_dirs: Sequence[str | Path] | None = None,
    size: int | None = None,
    include_side: bool = True,
    workers: int = 2,
    overwrite: bool = False,
    progress_every: int = 100,
    provenance: dict[str, Any] | None = None,
    real: tuple[str | Path, Sequence[int], int] | None = None,
    generator_version: str | int | None = None,
) -> Path:
    """Build a cache from engine ``seeds``, from ``case_dirs``, or from ``real`` = (a
    real-image folder with full-tree masks, image ids, tasks per image): exactly one.
    ``generator_version`` is the engine version the seeds are generated with (None: the
    engine's default); meta.json records it for seed caches (null for the others, whose
    pixels are not generated here).

    Written into a hidden temporary sibling and swapped into place when complete, so an
    interrupted build leaves no half cache. Returns the cache folder.
    """
    from angio_deploy import __version__
    from angio_deploy.io.atomic import atomic_output_dir
    from angio_deploy.synth.engine import GENERATOR_VERSION, GENERATOR_VERSIONS

    version = GENERATOR_VERSION if generator_version is None else str(generator_version)
    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"generator version {version!r} not in {GENERATOR_VERSIONS}")
    if generator_version is not None and seeds is None:
        raise ValueError("generator_version applies to seed caches only")
    if sum(x is not None for x in (seeds, case_dirs, real)) != 1:
        raise ValueError("give exactly one of seeds, case_dirs and real")
    if real is not None:
        real = (Path(real[0]), [int(i) for i in real[1]], int(real[2]))
        total = len(real[1])
    else:
        total = len(seeds) if seeds is not None else len(case_dirs or ())
    if total == 0:
        raise ValueError("no cases to build from")
    out = Path(out_dir)
    t0 = time.perf_counter()
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        v_seed, v_index, v_shape, v_bits, v_offset, v_side, v_key = [], [], [], [], [], [], []
        s_view, s_segment, s_points, s_mask_offset, s_union = [], [], [], [], []
        img_pos = 0
        mask_pos = 0
        with open(tmp / IMAGES_FILE, "wb") as fi, open(tmp / MASKS_FILE, "wb") as fm:
            for n, rec in enumerate(
                _records(
                    seeds,
                    case_dirs,
                    size=size,
                    include_side=include_side,
                    workers=workers,
                    real=real,
                    version=version,
                )
            ):
                first_view = len(v_seed)
                for k, (arr, bits) in enumerate(zip(rec.stored, rec.bits, strict=True)):
                    a = np.ascontiguousarray(arr, dtype="<u2")
                    fi.write(a.tobytes())
                    v_seed.append(rec.seed)
                    v_index.append(k)
                    v_shape.append(a.shape)
                    v_bits.append(bits)
                    v_offset.append(img_pos)
                    v_side.append(rec.has_side)
                    v_key.append(rec.key)
                    img_pos += a.size
                for k, seg, start, end, mask, union in rec.samples:
                    packed = np.packbits(np.asarray(mask, dtype=bool).ravel())
                    fm.write(packed.tobytes())
                    s_view.append(first_view + k)
                    s_segment.append(seg)
                    s_points.append(np.stack([start, end]))
                    s_mask_offset.append(mask_pos)
                    s_union.append(union)
                    mask_pos += packed.size
                if progress_every and (n + 1) % progress_every == 0:
                    el = time.perf_counter() - t0
                    log.info("cache %s: %d/%d cases, %.1f s", out.name, n + 1, total, el)
        np.savez(
            tmp / TABLES_FILE,
            view_seed=np.asarray(v_seed, np.int64),
            view_index=np.asarray(v_index, np.int8),
            view_shape=np.asarray(v_shape, np.int32).reshape(-1, 2),
            view_bits=np.asarray(v_bits, np.int8),
            view_offset=np.asarray(v_offset, np.int64),
            view_has_side=np.asarray(v_side, bool),
            sample_view=np.asarray(s_view, np.int32),
            sample_segment=np.asarray(s_segment, np.int16),
            sample_points=np.asarray(s_points, np.float32).reshape(-1, 2, 2),
            sample_mask_offset=np.asarray(s_mask_offset, np.int64),
            sample_union=np.asarray(s_union, bool),
        )
        meta = {
            "format": "angio-deploy-seg-cache",
            "cache_version": CACHE_VERSION,
            "source": "seeds" if seeds is not None else "case_folders" if real is None else "real",
            "generator_version": version if seeds is not None else None,
            "package_version": __version__,
            "size": size,
            "include_side_branches": include_side if seeds is not None else False,
            "main_mask": (
                "main SOI only"
                if seeds is not None
                else "truth mask as written"
                if real is None
                else "SOI task truth from the full-tree mask (real_tasks)"
            ),
            "n_cases": total,
            "n_views": len(v_seed),
            "n_samples": len(s_view),
            "images": {"file": IMAGES_FILE, "dtype": "<u2", "elements": img_pos},
            "masks": {"file": MASKS_FILE, "dtype": "packbits", "bytes": mask_pos},
            "image_scale": "float image = stored / (2**bits - 1), MONOCHROME2",
            "points": "pixels [u, v] = [column, row], start then end",
            "case_keys": sorted(set(v_key)) if seeds is None else None,
            "real": (
                {"dir": str(real[0]), "ids": real[1], "tasks_per_image": real[2]}
                if real is not None
                else None
            ),
            "seeds": _compress_seeds(seeds) if seeds is not None else None,
            "build_seconds": round(time.perf_counter() - t0, 1),
            **({"provenance": provenance} if provenance else {}),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info(
        "cache %s: %d cases, %d views, %d samples in %.1f s",
        out,
        total,
        len(v_seed),
        len(s_view),
        time.perf_counter() - t0,
    )
    return out


def _compress_seeds(seeds: Sequence[int]) -> list[list[int]]:
    """Seeds as [first, stop) ranges."""
    out: list[list[int]] = []
    for s in seeds:
        s = int(s)
        if out and out[-1][1] == s:
            out[-1][1] = s + 1
        else:
            out.append([s, s + 1])
    return out


class SegCache:
    """Read-only view of a cache folder; arrays are memory-mapped, safe to share with
    DataLoader worker processes (each opens its own maps lazily)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path}: not a segmenter data cache (no {META_FILE})")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.meta.get("cache_version") != CACHE_VERSION:
            raise ValueError(
                f"{meta_path}: cache_version {self.meta.get('cache_version')!r}, "
                f"expected {CACHE_VERSION} (rebuild the cache)"
            )
        with np.load(self.path / TABLES_FILE, allow_pickle=False) as z:
            self.tables = {k: z[k] for k in z.files}
        self._images: np.memmap | None = None
        self._masks: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_images"] = d["_masks"] = None  # re-opened in each worker
        return d

    @property
    def n_samples(self) -> int:
        return len(self.tables["sample_view"])

    @property
    def n_views(self) -> int:
        return len(self.tables["view_seed"])

    def _maps(self) -> tuple[np.memmap, np.memmap]:
        if self._images is None or self._masks is None:
            self._images = np.memmap(
                self.path / IMAGES_FILE,
                dtype="<u2",
                mode="r",
                shape=(self.meta["images"]["elements"],),
            )
            self._masks = np.memmap(
                self.path / MASKS_FILE,
                dtype=np.uint8,
                mode="r",
                shape=(self.meta["masks"]["bytes"],),
            )
        return self._images, self._masks

    def view_stored(self, view: int) -> tuple[np.ndarray, int]:
        """(stored values (H, W) uint16, memory-mapped; bits stored) of a view."""
        images, _ = self._maps()
        h, w = (int(x) for x in self.tables["view_shape"][view])
        off = int(self.tables["view_offset"][view])
        return images[off : off + h * w].reshape(h, w), int(self.tables["view_bits"][view])

    def view_image(self, view: int) -> np.ndarray:
        """Full float32 image in [0, 1] of a view."""
        stored, bits = self.view_stored(view)
        return (stored.astype(np.float32) / np.float32((1 << bits) - 1)).astype(np.float32)

    def sample_mask(self, sample: int) -> np.ndarray:
        """Binary mask (H, W) uint8 of a sample, full image resolution."""
        _, masks = self._maps()
        view = int(self.tables["sample_view"][sample])
        h, w = (int(x) for x in self.tables["view_shape"][view])
        off = int(self.tables["sample_mask_offset"][sample])
        n = (h * w + 7) // 8
        return np.unpackbits(masks[off : off + n], count=h * w).reshape(h, w)

    def sample_points(self, sample: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.tables["sample_points"][sample].astype(np.float64)
        return p[0], p[1]
