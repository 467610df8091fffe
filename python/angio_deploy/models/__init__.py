"""The models shipped inside the package, listed in ``manifest.json``.

The manifest (format ``angio-models/1``) lists every shipped model file with its sha256,
size, role (``"segmenter"``; later ``"encoder"``, ``"gcn"``) and the input it expects::

    {
      "format": "angio-models/1",
      "models": [
        {
          "name": "segmenter",
          "role": "segmenter",
          "file": "segmenter.onnx",
          "sha256": "…64 hex…",
          "size": 25346127,
          "version": "2026-11-24",
          "input": {"name": "image", "dtype": "float32", "shape": [null, 1, 160, 256]},
          "output": {"name": "logits", "dtype": "float32", "shape": [null, 1, 160, 256]},
          "crop": {"width": 256, "height": 160, "margin_px": 24, "max_scale": 2.0},
          "weights_storage": "float16 (Cast to float32 in graph)",
          "source_sha256": "…sha256 of the training checkpoint's model.safetensors…"
        }
      ]
    }

:func:`model_path` returns a model's file after checking it exists (else
:class:`ModelFileError` naming the file and the manifest) and, on first use, that its
size and sha256 match the manifest (else :class:`ModelIntegrityError`); the check is
remembered per (file, size, mtime), so later calls cost a ``stat``. :func:`open_model`
adds the ONNX Runtime session (:func:`angio_deploy.backends.get_session`).

The environment variable ``ANGIO_DEPLOY_MODELS_DIR`` points the registry at another
folder with its own ``manifest.json`` (for example freshly exported models).
:func:`register_model` adds or replaces an entry (used by the export tools).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angio_deploy.errors import EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, AngioDeployError
from angio_deploy.hashing import file_key, sha256_file
from angio_deploy.io.atomic import atomic_write_text

MANIFEST_FORMAT = "angio-models/1"
MANIFEST_NAME = "manifest.json"
ENV_MODELS_DIR = "ANGIO_DEPLOY_MODELS_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent
ROLES = ("segmenter", "encoder", "gcn", "profile")


class ModelFileError(AngioDeployError, FileNotFoundError):
    """A model (or the manifest) is missing or unreadable.

    In the package's own folder that is a broken install (exit 70). In a folder the user
    chose (``models_dir=`` / ``--models-dir`` / $ANGIO_DEPLOY_MODELS_DIR) it is bad input:
    exit 66 when something is missing, 65 when something is wrong in it."""

    exit_code = EX_SOFTWARE

    def __init__(self, message: str, *, folder: Path | None = None, missing: bool = True):
        super().__init__(message)
        if folder is not None and Path(folder).resolve() != PACKAGE_DIR:
            self.exit_code = EX_NOINPUT if missing else EX_DATAERR


class ModelIntegrityError(ModelFileError):
    """A model file's size or sha256 differs from the manifest."""


@dataclass(frozen=True)
class ModelEntry:
    """One manifest entry; ``path`` is resolved against the manifest's folder."""

    name: str
    role: str
    file: str
    sha256: str
    size: int
    folder: Path
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def crop(self) -> dict[str, Any] | None:
        return self.extra.get("crop")

    @property
    def input(self) -> dict[str, Any] | None:
        return self.extra.get("input")

    def as_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "role": self.role, "file": self.file}
        d.update({"sha256": self.sha256, "size": self.size})
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: tuple[ModelEntry, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name_or_role: str) -> ModelEntry:
        """The entry named ``name_or_role``, else the only entry with that role."""
        for m in self.models:
            if m.name == name_or_role:
                return m
        by_role = [m for m in self.models if m.role == name_or_role]
        if len(by_role) == 1:
            return by_role[0]
        if len(by_role) > 1:
            raise KeyError(
                f"{self.path}: several models have role {name_or_role!r}: "
                + ", ".join(m.name for m in by_role)
            )
        raise ModelFileError(
            f"{self.path}: no shipped model named or with role {name_or_role!r} "
            f"(the manifest lists: {', '.join(self.names()) or 'nothing'})",
            folder=self.path.parent,
        )


def models_dir() -> Path:
    """The folder holding manifest.json: $ANGIO_DEPLOY_MODELS_DIR or this package."""
    env = os.environ.get(ENV_MODELS_DIR, "").strip()
    return Path(env) if env else PACKAGE_DIR


