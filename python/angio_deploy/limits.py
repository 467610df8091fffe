"""Input limits: the one place that says what a case may contain (issue 11).

Everything a user hands the loader is checked against these before it is used, so a
hostile or broken file ends in one clear :class:`~angio_deploy.errors.InputError` naming
the file and field, never in a crash, a hang or gigabytes of memory. The values are wide
enough for every real C-arm and research phantom we know of; outside them the data are
wrong, not unusual.
"""

from __future__ import annotations

from angio_deploy.errors import InputError

#: Positioner angles (primary LAO/RAO, secondary CRA/CAU), degrees: |angle| <= this.
MAX_ANGLE_DEG = 180.0
#: Source-to-detector distance, mm (C-arms use about 900-1300 mm).
SID_RANGE_MM = (200.0, 3000.0)
#: Source-to-isocenter distance, mm (and always less than the SID).
SOD_RANGE_MM = (100.0, 2900.0)
#: Detector pixel spacing, mm per pixel (detectors: 0.1-0.4 mm; magnified or binned more).
PIXEL_SPACING_RANGE_MM = (0.01, 5.0)
#: Image sides, pixels. Below the minimum no vessel segment can be traced; above the
#: maximum the decoded frame alone would take gigabytes. Checked from the file's header
#: before any pixel is decoded, for every image kind (DICOM, PNG, TIFF, JPEG).
MIN_IMAGE_SIDE_PX = 64
MAX_IMAGE_SIDE_PX = 8192
#: Frames of a multi-frame DICOM, times the frame size, may not exceed this many pixels.
MAX_TOTAL_PIXELS = 1024 * 1024 * 1024
#: case.json: size in bytes, nesting depth, characters of any string, digits of a number.
MAX_CASE_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_STRING_CHARS = 1024
MAX_NUMBER_CHARS = 64


def check_image_size(
    width: int,
    height: int,
    *,
    source: str,
    field: str | None = None,
    min_side: int = MIN_IMAGE_SIDE_PX,
) -> None:
    """Refuse an image whose sides (pixels) are outside the limits; call before decoding.

    The readers check the maximum only (``min_side=1``: they also read small test and
    calibration frames); the case loader checks both."""
    lo, hi = min_side, MAX_IMAGE_SIDE_PX
    if not (lo <= width <= hi and lo <= height <= hi):
        raise InputError(
            f"image size {width} x {height} px is outside the supported {lo} to {hi} px per side",
            source=source,
            field=field,
        )
