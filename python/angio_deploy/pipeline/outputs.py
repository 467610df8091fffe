"""The result folder of a run (CASE_FORMAT.md, "Output"), written atomically.

mesh.ply / mesh.stl (100 x 60 rings, world mm, LPS; PLY keeps the vertex order),
centreline.csv and centreline.vtp (with each ring's 95 % position bound), qca.csv and a
diameter plot per branch (diameter_main.png), report.json,
overlay_a.png / overlay_b.png (each view with the reprojected mesh outline in red and the
3D centreline in yellow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from angio_deploy import kernels
from angio_deploy.errors import OutputError
from angio_deploy.io.atomic import atomic_output_dir, atomic_write_text
from angio_deploy.io.centreline_csv import write_centreline_csv
from angio_deploy.io.jsonio import dumps
from angio_deploy.io.mesh_io import write_centreline_vtp, write_ply, write_stl
from angio_deploy.io.output_dir import check_output_dir

from .mi import N_AROUND, MIResult, ring_faces
from .qca import branch_qca, diameter_plot, qca_csv

#: centreline.csv / .vtp column: the ring's 3D position uncertainty, 95 % bound (mm).
UNCERTAINTY_COLUMN = "uncertainty95_mm"


def overlay(image01: np.ndarray, silhouette: np.ndarray, centreline_uv: np.ndarray) -> Image.Image:
    """RGB overlay: the view (grayscale), the mesh outline (red), the centreline (yellow)."""
    g = np.clip(np.asarray(image01) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.stack([g, g, g], axis=-1)
    sil = silhouette > 0
    edge = sil & ~(
        np.roll(sil, 1, 0) & np.roll(sil, -1, 0) & np.roll(sil, 1, 1) & np.roll(sil, -1, 1)
    )
    rgb[edge] = (255, 40, 40)
    im = Image.fromarray(rgb)
    pts = [
        tuple(p) for p in np.asarray(centreline_uv, dtype=float).tolist() if np.isfinite(p).all()
    ]
    if len(pts) >= 2:
        ImageDraw.Draw(im).line(pts, fill=(255, 220, 0), width=1)
    return im


def write_outputs(
    out_dir: str | Path,
    result: MIResult,
    report: dict[str, Any],
    *,
    case_dir: str | Path | None = None,
) -> Path:
    """Write every output of a run into ``out_dir`` atomically; returns the folder.

    ``out_dir`` must be new, empty or an earlier result, and may not be or contain
    ``case_dir`` (:func:`~angio_deploy.io.output_dir.check_output_dir`); otherwise, or
    if the folder cannot be written, :class:`~angio_deploy.errors.OutputError` (exit 73)
    is raised and nothing on disk changes.
    """
    out_dir = check_output_dir(out_dir, case_dir=case_dir)
    try:
        _write(out_dir, result, report, case_dir)
    except OutputError:
        raise
    except OSError as exc:  # disk full, permissions changed mid-run, a file in the way
        where = exc.filename or out_dir
        raise OutputError(
            f"could not write the result: {exc.strerror or exc} ({where})", source=out_dir
        ) from exc
    return out_dir


def _write(out_dir: Path, result: MIResult, report: dict[str, Any], case_dir) -> None:
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
        if result.low_confidence is not None:
            extra["low_confidence"] = result.low_confidence.astype(np.int32)
        write_centreline_vtp(
            tmp / "centreline.vtp", result.centreline_mm, result.radius_mm, extra=extra
        )
        branches = [branch_qca(result.centreline_mm, result.radius_mm, result.geometries)]
        atomic_write_text(tmp / "qca.csv", qca_csv(branches))
        for b in branches:
            diameter_plot(b).save(tmp / f"diameter_{b.branch}.png", compress_level=1)
        for vr, g in zip(result.views, result.geometries, strict=True):
            sil = kernels.rasterize_silhouette(g.P, result.vertices, capped, g.width, g.height)
            ov = overlay(vr.view.image, sil, g.project(result.centreline_mm))
            # Fast zlib level: the overlays are for eyes, and level 6 cost ~0.1 s each.
            ov.save(tmp / f"overlay_{vr.view.name}.png", compress_level=1)
        atomic_write_text(tmp / "report.json", dumps(report))
        from angio_deploy.report_html import MeshLayer, write_report_html

        # Last: report.html embeds the figures written above (overlay_*, diameter_*).
        d_mm = np.repeat(2.0 * np.asarray(result.radius_mm), N_AROUND)  # ring-major vertices
        write_report_html(tmp, report, [MeshLayer("main", result.vertices, result.faces, d_mm)])
