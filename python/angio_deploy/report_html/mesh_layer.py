"""The meshes a report page shows, and their compact encoding for the page.

A :class:`MeshLayer` is one surface (the main segment, a side branch, the joined mesh):
vertices in world mm (LPS), triangle indices, and optionally the lumen diameter (mm) at
each vertex, which the viewer maps to colour. On the page each array travels as base64 of
its little-endian bytes (float32 vertices and diameters; uint16 indices when the layer has
at most 65536 vertices, uint32 otherwise): about 4/3 of the binary size, decoded by the
browser into typed arrays without parsing numbers.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Colour ramp for the diameter, narrow to wide, as (position 0..1, "#rrggbb"): red where
#: the lumen is narrowest (the stenosis stands out), through pale yellow, to blue (a
#: diverging ColorBrewer-style scheme that stays readable with red-green colour blindness).
DIAMETER_RAMP: tuple[tuple[float, str], ...] = (
    (0.0, "#d7191c"),
    (0.25, "#fdae61"),
    (0.5, "#ffffbf"),
    (0.75, "#abd9e9"),
    (1.0, "#2c7bb6"),
)
#: Surface colour of a layer that has no diameters.
PLAIN_COLOUR = "#c8ccd2"


@dataclass(frozen=True)
class MeshLayer:
    """One surface for the 3D view.

    ``vertices`` (N, 3) world mm (LPS); ``faces`` (M, 3) vertex indices (counter-clockwise
    seen from outside, as the PLY/STL outputs); ``diameter_mm`` (N,) lumen diameter at each
    vertex in mm, or None for a layer drawn in one colour; ``visible``: shown when the page
    opens (the reader can toggle every layer; e.g. the joined mesh starts hidden where it
    would cover the branches it is made of). Shapes and indices are checked
    (ValueError); values are not: a page never fails a run, so a layer with non-finite
    vertices is left out of the view with a note, a vertex without a finite diameter is
    drawn in :data:`PLAIN_COLOUR`.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    diameter_mm: np.ndarray | None = None
    visible: bool = True

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices)
        f = np.asarray(self.faces)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise ValueError(f"mesh layer {self.name!r}: vertices must be (N, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(
                f"mesh layer {self.name!r}: faces must be (M, 3) integers, got {f.shape} {f.dtype}"
            )
        if f.size and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"mesh layer {self.name!r}: a face index is outside the vertices")
        if self.diameter_mm is not None:
            d = np.asarray(self.diameter_mm)
            if d.shape != (len(v),):
                raise ValueError(
                    f"mesh layer {self.name!r}: diameter_mm must be ({len(v)},), got {d.shape}"
                )


def b64(array: np.ndarray, dtype: str) -> str:
    """Base64 of ``array`` as little-endian ``dtype`` ("<f4", "<u2", "<u4"), C order."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def index_dtype(n_vertices: int) -> str:
    """The smallest little-endian index type for a layer of ``n_vertices``."""
    return "<u2" if n_vertices <= 1 << 16 else "<u4"


def encode_layers(layers: Sequence[MeshLayer]) -> dict[str, Any]:
    """The viewer's data: every layer's arrays as base64, and the shared diameter range.

    The colour scale spans the diameters of all layers together (mm), so one colour means
    one diameter on every branch.
    """
    out = []
    diam = [
        np.asarray(m.diameter_mm, dtype=np.float64) for m in layers if m.diameter_mm is not None
    ]
    diam = [d[np.isfinite(d)] for d in diam]
    diam = [d for d in diam if d.size]
    for m in layers:
        n = len(m.vertices)
        idt = index_dtype(n)
        out.append(
            {
                "name": m.name,
                "n_vertices": n,
                "n_faces": len(m.faces),
                "vertices": b64(m.vertices, "<f4"),
                "faces": b64(m.faces, idt),
                "index_type": "uint16" if idt == "<u2" else "uint32",
                "diameter_mm": None if m.diameter_mm is None else b64(m.diameter_mm, "<f4"),
                "visible": bool(m.visible),
            }
        )
    rng = [float(min(d.min() for d in diam)), float(max(d.max() for d in diam))] if diam else None
    return {
        "layers": out,
        "diameter_range_mm": rng,
        "ramp": [[p, c] for p, c in DIAMETER_RAMP],
        "plain_colour": PLAIN_COLOUR,
    }