def _entry(raw: dict[str, Any], folder: Path, where: str) -> ModelEntry:
    for key in ("name", "role", "file", "sha256", "size"):
        if key not in raw:
            raise ModelFileError(
                f"{where}: a model entry lacks {key!r}", folder=folder, missing=False
            )
    file = str(raw["file"])
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise ModelFileError(
            f"{where}: model file {file!r} must be a plain relative path",
            folder=folder,
            missing=False,
        )
    extra = {k: v for k, v in raw.items() if k not in ("name", "role", "file", "sha256", "size")}
    return ModelEntry(
        name=str(raw["name"]),
        role=str(raw["role"]),
        file=file,
        sha256=str(raw["sha256"]).lower(),
        size=int(raw["size"]),
        folder=folder,
        extra=extra,
    )


def load_manifest(folder: str | Path | None = None) -> Manifest:
    """Read and check ``manifest.json`` of ``folder`` (default :func:`models_dir`)."""
    folder = Path(folder) if folder is not None else models_dir()
    path = folder / MANIFEST_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelFileError(f"{path}: model manifest not found", folder=folder) from exc
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: unreadable model manifest ({exc})", folder=folder, missing=False
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFileError(
            f"{path}: format is {fmt!r}, not {MANIFEST_FORMAT!r}", folder=folder, missing=False
        )
    entries = tuple(_entry(m, folder, str(path)) for m in doc.get("models", []))
    names = [m.name for m in entries]
    if len(set(names)) != len(names):
        raise ModelFileError(
            f"{path}: duplicate model names in {names}", folder=folder, missing=False
        )
    return Manifest(path=path, models=entries)


_VERIFIED_LOCK = threading.Lock()
_VERIFIED: set[tuple[tuple[str, int, int], str]] = set()


def verify(entry: ModelEntry) -> Path:
    """``entry.path`` after checking existence, size and sha256 (once per file version)."""
    path = entry.path
    if not path.is_file():
        raise ModelFileError(
            f"shipped model {entry.name!r} ({entry.role}) is missing: {path} — reinstall "
            f"angio-deploy, or set {ENV_MODELS_DIR} to a folder with the models",
            folder=entry.folder,
        )
    key = (file_key(path), entry.sha256)
    with _VERIFIED_LOCK:
        if key in _VERIFIED:
            return path
    size = key[0][1]
    if size != entry.size:
        raise ModelIntegrityError(
            f"shipped model {entry.name!r}: {path} has {size} bytes, the manifest says "
            f"{entry.size}; the file is damaged or was replaced",
            folder=entry.folder,
            missing=False,
        )
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ModelIntegrityError(
            f"shipped model {entry.name!r}: sha256 of {path} is {digest}, the manifest "
            f"says {entry.sha256}; the file is damaged or was replaced",
            folder=entry.folder,
            missing=False,
        )
    with _VERIFIED_LOCK:
        _VERIFIED.add(key)
    return path


def model_path(name_or_role: str, folder: str | Path | None = None) -> Path:
    """Verified path of a shipped model, by name or role."""
    return verify(load_manifest(folder).get(name_or_role))


def open_model(name_or_role: str, config=None, folder: str | Path | None = None, **overrides):
    """Verified, cached ONNX Runtime session of a shipped model (see ``get_session``)."""
    from angio_deploy.backends import get_session

    return get_session(model_path(name_or_role, folder), config, **overrides)


def register_model(
    file: str | Path,
    *,
    name: str,
    role: str,
    folder: str | Path | None = None,
    **extra: Any,
) -> ModelEntry:
    """Add (or replace) the entry of ``file`` in the manifest of its folder.

    ``folder`` (default: the file's folder) must be the folder holding ``file``. Computes
    sha256 and size; ``extra`` (input, output, crop, version, ...) is stored as given.
    Creates the manifest if there is none. Written atomically.
    """
    file = Path(file)
    folder = Path(folder) if folder is not None else file.parent
    if file.parent.resolve() != folder.resolve():
        raise ValueError(f"{file} must be inside {folder}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    path = folder / MANIFEST_NAME
    doc = (
        json.loads(path.read_text(encoding="utf-8"))
        if path.is_file()
        else {"format": MANIFEST_FORMAT, "models": []}
    )
    raw = {
        "name": name,
        "role": role,
        "file": file.name,
        "sha256": sha256_file(file),
        "size": file.stat().st_size,
        **extra,
    }
    doc["models"] = [m for m in doc.get("models", []) if m.get("name") != name] + [raw]
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return _entry(raw, folder, str(path))


__all__ = [
    "ENV_MODELS_DIR",
    "MANIFEST_FORMAT",
    "Manifest",
    "ModelEntry",
    "ModelFileError",
    "ModelIntegrityError",
    "load_manifest",
    "model_path",
    "models_dir",
    "open_model",
    "register_model",
    "verify",
]
