"""tools/appearance_stats.py: field of view, vesselness calibration, widths and contrast,
background spectrum and noise, SOI contacts, tortuosity, and a whole run on tiny sets."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_PATH = Path(__file__).resolve().parents[2] / "tools" / "appearance_stats.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("appearance_stats", _PATH)
    mod = importlib.util.module_from_spec(spec)
    # Its dataclasses resolve their annotations through sys.modules.
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _bars(size: int = 160, widths=(3, 9), contrasts=(0.1, 0.2), bg: float = 0.5):
    """Horizontal dark bars of the given widths (px) and contrasts on a flat background;
    returns the image and the bars' mask."""
    img = np.full((size, size), bg, dtype=np.float32)
    mask = np.zeros((size, size), dtype=bool)
    rows = np.linspace(size * 0.3, size * 0.7, len(widths)).astype(int)
    for r, w, c in zip(rows, widths, contrasts, strict=True):
        sl = slice(r - w // 2, r - w // 2 + w)
        img[sl, 20:-20] -= c
        mask[sl, 20:-20] = True
    return img, mask


def test_circular_field_of_view(tool):
    n = 200
    yy, xx = np.mgrid[:n, :n]
    disk = np.hypot(yy - 100, xx - 100) < 90
    rng = np.random.default_rng(0)
    img = np.where(disk, 0.5 + 0.01 * rng.standard_normal((n, n)), 0.03).astype(np.float32)
    fov = tool.field_of_view(img)
    assert fov.circular
    assert fov.dark_share == pytest.approx(1.0 - disk.mean(), abs=0.01)
    assert (fov.mask == disk).mean() > 0.99


def test_blade_band_is_border_and_not_circular(tool):
    n = 200
    img = np.full((n, n), 0.5, dtype=np.float32)
    # A collimator blade that display processing lifted to 0.2 (above the black level),
    # with a soft edge, on the left 12 columns.
    img[:, :12] = 0.2
    img[:, 12:15] = [0.3, 0.4, 0.45]
    fov = tool.field_of_view(img)
    assert not fov.circular
    assert not fov.mask[:, :10].any()
    assert fov.mask[:, 20:].all()
    assert fov.dark_share == pytest.approx(12 / n, abs=0.02)


def test_thin_dark_line_at_edge_is_not_border(tool):
    img = np.full((200, 200), 0.5, dtype=np.float32)
    img[:80, 98:104] = 0.02  # a catheter-like tube entering from the top edge
    fov = tool.field_of_view(img)
    assert fov.dark_share < 0.005


def test_analysis_square_is_inside_the_fov(tool):
    n = 120
    yy, xx = np.mgrid[:n, :n]
    disk = np.hypot(yy - 60, xx - 60) < 50
    sy, sx = tool.analysis_square(disk)
    assert disk[sy, sx].all()
    side = sy.stop - sy.start
    assert side == sx.stop - sx.start
    assert side >= 0.9 * 50 * math.sqrt(2) - 4


def test_widths_and_contrast_by_width(tool):
    img, mask = _bars()
    skel = tool.skeleton(mask)
    w = tool.widths_on_skeleton(mask, skel)
    rows = np.nonzero(skel)[0]
    wide = rows > 80
    assert np.median(w[~wide]) == pytest.approx(3, abs=0.6)
    assert np.median(w[wide]) == pytest.approx(9, abs=0.6)
    bg = tool.local_background(img, ~mask)
    out = tool.contrast_by_width(img, mask, skel, bg)
    assert out["2-4"]["contrast"] == pytest.approx(0.1, abs=0.01)
    assert out["7-12"]["contrast"] == pytest.approx(0.2, abs=0.01)
    assert out["7-12"]["relative"] == pytest.approx(0.2 / 0.5, abs=0.03)
    assert math.isnan(out["12-25"]["contrast"]) and out["12-25"]["n"] == 0


def test_vesselness_calibration_finds_the_bars(tool):
    rng = np.random.default_rng(1)
    img, mask = _bars(widths=(3, 5, 7), contrasts=(0.15, 0.15, 0.15))
    img = img + 0.01 * rng.standard_normal(img.shape).astype(np.float32)
    fov = np.ones_like(mask)
    v = tool.vesselness(img)
    cal = tool.calibrate_threshold([v], [mask], [fov])
    assert cal["threshold"] in tool.THRESHOLD_GRID
    assert cal["dice_mean"] > 0.7
    best = tool.vesselness_mask(v, fov, cal["threshold"])
    assert tool.dice(best, mask) == pytest.approx(cal["dice_mean"])
    # A level far above the best finds (almost) nothing.
    assert tool.vesselness_mask(v, fov, 10 * cal["threshold"]).sum() < 0.1 * mask.sum()


def _power_law(n: int, beta: float, rng) -> np.ndarray:
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    phase = np.exp(2j * np.pi * rng.random((n, n)))
    tex = np.real(np.fft.ifft2(amp * phase))
    return (tex / tex.std()).astype(np.float32)


def test_background_noise_and_spectrum(tool):
    rng = np.random.default_rng(2)
    n = 256
    fov = np.ones((n, n), dtype=bool)
    none = np.zeros((n, n), dtype=bool)
    white = 0.5 + 0.02 * rng.standard_normal((n, n)).astype(np.float32)
    st = tool.background_stats(white, none, fov, np.full((n, n), 0.5, dtype=np.float32))
    assert st["noise"] == pytest.approx(0.02, rel=0.15)
    assert abs(st["spectrum_slope"]) < 0.4
    tex = 0.5 + 0.05 * _power_law(n, 3.0, rng)
    st3 = tool.background_stats(tex, none, fov, np.full((n, n), 0.5, dtype=np.float32))
    assert st3["spectrum_slope"] == pytest.approx(-3.0, abs=0.4)
    assert st3["noise"] < 0.5 * st["noise"]
    assert st3["texture_sd"] > st["texture_sd"]


def test_background_ignores_vessels(tool):
    rng = np.random.default_rng(3)
    img, mask = _bars(size=200, widths=(5, 9), contrasts=(0.3, 0.3))
    img = img + 0.01 * rng.standard_normal(img.shape).astype(np.float32)
    fov = np.ones_like(mask)
    bg = tool.local_background(img, ~mask)
    with_v = tool.background_stats(img, mask, fov, bg)
    plain = tool.background_stats(img, np.zeros_like(mask), fov, bg)
    # Unmasked dark bars are strong low-frequency texture; masked, only the noise is left.
    assert with_v["texture_sd"] < 0.5 * plain["texture_sd"]


def test_contacts_count_crossings_and_branches_not_the_continuation(tool):
    n = 120
    soi = np.zeros((n, n), dtype=bool)
    soi[58:63, 20:100] = True
    start, end = np.array([20.0, 60.0]), np.array([99.0, 60.0])
    cont = soi.copy()
    cont[58:63, 100:115] = True  # the vessel goes on past the end
    cont[58:63, 5:20] = True  # and before the start
    assert tool.contacts(cont, soi, start, end) == 0
    crossing = cont.copy()
    crossing[20:100, 58:62] = True  # another vessel crosses in the middle
    assert tool.contacts(crossing, soi, start, end) == 2
    branch = cont.copy()
    branch[63:100, 40:43] = True  # a branch leaves downwards
    assert tool.contacts(branch, soi, start, end) == 1


def test_visible_vessels_drop_what_the_noise_hides(tool):
    rng = np.random.default_rng(5)
    n = 160
    img = np.full((n, n), 0.5, dtype=np.float32)
    strong = np.zeros((n, n), dtype=bool)
    strong[40:45, 20:140] = True
    faint = np.zeros((n, n), dtype=bool)
    faint[110:113, 20:140] = True
    img[strong] -= 0.1
    img[faint] -= 0.005  # a quarter of the noise sigma
    img += 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    bg = tool.local_background(img, ~(strong | faint))
    parts = [np.flatnonzero(strong), np.flatnonzero(faint)]
    vis = tool.visible_vessels(img, parts, bg, 0.02)
    assert (vis == strong).all()


def test_tortuosity(tool):
    n = 200
    straight = np.zeros((n, n), dtype=bool)
    straight[100, 20:180] = True
    assert tool.tortuosity(straight) == pytest.approx(1.0, abs=0.03)
    wavy = np.zeros((n, n), dtype=bool)
    x = np.arange(20.0, 180.0, 0.05)
    y = 100 + 15 * np.sin(2 * np.pi * (x - 20) / 80)
    wavy[y.round().astype(int), x.round().astype(int)] = True
    from scipy import ndimage

    wavy = tool.skeleton(ndimage.binary_dilation(wavy, structure=np.ones((3, 3))))
    # Arc length of y = 15 sin(2 pi x / 80) over two periods, over the chord.
    xs = np.linspace(0, 160, 4001)
    arc = np.sum(np.hypot(np.diff(xs), np.diff(15 * np.sin(2 * np.pi * xs / 80))))
    assert tool.tortuosity(wavy) == pytest.approx(arc / 160, rel=0.12)


def test_summarise_ignores_nan(tool):
    vals = [1.0, 2.0, math.nan, 3.0, 4.0, None]
    s = tool.summarise(vals)
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4
    assert s["median"] == pytest.approx(np.median(ref))
    assert s["p10"] == pytest.approx(np.percentile(ref, 10))
    assert s["p90"] == pytest.approx(np.percentile(ref, 90))
    assert tool.summarise([math.nan])["n"] == 0


def _write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    """A tiny shared/data tree (2 arcade, 1 clinical, 2 real_seg frames) and one
    synthetic case written by the engine."""
    from angio_deploy.synth.engine import synthesise

    root = tmp_path_factory.mktemp("appearance")
    shared = root / "data"
    rng = np.random.default_rng(4)
    for k in (1, 2):
        img, mask = _bars(size=128, widths=(3, 7), contrasts=(0.15, 0.25))
        img = img + 0.01 * rng.standard_normal(img.shape)
        _write_png(shared / "real_arcade" / "images" / f"{k}.png", img)
        _write_png(shared / "real_seg" / "images" / f"{k}.png", img)
        _write_png(shared / "real_seg" / "masks" / f"{k}.png", mask.astype(float))
    img, _ = _bars(size=128)
    path = shared / "real_clinical" / "projection_0" / "IM0_01.jpg"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(path)
    synth = root / "synth"
    synthesise(synth, 1, 7, size=512)
    return shared, synth


def test_run_end_to_end(tool, tiny_sets, tmp_path):
    shared, synth = tiny_sets
    doc = tool.run(shared, synth)
    s = doc["summary"]
    assert {k: s[k]["frames"] for k in tool.SETS} == {
        "real_arcade": 2,
        "real_clinical": 1,
        "real_seg": 2,
        "synthetic": 2,
    }
    # Calibrated on the real_seg bars, the vesselness mask finds them well.
    assert doc["calibration"]["dice_mean"] > 0.6
    assert s["real_seg"]["truth.share"]["median"] > 0
    syn = doc["frames"]["synthetic"]
    for row in syn:
        assert row["height"] == 512
        assert row["truth"]["share"] > 0
        assert row["soi"]["length_px"] > 20
        assert isinstance(row["catheter_truth"], bool)
    for row in syn:
        # The visible tree is part of the full tree; the SOI is measured against both.
        assert 0 < row["truth_visible"]["share"] <= row["truth"]["share"]
        assert row["soi_visible"]["contacts"] <= row["soi"]["contacts"]
    assert s["synthetic"]["tasks"]["n"] > 0
    assert s["real_seg"]["tasks"]["n"] > 0 and "tasks_visible" not in s["real_seg"]
    assert all("tasks_vesselness" in r for rows in doc["frames"].values() for r in rows)
    assert s["real_arcade"]["catheter_visual"]["n"] == len(tool.CATHETER_VISUAL_ARCADE)
    table = tool.markdown_table(doc)
    assert table.count("\n") > 20 and "| synthetic (n=2) |" in table.splitlines()[0]
    out = tmp_path / "m.png"
    tool.write_montage(doc["_montage"], out)
    with Image.open(out) as im:
        assert im.size[0] == 4 * 256
    text = json.dumps(tool._jsonable(doc), allow_nan=False)
    assert "_montage" not in text


def test_workers_give_the_same_rows(tool, tiny_sets):
    shared, synth = tiny_sets
    one = tool._jsonable(tool.run(shared, synth, limit=1))
    two = tool._jsonable(tool.run(shared, synth, limit=1, workers=2))
    assert one["frames"] == two["frames"]
    assert one["summary"] == two["summary"]


def test_synthetic_folder_from_another_generator_is_refused(tool, tiny_sets, tmp_path):
    from angio_deploy.errors import InputError

    _, synth = tiny_sets
    case = next(synth.glob("case_*"))
    copy = tmp_path / "synth" / case.name
    copy.mkdir(parents=True)
    for f in case.rglob("*"):
        if f.is_file():
            dst = copy / f.relative_to(case)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(f.read_bytes())
    meta = copy / "truth" / "meta.json"
    doc = json.loads(meta.read_text())
    doc["seed"] = doc["seed"] + 1
    meta.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="another generator"):
        next(tool.synthetic_frames(tmp_path / "synth"))
