"""The result folder of a run (CASE_FORMAT.md, "Output"), written atomically.

mesh.ply / mesh.stl (100 x 60 rings, world mm, LPS; PLY keeps the vertex order); with side
branches mesh_joined.ply / .stl (the watertight union) and branch_K.ply (each branch's
own tube); centreline.csv (main segment, with each ring's 95 % position bound) and
centreline.vtp (every segment, with radius, reference radius and QCA arrays); qca.csv
and a diameter plot per branch (diameter_main.png, diameter_branch_K.png); report.json;
overlay_a.png / overlay_b.png (each view with the reprojected outline of every segment in
red and their 3D centrelines in yellow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from angio_deploy import kernels
from angio_deploy.errors import OutputError
from angio_deploy.io.atomic import atomic_output_dir, atomic_write_text
from angio_deploy.io.centreline_csv import UNCERTAINTY_COLUMN, write_centreline_csv
from angio_deploy.io.jsonio import dumps
from angio_deploy.io.mesh_io import write_ply, write_stl, write_vtp
from angio_deploy.io.output_dir import check_output_dir
from angio_deploy.stitching import JoinedMesh
from angio_deploy.topology import N_AROUND, ring_faces

from .qca import BranchQCA, branch_qca, diameter_plot, qca_csv
from .result import MIResult


def overlay(
    image01: np.ndarray,
    silhouette: np.ndarray,
    centreline_uv: np.ndarray | Sequence[np.ndarray],
) -> Image.Image:
    """RGB overlay: the view (grayscale), the mesh outline (red), the centreline of each
    segment (yellow; an (N, 2) array or a list of them, image px)."""
    g = np.clip(np.asarray(image01) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.stack([g, g, g], axis=-1)
    sil = silhouette > 0
    edge = sil & ~(
        np.roll(sil, 1, 0) & np.roll(sil, -1, 0) & np.roll(sil, 1, 1) & np.roll(sil, -1, 1)
    )
    rgb[edge] = (255, 40, 40)
    im = Image.fromarray(rgb)
    lines = [centreline_uv] if isinstance(centreline_uv, np.ndarray) else list(centreline_uv)
    draw = ImageDraw.Draw(im)
    for line in lines:
        pts = [tuple(p) for p in np.asarray(line, dtype=float).tolist() if np.isfinite(p).all()]
        if len(pts) >= 2:
            draw.line(pts, fill=(255, 220, 0), width=1)
    return im


def write_centrelines_vtp(
    path: Path, segments: Sequence[MIResult], qca: Sequence[BranchQCA]
) -> Path:
    """centreline.vtp: one polyline per segment (main first), world mm (LPS), with point
    arrays as VMTK / 3D Slicer users expect: ``radius_mm`` (the lumen radius, for a Tube
    filter), ``reference_radius_mm``, ``ring``, ``branch`` (0 = main, K = branch_K),
    ``arc_mm``, ``diameter_mm``, ``reference_diameter_mm``, ``percent_ds``, ``in_lesion``
    (QCA), ``uncertainty95_mm`` and ``low_confidence``."""
    by_name = {q.branch: q for q in qca}
    pts, lines, data = [], [], {}
    start = 0
    for k, seg in enumerate(segments):
        q = by_name.get(seg.branch) or branch_qca(seg.centreline_mm, seg.radius_mm)
        n = len(seg.centreline_mm)
        in_lesion = np.zeros(n, dtype=np.int32)
        for les in q.lesions:
            in_lesion[(q.arc_mm >= les.start_mm) & (q.arc_mm <= les.end_mm)] = 1
        unc = seg.uncertainty_mm if seg.uncertainty_mm is not None else np.full(n, np.nan)
        low = seg.low_confidence if seg.low_confidence is not None else np.zeros(n, bool)
        cols = {
            "radius_mm": seg.radius_mm,
            "reference_radius_mm": 0.5 * q.reference_mm,
            "ring": np.arange(n, dtype=np.int32),
            "branch": np.full(n, k, dtype=np.int32),
            "arc_mm": q.arc_mm,
            "diameter_mm": q.diameter_mm,
            "reference_diameter_mm": q.reference_mm,
            "percent_ds": 100.0 * (1.0 - q.diameter_mm / q.reference_mm),
            "in_lesion": in_lesion,
            UNCERTAINTY_COLUMN: unc,
            "low_confidence": low.astype(np.int32),
        }
        for name, col in cols.items():
            data.setdefault(name, []).append(np.asarray(col))
        pts.append(seg.centreline_mm)
        lines.append(np.arange(start, start + n))
        start += n
    return write_vtp(
        path,
        np.concatenate(pts),
        None,
        point_data={k: np.concatenate(v) for k, v in data.items()},
        lines=lines,
    )


def write_outputs(
    out_dir: str | Path,
    result: MIResult,
    report: dict[str, Any],
    *,
    case_dir: str | Path | None = None,
    branches: Sequence[MIResult] = (),
    joined: JoinedMesh | None = None,
    qca: Sequence[BranchQCA] = (),
) -> Path:
    """Write every output of a run into ``out_dir`` atomically; returns the folder.

    ``out_dir`` must be new, empty or an earlier result, and may not be or contain
    ``case_dir`` (:func:`~angio_deploy.io.output_dir.check_output_dir`); otherwise, or
    if the folder cannot be written, :class:`~angio_deploy.errors.OutputError` (exit 73)
    is raised and nothing on disk changes. ``branches`` (side branches, attached),
    ``joined`` (their union with the main segment) and ``qca`` (per branch, main first;
    computed here when empty) add their files.
    """
    out_dir = check_output_dir(out_dir, case_dir=case_dir)
    try:
        if not qca:
            qca = [branch_qca(result.centreline_mm, result.radius_mm, result.geometries)]
        _write(out_dir, result, report, case_dir, list(branches), joined, list(qca))
    except OutputError:
        raise
    except OSError as exc:  # disk full, permissions changed mid-run, a file in the way
        where = exc.filename or out_dir
        raise OutputError(
            f"could not write the result: {exc.strerror or exc} ({where})", source=out_dir
        ) from exc
    return out_dir


def _write(
    out_dir: Path,
    result: MIResult,
    report: dict[str, Any],
    case_dir,
    branches: list[MIResult],
    joined: JoinedMesh | None,
    qca: list[BranchQCA],
) -> None:
    capped = ring_faces(len(result.vertices) // N_AROUND, N_AROUND, caps=True)

    def still_ours(final: Path) -> None:
        check_output_dir(final, case_dir=case_dir)

    with atomic_output_dir(out_dir, check=still_ours) as tmp:
        write_ply(
            tmp / "mesh.ply",
            result.vertices,
            result.faces,
            vertex_data={"ring": np.repeat(np.arange(len(result.radius_mm)), N_AROUND)},
        )
        write_stl(tmp / "mesh.stl", result.vertices, capped)
        extra = {}
        if result.uncertainty_mm is not None:
            extra[UNCERTAINTY_COLUMN] = result.uncertainty_mm
        write_centreline_csv(
            tmp / "centreline.csv", result.centreline_mm, result.radius_mm, extra=extra
        )
        write_centrelines_vtp(tmp / "centreline.vtp", [result, *branches], qca)
        atomic_write_text(tmp / "qca.csv", qca_csv(qca))
        for b in qca:
            diameter_plot(b).save(tmp / f"diameter_{b.branch}.png", compress_level=1)
        for b in branches:
            write_ply(
                tmp / f"{b.branch}.ply",
                b.vertices,
                b.faces,
                vertex_data={"ring": np.repeat(np.arange(len(b.radius_mm)), N_AROUND)},
            )
        if joined is not None:
            write_ply(tmp / "mesh_joined.ply", joined.vertices, joined.faces)
            write_stl(tmp / "mesh_joined.stl", joined.vertices, joined.faces)
        segments = [result, *branches]
        for vr, g in zip(result.views, result.geometries, strict=True):
            sil = np.zeros((g.height, g.width), dtype=np.uint8)
            for seg in segments:
                sil |= (
                    kernels.rasterise_silhouette(g.P, seg.vertices, capped, g.width, g.height) > 0
                )
            lines = [g.project(seg.centreline_mm) for seg in segments]
            ov = overlay(vr.view.image, sil, lines)
            # Fast zlib level: the overlays are for eyes, and level 6 cost ~0.1 s each.
            ov.save(tmp / f"overlay_{vr.view.name}.png", compress_level=1)
        atomic_write_text(tmp / "report.json", dumps(report))
        from angio_deploy.report_html import MeshLayer, write_report_html

        # Last: report.html embeds the figures written above (overlay_*, diameter_*).
        layers = [
            # Ring-major vertices: each ring's diameter for its N_AROUND vertices.
            MeshLayer(seg.branch, seg.vertices, seg.faces, np.repeat(2.0 * seg.radius_mm, N_AROUND))
            for seg in segments
        ]
        write_report_html(tmp, report, layers)
