"""Fuzz the case loader: mutated DICOM files and case.json documents (issue 11).

    python tools/fuzz_inputs.py [--count 4000] [--seed 0] [--json OUT.json] [--keep DIR]

Starts from a valid two-view XA DICOM case and a valid PNG case (built here), applies
``count`` random mutations -- bytes of the DICOM header flipped, inserted, deleted or
truncated, a value representation or a length field replaced, a case.json value replaced
by another type, an extreme number, a long string, deep nesting or broken text -- and
loads each result with :func:`angio_deploy.io.case.load_case`. The only outcomes allowed
are success and the documented :class:`~angio_deploy.errors.InputError` family; any other
exception is a bug and is reported with the mutation that caused it (``--keep`` saves
the offending case folders). Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.errors import InputError
from angio_deploy.io.case import load_case

SIZE = 128
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_VRS = [b"AE", b"CS", b"DS", b"IS", b"LO", b"SQ", b"UI", b"US", b"OB", b"UN", b"ZZ", b"\0\0"]
_NASTY: list[Any] = [
    None,
    True,
    "",
    "x",
    "x" * 5000,
    -1,
    0,
    1e308,
    -1e308,
    10**30,
    [],
    {},
    [1],
    [1, 2, 3],
    {"a": 1},
    "../../etc/passwd",
    "/abs/path.dcm",
    "view_a.dcm\0",
    [[1, 2], [3, 4]],
]


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((SIZE, SIZE), 180, dtype=np.uint8)
    img[SIZE // 2 - 2 : SIZE // 2 + 2, 10 : SIZE - 10] = 60
    return np.clip(img + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)


def base_cases(root: Path) -> tuple[Path, Path]:
    """A valid DICOM case and a valid PNG case under ``root`` -> (dicom, png)."""
    from PIL import Image

    from angio_deploy.geometry import ViewGeometry
    from angio_deploy.io.dicom.writer import write_xa

    soi = {"start": [20.0, 64.0], "end": [108.0, 63.0]}
    angles = ((30.0, 20.0), (-30.0, 25.0))
    dcm, png = root / "dicom", root / "png"
    dcm.mkdir(parents=True)
    png.mkdir(parents=True)
    dviews, pviews = [], []
    for k, (a, b) in enumerate(angles):
        g = ViewGeometry.from_angles(a, b, 1000.0, 750.0, (0.3, 0.3), SIZE, SIZE)
        write_xa(dcm / f"view_{'ab'[k]}.dcm", _image(k), g, uid_seed=f"fuzz-{k}")
        dviews.append({"image": f"view_{'ab'[k]}.dcm", "soi": soi})
        Image.fromarray(_image(k)).save(png / f"view_{'ab'[k]}.png")
        geo = {
            "primary_angle_deg": a,
            "secondary_angle_deg": b,
            "sid_mm": 1000.0,
            "sod_mm": 750.0,
            "pixel_spacing_mm": [0.3, 0.3],
        }
        pviews.append({"image": f"view_{'ab'[k]}.png", "geometry": geo, "soi": soi})
    for d, views in ((dcm, dviews), (png, pviews)):
        doc = {"format": "angio-case/1", "views": views}
        (d / "case.json").write_text(json.dumps(doc), encoding="utf-8")
    return dcm, png


# -- DICOM byte mutations ----------------------------------------------------------------
def _header_end(data: bytes) -> int:
    i = data.find(_PIXEL_DATA_TAG, 132)
    return len(data) if i < 0 else i + 12


def _flip(data: bytearray, rng: np.random.Generator) -> str:
    end = _header_end(bytes(data))
    n = int(rng.integers(1, 9))
    for _ in range(n):
        data[int(rng.integers(132, end))] = int(rng.integers(0, 256))
    return f"flip {n} header bytes"


def _truncate(data: bytearray, rng: np.random.Generator) -> str:
    at = int(rng.integers(0, len(data)))
    del data[at:]
    return f"truncate at {at}"


def _insert(data: bytearray, rng: np.random.Generator) -> str:
    at = int(rng.integers(132, _header_end(bytes(data))))
    n = int(rng.integers(1, 17))
    data[at:at] = rng.integers(0, 256, n).astype(np.uint8).tobytes()
    return f"insert {n} bytes at {at}"


def _delete(data: bytearray, rng: np.random.Generator) -> str:
    at = int(rng.integers(132, _header_end(bytes(data)) - 1))
    n = int(rng.integers(1, 17))
    del data[at : at + n]
    return f"delete {n} bytes at {at}"


def _element_offsets(data: bytes) -> list[int]:
    """Offsets of explicit-VR elements (tag + a VR we know) in the header."""
    out, end = [], _header_end(data)
    known = {b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"OB", b"OW", b"PN"}
    known |= {b"SH", b"SQ", b"TM", b"UI", b"UL", b"US", b"SS", b"FD", b"FL", b"LT", b"UN"}
    for i in range(132, end - 6):
        if (
            data[i + 4 : i + 6] in known
            and data[i + 1] == 0
            and data[i] in (0x02, 0x08, 0x18, 0x20, 0x28)
        ):
            out.append(i)
    return out


def _vr(data: bytearray, rng: np.random.Generator) -> str:
    offs = _element_offsets(bytes(data))
    if not offs:
        return _flip(data, rng)
    i = offs[int(rng.integers(len(offs)))]
    vr = _VRS[int(rng.integers(len(_VRS)))]
    data[i + 4 : i + 6] = vr
    return f"VR at {i} -> {vr!r}"


def _length(data: bytearray, rng: np.random.Generator) -> str:
    offs = _element_offsets(bytes(data))
    if not offs:
        return _flip(data, rng)
    i = offs[int(rng.integers(len(offs)))]
    value = int(rng.choice([0, 1, 3, 5, 255, 0xFFFF, int(rng.integers(0, 0xFFFF))]))
    data[i + 6 : i + 8] = value.to_bytes(2, "little")
    return f"length at {i} -> {value}"


DICOM_MUTATIONS: list[Callable[[bytearray, np.random.Generator], str]] = [
    _flip,
    _truncate,
    _insert,
    _delete,
    _vr,
    _length,
]


# -- case.json mutations ------------------------------------------------------------------
def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def mutate_json(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """One random mutation of a case.json text -> (new text, description)."""
    kind = int(rng.integers(0, 6))
    if kind == 0:  # raw text damage
        at = int(rng.integers(0, len(text)))
        return text[:at] + rng.choice(["", "{", "]", '"', ",", "\\", "\ud800"]) + text[at + 1 :], (
            f"text at {at}"
        )
    doc = json.loads(text)
    paths = _paths(doc)
    path = paths[int(rng.integers(len(paths)))]
    if kind == 1 and path:
        return json.dumps(_set(doc, path, None, delete=True)), f"delete {path}"
    if kind == 2:
        depth = int(rng.choice([40, 1000, 100_000]))
        raw = json.dumps(_set(copy.deepcopy(doc), path, "@@"))
        return raw.replace('"@@"', "[" * depth + "]" * depth), f"nest {depth} at {path}"
    if kind == 3:
        big = rng.choice(["1" + "0" * 400, "9" * 5000, "1e400", "NaN", "-Infinity", "1.5e-400"])
        raw = json.dumps(_set(copy.deepcopy(doc), path, "@@"))
        return raw.replace('"@@"', str(big)), f"number {str(big)[:12]} at {path}"
    if kind == 4 and path:
        return ("\ufeff" if rng.random() < 0.5 else "") + json.dumps(doc), "BOM / re-encoded"
    value = _NASTY[int(rng.integers(len(_NASTY)))]
    return json.dumps(_set(doc, path, value)), f"{path} -> {str(value)[:20]!r}"


# -- the run --------------------------------------------------------------------------
def _outcome(case: Path) -> tuple[str, str]:
    try:
        with warnings.catch_warnings():  # as the CLI runs: warnings are logged, not raised
            warnings.simplefilter("ignore")
            load_case(case)
    except InputError as exc:
        return "input_error", type(exc).__name__
    except Exception as exc:  # the bug this tool looks for
        return "bug", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
    return "ok", ""


def fuzz(count: int, seed: int = 0, keep: Path | None = None) -> dict[str, Any]:
    """Run ``count`` mutations -> {"counts": {...}, "bugs": [...], "seconds": s}."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    counts: Counter[str] = Counter()
    bugs: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="angio-fuzz-") as tmp:
        root = Path(tmp)
        dcm, png = base_cases(root / "base")
        for k in range(count):
            work = root / f"m{k}"
            if k % 2 == 0:  # a DICOM view mutated
                shutil.copytree(dcm, work)
                name = f"view_{'ab'[int(rng.integers(2))]}.dcm"
                data = bytearray((work / name).read_bytes())
                fn = DICOM_MUTATIONS[int(rng.integers(len(DICOM_MUTATIONS)))]
                what = f"{name}: {fn(data, rng)}"
                (work / name).write_bytes(bytes(data))
            else:  # case.json mutated (the PNG case: geometry lives in the JSON)
                shutil.copytree(png, work)
                text = (work / "case.json").read_text(encoding="utf-8")
                new, what = mutate_json(text, rng)
                (work / "case.json").write_bytes(new.encode("utf-8", "surrogatepass"))
                what = f"case.json: {what}"
            result, detail = _outcome(work)
            counts[result] += 1
            if result == "bug":
                bugs.append({"mutation": what, "error": detail})
                if keep is not None:
                    shutil.copytree(work, keep / f"m{k}", dirs_exist_ok=True)
            shutil.rmtree(work)
    return {
        "count": count,
        "seed": seed,
        "counts": dict(counts),
        "bugs": bugs,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--keep", metavar="DIR", help="save the case folders that hit a bug")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the loader's warnings are expected here
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    res = fuzz(args.count, args.seed, keep)
    print(
        f"{res['count']} mutations in {res['seconds']} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(res["counts"].items()))
    )
    for b in res["bugs"][:20]:
        print(f"BUG {b['mutation']}: {b['error'].splitlines()[0]}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 1 if res["bugs"] else 0


if __name__ == "__main__":
    sys.exit(main())
