"""report.html in a real browser (headless Chromium, software WebGL): the page loads with no
console error, the 3D view draws the mesh -- its pixels are in the canvas and vanish when
the layer is hidden --, coloured by diameter the right way round, and it turns and zooms
with the mouse. Skips (with the reason) where no Chromium is installed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.cli import main
from angio_deploy.report_html import MeshLayer, render_batch_index, write_report_html

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_case"


def background(rgb: np.ndarray) -> np.ndarray:
    """The canvas's most frequent colour: the viewer's clear colour as the screen shows it
    (#1f2933 in viewer.js; Chromium's colour management may shift it a little)."""
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def mesh_pixels(rgb: np.ndarray, bg: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: pixels that are not the viewer's background."""
    bg = background(rgb) if bg is None else bg
    return np.abs(rgb.astype(int) - bg.astype(int)).max(axis=-1) > 12


def red(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(int)
    return (c[..., 0] > c[..., 1] + 60) & (c[..., 0] > c[..., 2] + 60)


def blue(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(int)
    return (c[..., 2] > c[..., 0] + 50) & (c[..., 2] > 90)


def settle(page) -> None:
    """Let two animation frames pass, so what was rendered is on screen."""
    page.evaluate(
        "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))).then(() => 1)"
    )
    time.sleep(0.2)


def open_report(page, path: Path) -> None:
    page.open(path)
    state = page.wait_for("document.body.dataset.viewer")
    assert state == "ready", page.problems()
    settle(page)


@pytest.fixture(scope="module")
def example_out(tmp_path_factory) -> Path:
    """The example case run by `angio-deploy run` (the shipped models), as a user would."""
    case = Path(shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("example") / "case"))
    assert main(["run", str(case)]) == 0
    return case / "out"


def test_example_report_loads_and_shows_the_mesh(browser, example_out) -> None:
    page = browser.new_page()
    open_report(page, example_out / "report.html")
    # Every figure decoded (three data: URIs), nothing logged, nothing blocked.
    assert page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)") == [
        True,
        True,
        True,
    ]
    assert page.problems() == []

    shot = page.screenshot("#viewer canvas")
    assert shot.shape[0] > 300 and shot.shape[1] > 600
    bg = background(shot)
    assert bg.max() < 100  # dark, as styled
    on = mesh_pixels(shot)
    assert 0.01 < on.mean() < 0.5, on.mean()  # drawn, and not a canvas filled with colour
    # The lesion narrows the lumen to about half the reference: red there, blue where wide.
    assert red(shot).sum() > 30 and blue(shot).sum() > 300
    assert (red(shot) | blue(shot))[~on].sum() == 0

    # The pixels are the mesh's: hiding its layer leaves the background alone.
    page.evaluate("document.querySelector('#viewer-layers input[data-layer=main]').click()")
    settle(page)
    assert mesh_pixels(page.screenshot("#viewer canvas"), bg).sum() == 0
    page.evaluate("document.querySelector('#viewer-layers input[data-layer=main]').click()")
    settle(page)
    np.testing.assert_array_equal(mesh_pixels(page.screenshot("#viewer canvas")), on)

    # A drag turns it, the wheel zooms in.
    x, y, w, h = page.evaluate(
        "(() => { const r = document.querySelector('#viewer canvas').getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()"
    )
    cx, cy = x + w / 2, y + h / 2
    mouse = "Input.dispatchMouseEvent"
    page.send(mouse, {"type": "mouseMoved", "x": cx, "y": cy})
    page.send(mouse, {"type": "mousePressed", "x": cx, "y": cy, "button": "left", "clickCount": 1})
    for k in range(1, 11):
        page.send(mouse, {"type": "mouseMoved", "x": cx + 15 * k, "y": cy, "button": "left"})
    page.send(mouse, {"type": "mouseReleased", "x": cx + 150, "y": cy, "button": "left"})
    settle(page)
    turned = mesh_pixels(page.screenshot("#viewer canvas"))
    assert (turned != on).mean() > 0.005 and turned.mean() > 0.005
    for _ in range(5):
        page.send(mouse, {"type": "mouseWheel", "x": cx, "y": cy, "deltaX": 0, "deltaY": -200})
    settle(page)
    assert mesh_pixels(page.screenshot("#viewer canvas")).mean() > 1.3 * turned.mean()
    assert page.problems() == []


def test_colour_follows_the_diameter_on_every_layer(browser, tmp_path, tube) -> None:
    v, f, d = tube()  # along x, diameter 1 -> 4 mm
    plain = v + np.array([0.0, 0.0, 12.0])  # a second layer above it, no diameters
    hidden = v + np.array([0.0, 0.0, -12.0])  # below it, hidden until ticked
    layers = [
        MeshLayer("ramp", v, f, d),
        MeshLayer("plain", plain, f),
        MeshLayer("hidden", hidden, f, visible=False),
    ]
    write_report_html(tmp_path, {"id": "tube"}, layers, {})
    page = browser.new_page()
    open_report(page, tmp_path / "report.html")
    assert page.problems() == []
    shot = page.screenshot("#viewer canvas")
    rows, cols = np.indices(shot.shape[:2])
    r, b = red(shot), blue(shot)
    assert r.sum() > 200 and b.sum() > 200
    # Anterior view, +x (patient's left) on the right: narrow (red) left, wide (blue) right.
    assert cols[r].mean() < cols[b].mean() - 100
    # The plain layer: a light neutral grey, above (+z is up).
    c = shot.astype(int)
    grey = (c.min(axis=-1) > 110) & (c.max(axis=-1) - c.min(axis=-1) < 30)
    assert grey.sum() > 200
    assert rows[grey].mean() < rows[r | b].mean() - 20
    # The hidden layer (grey, below) appears when its box is ticked.
    assert page.evaluate("document.querySelector('input[data-layer=hidden]').checked") is False
    page.evaluate("document.querySelector('input[data-layer=hidden]').click()")
    settle(page)
    c2 = page.screenshot("#viewer canvas").astype(int)
    grey2 = (c2.min(axis=-1) > 110) & (c2.max(axis=-1) - c2.min(axis=-1) < 30)
    below = rows > rows[r | b].mean() + 20
    assert (grey2 & below).sum() > 200 and (grey & below).sum() == 0


def test_batch_index_links_to_the_reports(browser, tmp_path, tube) -> None:
    v, f, d = tube()
    (tmp_path / "case_1" / "out").mkdir(parents=True)
    write_report_html(tmp_path / "case_1" / "out", {"id": "c1"}, [MeshLayer("m", v, f, d)], {})
    rows = [
        {"case": "case_1", "status": "ok", "report": "case_1/out/report.html"},
        {"case": "case_2", "status": "failed", "error": "no pixel data"},
    ]
    (tmp_path / "index.html").write_text(render_batch_index(rows), encoding="utf-8")
    page = browser.new_page()
    page.open(tmp_path / "index.html")
    assert page.evaluate("document.querySelectorAll('tbody tr, table tr').length") == 3
    page.evaluate("document.querySelector('a').click()")
    page.wait_for("location.href.endsWith('/case_1/out/report.html')")
    page.wait_for("document.readyState === 'complete' && document.body.dataset.viewer")
    assert page.evaluate("document.title") == "angio-deploy: c1"
    assert page.evaluate("document.body.dataset.viewer") == "ready"
    assert page.problems() == []
