"""Compatibility facade: the XA DICOM reader and writer now live in :mod:`angio_deploy.io.dicom`.

This module re-exports the public names it has always had, so code written against it
(vendors' integrations included) keeps working unchanged; new code imports from the
module that does the job:

=============================== ===============================================
name                            home
=============================== ===============================================
read_xa, read_xa_frames,        :mod:`angio_deploy.io.dicom.reader`
XAImage
write_xa, XA_SOP_CLASS_UID,     :mod:`angio_deploy.io.dicom.writer`
WRITABLE_TRANSFER_SYNTAXES
vessel_contrast_score(s),       :mod:`angio_deploy.io.dicom.frame_selection`
SELECTION_*
stored_to_image                 :mod:`angio_deploy.io.dicom.pixels`
tag_label,                      :mod:`angio_deploy.io.dicom.elements`
READABLE_TRANSFER_SYNTAXES
OVERRIDE_SOURCE                 :mod:`angio_deploy.io.dicom.geometry_tags`
=============================== ===============================================

The conventions (pixel values, pixel-spacing fallback, frame selection, rotational runs,
transfer syntaxes, what the writer writes) are documented in those modules. Log records
come from the ``angio_deploy.io.dicom.*`` loggers (the messages are unchanged).
"""

from __future__ import annotations

from angio_deploy.io.dicom.elements import READABLE_TRANSFER_SYNTAXES, tag_label
from angio_deploy.io.dicom.frame_selection import (
    SELECTION_CONTRAST,
    SELECTION_GIVEN,
    SELECTION_SINGLE,
    vessel_contrast_score,
    vessel_contrast_scores,
)
from angio_deploy.io.dicom.geometry_tags import OVERRIDE_SOURCE as OVERRIDE_SOURCE
from angio_deploy.io.dicom.pixels import stored_to_image
from angio_deploy.io.dicom.reader import XAImage, read_xa, read_xa_frames
from angio_deploy.io.dicom.writer import WRITABLE_TRANSFER_SYNTAXES, XA_SOP_CLASS_UID, write_xa

# OVERRIDE_SOURCE was public here but never in __all__; it stays that way.
__all__ = [
    "READABLE_TRANSFER_SYNTAXES",
    "SELECTION_CONTRAST",
    "SELECTION_GIVEN",
    "SELECTION_SINGLE",
    "WRITABLE_TRANSFER_SYNTAXES",
    "XA_SOP_CLASS_UID",
    "XAImage",
    "read_xa",
    "read_xa_frames",
    "stored_to_image",
    "tag_label",
    "vessel_contrast_score",
    "vessel_contrast_scores",
    "write_xa",
]
