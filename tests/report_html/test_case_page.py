"""report.html as a string: well-formed, self-contained, the mesh data round-trips, every
string from the report escaped, figures embedded byte for byte."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angio_deploy.geometry import ViewGeometry
from angio_deploy.report_html import MeshLayer, render_report_html, write_report_html
from angio_deploy.report_html.case_page import figures_in, view_cameras
from angio_deploy.report_html.mesh_layer import encode_layers

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr", "col", "area", "base"}


class TagChecker(HTMLParser):
    """Every non-void element closed in order; the data of each <script> kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self._script_attrs: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "script":
            self._script_attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._script_attrs is not None and self.stack and self.stack[-1] == "script":
            self.scripts.append((self._script_attrs, data))
            self._script_attrs = None


def parse(html: str) -> TagChecker:
    p = TagChecker()
    p.feed(html)
    p.close()
    return p


def png_bytes(color=(10, 200, 30), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def report_doc(**edits) -> dict:
    g = ViewGeometry.from_angles(30.0, 20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    doc = {
        "format": "angio-report/1",
        "case": "cases/c1",
        "id": "case-1",
        "versions": {"angio_deploy": "9.9.9", "python": "3.11"},
        "backend": {"kernels": "native", "model": "segmenter", "sha256": "ab" * 32},
        "views": [{"name": "a", "image": "a.dcm", "geometry_used": g.to_dict()}],
        "qca": {
            "branches": [
                {
                    "branch": "main",
                    "length_mm": 40.0,
                    "mld_mm": 1.25,
                    "percent_ds": 51.5,
                    "reference_diameter_mm": {"proximal": 3.1, "distal": 2.4},
                    "lesions": [{"start_mm": 10.0, "end_mm": 14.0, "mld_mm": 1.25}],
                    "foreshortening": [0.8],
                }
            ]
        },
        "timings_s": {"segment": 0.5, "total": 1.5},
        "warnings": [],
    }
    doc.update(edits)
    return doc


def mesh_data(html: str) -> dict:
    scripts = [d for a, d in parse(html).scripts if a.get("id") == "angio-mesh-data"]
    assert len(scripts) == 1
    return json.loads(scripts[0])


def decode(b64: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=dtype)


def test_page_is_well_formed_html(tube) -> None:
    v, f, d = tube()
    html = render_report_html(
        report_doc(), [MeshLayer("main", v, f, d)], {"overlay_a.png": png_bytes()}
    )
    assert html.startswith("<!DOCTYPE html>")
    p = parse(html)
    assert p.errors == [] and p.stack == []
    assert p.counts["html"] == p.counts["head"] == p.counts["body"] == p.counts["title"] == 1
    # Both scripts inline: the three.js subset (classic) and the viewer (module).
    types = [a.get("type") for a, _ in p.scripts]
    assert types == ["application/json", None, "module"]
    assert "AngioThree" in p.scripts[1][1] and "OrbitControls" in p.scripts[2][1]


def test_no_external_url_and_a_policy_that_forbids_them(tube) -> None:
    v, f, d = tube()
    html = render_report_html(
        report_doc(), [MeshLayer("main", v, f, d)], {"overlay_a.png": png_bytes()}
    )
    p = parse(html)
    for tag, key, value in p.attrs:
        if key in ("src", "href"):
            assert value.startswith("data:"), (tag, key, value[:60])
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.IGNORECASE)
    csp = [v for t, k, v in p.attrs if t == "meta" and k == "content" and "default-src" in v]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]


def test_mesh_data_decodes_to_the_input_arrays(tube) -> None:
    v, f, d = tube()
    v2 = v + np.array([0.0, 40.0, 0.0])
    layers = [MeshLayer("main", v, f, d), MeshLayer("branch_1", v2, f[:50])]
    data = mesh_data(render_report_html(report_doc(), layers, {}))
    a, b = data["layers"]
    assert (a["name"], b["name"]) == ("main", "branch_1")
    np.testing.assert_array_equal(decode(a["vertices"], "<f4").reshape(-1, 3), v.astype(np.float32))
    np.testing.assert_allclose(decode(a["vertices"], "<f4").reshape(-1, 3), v, atol=1e-5)
    assert a["index_type"] == "uint16"
    np.testing.assert_array_equal(decode(a["faces"], "<u2").reshape(-1, 3), f)
    np.testing.assert_array_equal(decode(a["diameter_mm"], "<f4"), d.astype(np.float32))
    np.testing.assert_array_equal(decode(b["faces"], "<u2").reshape(-1, 3), f[:50])
    assert b["diameter_mm"] is None
    assert a["visible"] is True
    assert (a["n_vertices"], a["n_faces"], b["n_faces"]) == (len(v), len(f), 50)
    # One colour scale for every layer: the range of all diameters.
    assert data["diameter_range_mm"] == pytest.approx([d.min(), d.max()])


def test_large_layers_use_32_bit_indices() -> None:
    n = 70_000  # more vertices than uint16 can index
    v = np.random.default_rng(0).normal(size=(n, 3))
    f = np.array([[0, 1, n - 1], [n - 2, n - 1, 5]])
    (layer,) = encode_layers([MeshLayer("big", v, f)])["layers"]
    assert layer["index_type"] == "uint32"
    np.testing.assert_array_equal(decode(layer["faces"], "<u4").reshape(-1, 3), f)


