"""Shipped-model manifest: hashes verified on first use, clear errors for missing files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from angio_deploy import models as M
from angio_deploy.errors import EX_DATAERR, EX_NOINPUT, EX_SOFTWARE


@pytest.fixture
def model_dir(tmp_path: Path, affine_model) -> Path:
    folder = tmp_path / "models"
    path = affine_model("models/segmenter.onnx")
    M.register_model(
        path,
        name="segmenter",
        role="segmenter",
        folder=folder,
        input={"name": "image", "dtype": "float32", "shape": [None, 1, 160, 256]},
        crop={"width": 256, "height": 160},
        version="test",
    )
    return folder


def test_shipped_manifest_is_valid_and_every_listed_model_verifies() -> None:
    manifest = M.load_manifest(M.PACKAGE_DIR)
    assert manifest.path.name == "manifest.json"
    for entry in manifest.models:
        assert entry.role in M.ROLES
        assert M.verify(entry) == entry.path


def test_shipped_models_fit_the_size_budget() -> None:
    # Issue 4: every shipped model file together under 60 MB (weights stored compactly).
    manifest = M.load_manifest(M.PACKAGE_DIR)
    total = sum(e.path.stat().st_size for e in manifest.models)
    assert total < 60 * 2**20, f"shipped models take {total / 2**20:.1f} MiB"
    onnx_files = {p.name for p in M.PACKAGE_DIR.glob("*.onnx")}
    assert onnx_files == {e.file for e in manifest.models}, "unlisted or missing model files"


def test_register_and_load(model_dir: Path) -> None:
    doc = json.loads((model_dir / "manifest.json").read_text())
    assert doc["format"] == M.MANIFEST_FORMAT
    (raw,) = doc["models"]
    assert raw["file"] == "segmenter.onnx"
    assert len(raw["sha256"]) == 64
    assert raw["size"] == (model_dir / "segmenter.onnx").stat().st_size
    entry = M.load_manifest(model_dir).get("segmenter")
    assert entry.crop == {"width": 256, "height": 160}
    assert entry.input["shape"] == [None, 1, 160, 256]
    assert M.model_path("segmenter", model_dir) == model_dir / "segmenter.onnx"


def test_lookup_by_role_and_env_folder(model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(M.ENV_MODELS_DIR, str(model_dir))
    assert M.models_dir() == model_dir
    sess = M.open_model("segmenter")
    x = np.ones((1, 1, 160, 256), np.float32)
    np.testing.assert_allclose(sess(x), 3.0)
    assert sess.report()["sha256"] == M.load_manifest().get("segmenter").sha256


def test_modified_model_file_is_caught(model_dir: Path) -> None:
    path = M.model_path("segmenter", model_dir)  # verified once
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    time.sleep(0.01)
    path.write_bytes(bytes(data))
    with pytest.raises(M.ModelIntegrityError, match="sha256") as info:
        M.model_path("segmenter", model_dir)
    # A folder the user chose: bad input (65), not a bug.
    assert info.value.exit_code == EX_DATAERR
    assert "segmenter" in str(info.value)


def test_model_errors_in_the_package_folder_are_a_broken_install(tmp_path: Path) -> None:
    assert M.ModelFileError("x", folder=M.PACKAGE_DIR).exit_code == EX_SOFTWARE
    assert M.ModelFileError("x").exit_code == EX_SOFTWARE
    assert M.ModelFileError("x", folder=tmp_path).exit_code == EX_NOINPUT
    assert M.ModelFileError("x", folder=tmp_path, missing=False).exit_code == EX_DATAERR


def test_truncated_model_file_is_caught_by_size(model_dir: Path) -> None:
    path = model_dir / "segmenter.onnx"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(M.ModelIntegrityError, match="bytes"):
        M.model_path("segmenter", model_dir)


def test_missing_model_file_names_it(model_dir: Path) -> None:
    (model_dir / "segmenter.onnx").unlink()
    with pytest.raises(M.ModelFileError, match=r"'segmenter' \(segmenter\) is missing") as info:
        M.model_path("segmenter", model_dir)
    assert "segmenter.onnx" in str(info.value)
    assert M.ENV_MODELS_DIR in str(info.value)


def test_unknown_model_and_missing_manifest(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(M.ModelFileError, match="no shipped model named or with role 'gcn'"):
        M.model_path("gcn", model_dir)
    with pytest.raises(M.ModelFileError, match="manifest not found"):
        M.load_manifest(tmp_path / "empty")


@pytest.mark.parametrize("bad_file", ["../evil.onnx", "/etc/passwd"])
def test_manifest_paths_stay_inside_the_folder(tmp_path: Path, bad_file: str) -> None:
    doc = {
        "format": M.MANIFEST_FORMAT,
        "models": [{"name": "x", "role": "segmenter", "file": bad_file, "sha256": "0", "size": 1}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(M.ModelFileError, match="plain relative path"):
        M.load_manifest(tmp_path)


def test_wrong_format_and_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other", "models": []}))
    with pytest.raises(M.ModelFileError, match="format"):
        M.load_manifest(tmp_path)
    doc = {"format": M.MANIFEST_FORMAT, "models": [{"name": "x", "role": "segmenter"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(M.ModelFileError, match="lacks 'file'"):
        M.load_manifest(tmp_path)


def test_register_replaces_an_entry(model_dir: Path, affine_model) -> None:
    affine_model("models/segmenter.onnx", scale=5.0)
    M.register_model(model_dir / "segmenter.onnx", name="segmenter", role="segmenter")
    assert len(M.load_manifest(model_dir).models) == 1
    with pytest.raises(ValueError, match="role"):
        M.register_model(model_dir / "segmenter.onnx", name="y", role="other")
