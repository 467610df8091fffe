"""The old single module angio_deploy.io.dicom_xa still offers every public name, as the
very objects of the io.dicom modules that now do the work (vendors may import it)."""

from __future__ import annotations

import importlib

import pytest

from angio_deploy.io import dicom_xa

HOMES = {
    "read_xa": "reader",
    "read_xa_frames": "reader",
    "XAImage": "reader",
    "write_xa": "writer",
    "XA_SOP_CLASS_UID": "writer",
    "WRITABLE_TRANSFER_SYNTAXES": "writer",
    "vessel_contrast_score": "frame_selection",
    "vessel_contrast_scores": "frame_selection",
    "SELECTION_CONTRAST": "frame_selection",
    "SELECTION_GIVEN": "frame_selection",
    "SELECTION_SINGLE": "frame_selection",
    "stored_to_image": "pixels",
    "tag_label": "elements",
    "READABLE_TRANSFER_SYNTAXES": "elements",
    "OVERRIDE_SOURCE": "geometry_tags",
}


def test_the_facade_lists_the_names_it_always_had() -> None:
    assert set(dicom_xa.__all__) == set(HOMES) - {"OVERRIDE_SOURCE"}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_name_is_its_home_modules_object(name: str) -> None:
    home = importlib.import_module(f"angio_deploy.io.dicom.{HOMES[name]}")
    assert getattr(dicom_xa, name) is getattr(home, name)


def test_each_function_is_documented_where_it_lives() -> None:
    for name, mod in HOMES.items():
        obj = getattr(importlib.import_module(f"angio_deploy.io.dicom.{mod}"), name)
        if callable(obj):
            assert obj.__module__ == f"angio_deploy.io.dicom.{mod}" and obj.__doc__