@pytest.mark.parametrize(
    ("vertices", "faces", "diameter", "msg"),
    [
        (np.zeros((4, 2)), [[0, 1, 2]], None, "vertices must be"),
        (np.zeros((4, 3)), [[0, 1, 4]], None, "outside"),
        (np.zeros((4, 3)), [[0.0, 1.0, 2.0]], None, "integers"),
        (np.zeros((4, 3)), [[0, 1, 2]], np.ones(3), "diameter_mm must be"),
    ],
)
def test_mesh_layer_refuses_bad_arrays(vertices, faces, diameter, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        MeshLayer("x", np.asarray(vertices), np.asarray(faces), diameter)


def test_non_finite_values_never_fail_the_page(tube) -> None:
    v, f, d = tube()
    d = d.copy()
    d[:12] = np.nan  # a ring without a diameter
    bad = v.copy()
    bad[3] = np.inf
    layers = [MeshLayer("main", v, f, d), MeshLayer("exploded", bad, f)]
    html = render_report_html(report_doc(), layers, {})
    data = mesh_data(html)
    assert [m["name"] for m in data["layers"]] == ["main"]
    assert "Not shown (vertices that are not finite numbers): exploded." in html
    assert data["diameter_range_mm"] == pytest.approx([d[12:].min(), d[12:].max()])
    only_bad = render_report_html(report_doc(), [MeshLayer("exploded", bad, f)], {})
    assert "No mesh in this result" in only_bad and "<script" not in only_bad


def test_strings_from_the_report_are_escaped(tube) -> None:
    evil = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'
    v, f, d = tube()
    doc = report_doc(id=evil, case=evil, warnings=[evil, "a & b < c"])
    doc["views"][0]["image"] = evil
    doc["qca"]["branches"][0]["branch"] = evil
    html = render_report_html(doc, [MeshLayer(evil, v, f, d)], {})
    assert evil not in html
    assert "<img src=x" not in html and "<script>alert" not in html
    p = parse(html)
    assert p.errors == [] and p.stack == []
    assert not any(t == "img" and k == "src" and v == "x" for t, k, v in p.attrs)
    # Exactly the page's own three scripts, whatever the strings said.
    assert len(p.scripts) == 3 and p.counts["script"] == 3
    assert "&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)" in html
    assert "a &amp; b &lt; c" in html
    # The layer name reaches the viewer intact through the JSON block.
    assert mesh_data(html)["layers"][0]["name"] == evil


def test_figures_are_embedded_byte_for_byte() -> None:
    imgs = {
        "overlay_b.png": png_bytes((1, 2, 3)),
        "overlay_a.png": png_bytes((4, 5, 6)),
        "diameter_main.png": png_bytes((7, 8, 9)),
        "unrelated.png": png_bytes((9, 9, 9)),
    }
    html = render_report_html(report_doc(), [], imgs)
    srcs = [(v) for t, k, v in parse(html).attrs if t == "img" and k == "src"]
    got = [base64.b64decode(s.split(",", 1)[1]) for s in srcs]
    # The diameter plot with the QCA, then the overlays in view order; nothing else.
    assert got == [imgs["diameter_main.png"], imgs["overlay_a.png"], imgs["overlay_b.png"]]
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    with pytest.raises(ValueError, match=r"overlay_a\.png"):
        render_report_html(report_doc(), [], {"overlay_a.png": b"GIF89a..."})


def test_report_content_is_shown() -> None:
    html = render_report_html(report_doc(warnings=["low contrast in view b"]), [], {})
    text = re.sub(r"<[^>]+>", " ", html)
    for expected in (
        "case-1",
        "9.9.9",
        "low contrast in view b",
        "1.25 mm",
        "51.5 %",
        "3.10 / 2.40 mm",
        "0.80",
        "abababababababab",
        "1.500",
    ):
        assert expected in text, expected
    assert "Warnings (1)" in text
    assert "No mesh in this result" in text
    assert "<script" not in html  # no viewer, no script
    # Fields a later version adds to a branch appear without code changes.
    doc = report_doc()
    doc["qca"]["branches"][0]["bifurcation_angle_deg"] = 47.25
    assert "47.25" in render_report_html(doc, [], {})


def test_an_empty_report_still_renders() -> None:
    p = parse(render_report_html({}, [], {}))
    assert p.errors == [] and p.stack == []


def test_view_cameras_look_as_the_angiogram_does() -> None:
    g = ViewGeometry.from_angles(30.0, 20.0, 1000.0, 750.0, (0.3, 0.3), 512, 512)
    centre = np.array([5.0, -3.0, 10.0])
    (cam,) = view_cameras({"views": [{"name": "a", "geometry_used": g.to_dict()}]}, centre)
    eye, up = np.array(cam["direction"]), np.array(cam["up"])
    ray = g.source_mm - centre
    ray /= np.linalg.norm(ray)
    assert abs(abs(eye @ ray) - 1) < 1e-9  # on the ray through the centre
    assert abs(up @ eye) < 1e-9 and np.linalg.norm(up) == pytest.approx(1)
    # Moving up on screen moves towards row 0; moving right moves to larger columns.
    right = np.cross(-eye, up)
    uv0 = g.project(centre[None])[0]
    assert g.project((centre + up)[None])[0][1] < uv0[1]
    assert g.project((centre + right)[None])[0][0] > uv0[0]


def test_write_report_html_takes_the_folders_figures(tmp_path: Path, tube) -> None:
    (tmp_path / "overlay_a.png").write_bytes(png_bytes((1, 1, 1)))
    (tmp_path / "diameter_main.png").write_bytes(png_bytes((2, 2, 2)))
    (tmp_path / "other.png").write_bytes(png_bytes((3, 3, 3)))
    assert sorted(figures_in(tmp_path)) == ["diameter_main.png", "overlay_a.png"]
    v, f, d = tube()
    layers = [MeshLayer("main", v, f, d)]
    path = write_report_html(tmp_path, report_doc(), layers)
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == render_report_html(
        report_doc(), layers, figures_in(tmp_path)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "diameter_main.png",
        "other.png",
        "overlay_a.png",
        "report.html",
    ]
