"""Read one frame of a single- or multi-frame XA file, its projection geometry and provenance.

:func:`read_xa` returns an :class:`XAImage`: the selected frame's stored values and its
[0, 1] image (:mod:`.pixels`), the frame chosen as :mod:`.frame_selection` says, the
:class:`~angio_deploy.geometry.view.ViewGeometry` from the tags (:mod:`.geometry_tags`)
and where every value came from. :func:`read_xa_frames` returns every frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import uid as dcm_uid

from angio_deploy.errors import InputError
from angio_deploy.geometry.view import ViewGeometry

from .elements import (
    DicomSource,
    open_dataset,
    open_source,
    pixel_format,
    read_transfer_syntax,
    tag_label,
)
from .frame_selection import select_frame
from .geometry_tags import view_geometry
from .pixels import decode, stored_to_image, to_stored


@dataclass(frozen=True, eq=False)
class XAImage:
    """One frame of an XA file, its geometry and where the values came from.

    ``stored`` is the raw stored frame (H, W); ``image`` is float32 (H, W) in [0, 1],
    MONOCHROME2 sense. ``geometry`` is None when the caller asked for none.
    ``frame_scores`` holds the per-frame vessel-contrast scores when the frame was chosen
    automatically. ``provenance`` maps each value (frame, angles, distances, pixel
    spacing) to the tag or rule it came from.
    """

    path: Path
    frames_count: int
    frame_index: int
    frame_selection: str
    stored: np.ndarray
    image: np.ndarray
    geometry: ViewGeometry | None
    provenance: dict[str, str]
    manufacturer: str
    transfer_syntax_uid: str
    transfer_syntax: str
    bits_stored: int
    pixel_representation: int
    photometric: str
    frame_scores: tuple[float, ...] | None = field(default=None)

    @property
    def height(self) -> int:
        """Rows (pixels)."""
        return int(self.stored.shape[0])

    @property
    def width(self) -> int:
        """Columns (pixels)."""
        return int(self.stored.shape[1])


def read_xa(
    path: DicomSource,
    frame: int | None = None,
    *,
    pixel_spacing_mm: tuple[float, float] | None = None,
    geometry: bool = True,
    geometry_overrides: dict[str, Any] | None = None,
    label: str | None = None,
) -> XAImage:
    """Read one frame of an XA DICOM file and its projection geometry.

    ``frame`` is zero-based; None picks the only frame, or for multi-frame files the frame
    with the strongest vessel contrast. ``pixel_spacing_mm`` (row, column; mm at the
    detector) is used only when no spacing tag is present. ``geometry=False`` skips the
    geometry tags (``XAImage.geometry`` is then None). ``geometry_overrides`` gives values
    (keys primary_angle_deg, secondary_angle_deg, sid_mm, sod_mm, pixel_spacing_mm) that
    replace the tags, as a case.json ``geometry`` object does. Raises InputNotFoundError for a
    missing file and InputError for anything unreadable, naming the file and tag.

    ``path`` may also be a pydicom ``Dataset`` or the bytes of a DICOM file (same checks,
    same errors); messages then name it ``label`` (default ``<memory:dataset>`` or
    ``<memory:bytes>``), and so does ``XAImage.path``.
    """
    ds, p = open_source(path, label)
    ts = read_transfer_syntax(ds, p)
    fmt = pixel_format(ds, p)
    idx, selection, stored, scores, why = select_frame(ds, p, ts, fmt, frame)
    geom = None
    if geometry:
        geom = view_geometry(ds, p, fmt, idx, pixel_spacing_mm, geometry_overrides)
    prov = {"frame": why, **({} if geom is None else geom.provenance)}
    return XAImage(
        path=p,
        frames_count=fmt.frames,
        frame_index=idx,
        frame_selection=selection,
        stored=stored,
        image=stored_to_image(stored, fmt.bits_stored, fmt.photometric),
        geometry=geom,
        provenance=prov,
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        transfer_syntax_uid=ts,
        transfer_syntax=dcm_uid.UID(ts).name,
        bits_stored=fmt.bits_stored,
        pixel_representation=fmt.pixel_representation,
        photometric=fmt.photometric,
        frame_scores=scores,
    )


def read_xa_frames(path: str | os.PathLike[str], *, stored: bool = False) -> np.ndarray:
    """All frames (F, H, W): float32 images in [0, 1] (MONOCHROME2 sense), or stored values."""
    p = Path(path)
    ds = open_dataset(p)
    ts = read_transfer_syntax(ds, p)
    fmt = pixel_format(ds, p)
    arr = to_stored(decode(ds, p, ts, None), fmt)
    if arr.size != fmt.frames * fmt.rows * fmt.columns:
        raise InputError(
            f"decoded {arr.size} pixels, but the header says {fmt.frames} frames of "
            f"{fmt.columns} x {fmt.rows}",
            source=str(p),
            field=tag_label("PixelData"),
        )
    arr = arr.reshape(fmt.frames, fmt.rows, fmt.columns)
    return arr if stored else stored_to_image(arr, fmt.bits_stored, fmt.photometric)
