"""report.html: one case's result as a single self-contained page (CASE_FORMAT.md, "Output").

The page holds the 3D mesh(es) in an interactive viewer (three.js, bundled into the page:
vendor/VENDOR.md), coloured by lumen diameter; the overlays and diameter plots as data:
URIs; the QCA, quality and per-view geometry tables; the warnings; the provenance
(versions, models, backend, per-stage timings) and the whole report.json. It needs no
network and no other file, so it can be mailed or archived on its own.

:func:`render_report_html` is pure (a report dict, meshes and image bytes in; a string
out); :func:`write_report_html` writes ``report.html`` into a result folder, taking the
figures from that folder when none are given.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.io.atomic import atomic_write_text
from angio_deploy.io.jsonio import json_default

from .mesh_layer import DIAMETER_RAMP, MeshLayer, encode_layers
from .page import esc, fmt, kv_table, page

log = logging.getLogger(__name__)

#: The file name in a result folder.
REPORT_HTML = "report.html"
#: Figures of a result folder the page embeds, by file-name prefix, in this order.
FIGURE_PREFIXES = ("overlay_", "diameter_")

_QCA_ROWS: tuple[tuple[str, str, str, int], ...] = (
    # (report key, label, unit, digits)
    ("length_mm", "Length", "mm", 1),
    ("mld_mm", "Minimum lumen diameter (MLD)", "mm", 2),
    ("mld_position_mm", "MLD position from the start", "mm", 1),
    ("reference_diameter_at_mld_mm", "Reference diameter at the MLD", "mm", 2),
    ("percent_ds", "Diameter stenosis", "%", 1),
    ("percent_as", "Area stenosis", "%", 1),
)
_QCA_SKIP = {"branch", "lesions", "method", "foreshortening"}


@cache
def _asset(name: str) -> str:
    """A text file shipped with this package (the viewer and the vendored three.js)."""
    text = (Path(__file__).parent / name).read_text(encoding="utf-8")
    if "</script" in text.lower():  # would end the inline <script> early
        raise RuntimeError(f"{name} cannot be inlined: it contains </script")
    return text


def _data_uri(name: str, data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        mime = "image/png"
    elif data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    else:
        raise ValueError(f"image {name!r} is neither PNG nor JPEG")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _script_json(obj: Any) -> str:
    """JSON for a <script type="application/json"> block: no '<' can end the block."""
    return json.dumps(obj, separators=(",", ":"), default=json_default).replace("<", "\\u003c")


def view_cameras(report: Mapping[str, Any], centre_mm: np.ndarray) -> list[dict[str, Any]]:
    """For each view with a projection matrix: where to put the 3D view's eye so that the
    vessel looks as in that angiogram -- ``direction`` (unit, world, from ``centre_mm``
    towards the eye) and ``up`` (unit, world: towards image row 0).

    The eye sits on the ray through the centre, on the side from which the image's column
    axis points to the screen's right: angiograms are displayed as seen from the detector
    side (patient's left on the right in an AP view), so the eye is usually opposite the
    X-ray source, and the view is never a mirror image of the overlay.
    """
    out = []
    c = np.append(np.asarray(centre_mm, dtype=np.float64), 1.0)
    for v in report.get("views") or []:
        g = _mapping(v.get("geometry_used") or v.get("geometry"))
        try:
            P = np.asarray(g["projection_matrix"], dtype=np.float64).reshape(3, 4)
            source = -np.linalg.solve(P[:, :3], P[:, 3])
        except (KeyError, TypeError, ValueError, np.linalg.LinAlgError):
            continue
        ray = source - c[:3]
        w = P[2] @ c
        if not (np.linalg.norm(ray) > 0 and abs(w) > 0):
            continue
        f = ray / np.linalg.norm(ray)
        # Gradients of the image coordinates (column u, row v) at the centre, across the ray.
        du, dv = ((P[k, :3] - (P[k] @ c / w) * P[2, :3]) / w for k in (0, 1))
        du, dv = du - (du @ f) * f, dv - (dv @ f) * f
        if not (np.linalg.norm(du) > 0 and np.linalg.norm(dv) > 0):
            continue
        up = -dv / np.linalg.norm(dv)
        eye = f if np.cross(-f, up) @ du > 0 else -f  # screen right = forward x up
        out.append(
            {"name": str(v.get("name", len(out))), "direction": eye.tolist(), "up": up.tolist()}
        )
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _warnings(report: Mapping[str, Any]) -> str:
    ws = [str(w) for w in report.get("warnings") or []]
    if not ws:
        return '<h2 id="warnings">Warnings</h2><p class="none">None.</p>'
    items = "".join(f"<li>{esc(w)}</li>" for w in ws)
    return f'<h2 id="warnings">Warnings ({len(ws)})</h2><ul class="warnings">{items}</ul>'


def _drawable(meshes: Sequence[MeshLayer]) -> tuple[list[MeshLayer], list[str]]:
    """The layers the view can draw, and the names of those left out (non-finite vertices)."""
    ok = [np.isfinite(np.asarray(m.vertices, dtype=np.float64)).all() for m in meshes]
    return [m for m, k in zip(meshes, ok, strict=True) if k], [
        m.name for m, k in zip(meshes, ok, strict=True) if not k
    ]


def _viewer(all_meshes: Sequence[MeshLayer], report: Mapping[str, Any]) -> str:
    meshes, left_out = _drawable(all_meshes)
    note = ""
    if left_out:
        note = (
            '<p class="warnings">Not shown (vertices that are not finite numbers): '
            f"{esc(', '.join(left_out))}.</p>"
        )
    if not meshes:
        return f'<h2 id="view3d">3D lumen</h2>{note}<p class="none">No mesh in this result.</p>'
    data = encode_layers(meshes)
    centre = np.mean([np.asarray(m.vertices, dtype=np.float64).mean(axis=0) for m in meshes], 0)
    data["views"] = view_cameras(report, centre)
    rng = data["diameter_range_mm"]
    legend = ""
    if rng is not None:
        stops = ", ".join(f"{c} {100 * p:.0f}%" for p, c in DIAMETER_RAMP)
        legend = (
            '<div class="legend">Lumen diameter: '
            f"<span>{fmt(rng[0], 2, 'mm')}</span>"
            f'<span class="ramp" style="background: linear-gradient(to right, {stops})"></span>'
            f"<span>{fmt(rng[1], 2, 'mm')}</span></div>"
        )
    n_faces = sum(len(m.faces) for m in meshes)
    return (
        '<h2 id="view3d">3D lumen</h2>'
        '<p class="sub noprint">Drag to rotate, scroll or pinch to zoom, right-drag to pan. '
        f"World coordinates in mm (LPS). {len(meshes)} mesh(es), {n_faces} triangles.</p>{note}"
        '<div id="viewer"></div>'
        '<div class="viewer-bar noprint"><span id="viewer-buttons"></span>'
        '<span id="viewer-layers"></span></div>'
        f"{legend}"
        f'<script type="application/json" id="angio-mesh-data">{_script_json(data)}</script>'
    )


def _qca(report: Mapping[str, Any]) -> str:
    qca = report.get("qca") or {}
    branches = [b for b in qca.get("branches") or [] if isinstance(b, Mapping)]
    parts = ['<h2 id="qca">3D quantitative coronary analysis</h2>']
    if not branches:
        parts.append('<p class="none">No QCA in this report.</p>')
    else:
        names = [esc(b.get("branch", k + 1)) for k, b in enumerate(branches)]
        head = "<tr><th></th>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
        rows = []
        for key, label, unit, digits in _QCA_ROWS:
            if any(key in b for b in branches):
                cells = "".join(
                    f'<td class="num">{fmt(b.get(key), digits, unit)}</td>' for b in branches
                )
                rows.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
        if any(isinstance(b.get("reference_diameter_mm"), Mapping) for b in branches):
            cells = "".join(
                f'<td class="num">{fmt(rd.get("proximal"), 2)} / {fmt(rd.get("distal"), 2)} mm</td>'
                for rd in (_mapping(b.get("reference_diameter_mm")) for b in branches)
            )
            rows.append(f"<tr><th>Reference diameter, proximal / distal</th>{cells}</tr>")
        known = {k for k, *_ in _QCA_ROWS} | _QCA_SKIP | {"reference_diameter_mm"}
        extra: list[str] = []
        for b in branches:  # fields added later (side branches): shown as they come
            extra += [k for k in b if k not in known and k not in extra]
        for key in extra:
            sub = sorted({s for b in branches if isinstance(b.get(key), Mapping) for s in b[key]})
            for s in sub or [None]:
                label = key if s is None else f"{key}: {s}"

                def val(b, key=key, s=s):
                    v = b.get(key)
                    return v.get(s) if s is not None and isinstance(v, Mapping) else v

                cells = "".join(f'<td class="num">{fmt(val(b), 2)}</td>' for b in branches)
                rows.append(f"<tr><th>{esc(label.replace('_', ' '))}</th>{cells}</tr>")
        views = [str(v.get("name", k)) for k, v in enumerate(report.get("views") or [])]
        if any(b.get("foreshortening") for b in branches):
            label = "Foreshortening (projected / 3D length), view " + " / ".join(views)
            cells = "".join(
                f'<td class="num">{fmt(b.get("foreshortening"), 2)}</td>' for b in branches
            )
            rows.append(f"<tr><th>{esc(label)}</th>{cells}</tr>")
        parts.append(f"<table>{head}{''.join(rows)}</table>")
        for b, name in zip(branches, names, strict=True):
            lesions = [les for les in b.get("lesions") or [] if isinstance(les, Mapping)]
            parts.append(f"<h3>Lesions, {name}</h3>")
            if not lesions:
                parts.append(
                    '<p class="none">No lesion (nowhere more than 20 % below the reference).</p>'
                )
                continue
            cols = (
                ("start_mm", "start (mm)", 1),
                ("end_mm", "end (mm)", 1),
                ("length_mm", "length (mm)", 1),
                ("mld_mm", "MLD (mm)", 2),
                ("mld_position_mm", "MLD at (mm)", 1),
                ("reference_diameter_mm", "reference (mm)", 2),
                ("percent_ds", "%DS", 1),
                ("percent_as", "%AS", 1),
            )
            head = "<tr><th>#</th>" + "".join(f"<th>{esc(c[1])}</th>" for c in cols) + "</tr>"
            body = "".join(
                f'<tr><td class="num">{k + 1}</td>'
                + "".join(f'<td class="num">{fmt(les.get(c[0]), c[2])}</td>' for c in cols)
                + "</tr>"
                for k, les in enumerate(lesions)
            )
            parts.append(f"<table>{head}{body}</table>")
        methods = {b.get("method") for b in branches if b.get("method")}
        for m in sorted(methods):
            parts.append(f'<p class="sub">Method: {esc(m)}.</p>')
    other = [(k, v) for k, v in qca.items() if k != "branches"]
    if other:
        parts.append(kv_table([(k.replace("_", " "), fmt(v, 2)) for k, v in other]))
    return "".join(parts)


def _figures(images: Mapping[str, bytes], prefix: str, caption) -> str:
    names = sorted(n for n in images if n.startswith(prefix))
    return "".join(
        f'<figure><img alt="{esc(n)}" src="{_data_uri(n, images[n])}">'
        f"<figcaption>{caption(n)}</figcaption></figure>"
        for n in names
    )


def _view_caption(report: Mapping[str, Any]):
    by_name = {str(v.get("name")): v for v in report.get("views") or []}

    def caption(file_name: str) -> str:
        name = file_name.removeprefix("overlay_").rsplit(".", 1)[0]
        v = by_name.get(name, {})
        g = v.get("geometry_used") or {}
        angles = ""
        if "primary_angle_deg" in g:
            angles = (
                f", primary {fmt(g.get('primary_angle_deg'), 1)}&deg;, secondary "
                f"{fmt(g.get('secondary_angle_deg'), 1)}&deg;"
            )
        image = f" ({esc(v['image'])})" if v.get("image") else ""
        return (
            f"View {esc(name)}{image}{angles}: the reprojected mesh outline (red) and the "
            "3D centreline (yellow)."
        )

    return caption


def _quality(report: Mapping[str, Any]) -> str:
    q = report.get("quality") or {}
    rows = [
        ("Reprojection Dice (per view)", fmt(q.get("reprojection_dice"), 3)),
        ("View separation", fmt(report.get("view_separation_deg"), 1, "deg")),
        ("Centreline length", fmt(q.get("centreline_length_mm"), 1, "mm")),
    ]
    r = q.get("radius_mm") or {}
    if r:
        rows.append(("Radius, min / max", f"{fmt(r.get('min'), 2)} / {fmt(r.get('max'), 2)} mm"))
    u = q.get("position_uncertainty_95_mm") or {}
    if u:
        rows.append(
            (
                "3D position bound (95 %), median / max",
                f"{fmt(u.get('median'), 2)} / {fmt(u.get('max'), 2)} mm",
            )
        )
    if "low_confidence_rings" in q:
        lc = q.get("low_confidence_rings") or []
        rows.append(("Low-confidence rings", esc(", ".join(map(str, lc))) if lc else "none"))
    ref = q.get("refinement") or {}
    if ref:
        text = "applied" if ref.get("applied") else "not applied"
        if ref.get("reason"):
            text += f": {ref['reason']}"
        rows.append(("Geometry refinement", esc(text)))
    sr = report.get("surface_refinement") or {}
    if sr:
        text = esc("applied" if sr.get("applied") else f"not applied: {sr.get('reason', '')}")
        disp = sr.get("displacement_mm") or {}
        if disp:
            text += (
                f" (moved the surface {fmt(disp.get('mean'), 3)} mm on average,"
                f" {fmt(disp.get('max'), 3)} mm at most)"
            )
        rows.append(("Surface refinement", text))
    return '<h2 id="quality">Quality</h2>' + kv_table(rows)


def _views(report: Mapping[str, Any]) -> str:
    views = report.get("views") or []
    if not views:
        return ""
    cols = (
        ("primary_angle_deg", "primary (deg)", 1),
        ("secondary_angle_deg", "secondary (deg)", 1),
        ("sid_mm", "SID (mm)", 1),
        ("sod_mm", "SOD (mm)", 1),
        ("pixel_spacing_mm", "pixel spacing (mm)", 3),
    )
    head = (
        "<tr><th>view</th><th>image</th><th>frame</th>"
        + "".join(f"<th>{esc(c[1])}</th>" for c in cols)
        + "<th>source of the values</th></tr>"
    )
    body = []
    for v in views:
        g = v.get("geometry_used") or v.get("geometry") or {}
        prov = g.get("provenance") or {}
        src = "; ".join(f"{k}: {s}" for k, s in prov.items()) if isinstance(prov, Mapping) else prov
        body.append(
            f"<tr><td>{esc(v.get('name', ''))}</td><td>{esc(v.get('image', ''))}</td>"
            f'<td class="num">{fmt(v.get("frame"))}</td>'
            + "".join(f'<td class="num">{fmt(g.get(c[0]), c[2])}</td>' for c in cols)
            + f"<td><small>{esc(src)}</small></td></tr>"
        )
    return f'<h2 id="geometry">Geometry used</h2><table>{head}{"".join(body)}</table>'


def _provenance(report: Mapping[str, Any]) -> str:
    rows = [(f"version: {k}", fmt(v)) for k, v in (report.get("versions") or {}).items()]
    b = report.get("backend") or {}
    models = []
    if b.get("model"):
        models.append(b)
    sr = b.get("surface_refinement") or {}
    models += [m for m in sr.values() if isinstance(m, Mapping) and m.get("model")]
    rows.append(("native kernels", fmt(b.get("kernels"))))
    stages = report.get("stages") or {}
    if stages:
        rows.append(
            ("stages run", esc(", ".join(k.replace("_", " ") for k, on in stages.items() if on)))
        )
    parts = ['<h2 id="provenance">Provenance</h2>', kv_table(rows)]
    if models:
        head = (
            "<tr><th>model</th><th>runtime</th><th>provider</th><th>sha256</th><th>size</th></tr>"
        )
        body = "".join(
            f"<tr><td>{esc(m.get('model'))}"
            + (f" ({esc(m['segmenter'])})" if m.get("segmenter") else "")
            + f"</td><td>{esc(m.get('backend', ''))} {esc(m.get('onnxruntime', ''))}</td>"
            f"<td>{esc(m.get('provider', ''))}</td>"
            f"<td><code>{esc(str(m.get('sha256', ''))[:16])}</code></td>"
            f'<td class="num">{fmt((m.get("size_bytes") or 0) / 1e6, 1, "MB")}</td></tr>'
            for m in models
        )
        parts.append(f"<h3>Models</h3><table>{head}{body}</table>")
    t = report.get("timings_s") or {}
    if t:
        order = sorted(t, key=lambda k: (k == "total", k))
        body = "".join(
            f'<tr><th>{esc(k)}</th><td class="num">{fmt(t[k], 3)}</td></tr>' for k in order
        )
        parts.append(f"<h3>Timings (s)</h3><table>{body}</table>")
    return "".join(parts)


def render_report_html(
    report: Mapping[str, Any],
    meshes: Sequence[MeshLayer] = (),
    images: Mapping[str, bytes] | None = None,
) -> str:
    """The report page of one case as an HTML string.

    ``report``: the report.json document (missing sections are left out); ``meshes``: the
    layers of the 3D view (world mm), coloured on one diameter scale; ``images``: figure
    file name -> PNG/JPEG bytes; ``overlay_*`` and ``diameter_*`` are shown. Every string
    from the report is escaped.
    """
    images = dict(images or {})
    title = f"angio-deploy: {report.get('id') or report.get('case') or 'case'}"
    caption = _view_caption(report)
    overlays = _figures(images, "overlay_", caption)
    plots = _figures(
        images,
        "diameter_",
        lambda n: (
            "Diameter (black), reference (blue dashed), "
            "lesions (red band), MLD (circle) along the arc."
        ),
    )
    version = (report.get("versions") or {}).get("angio_deploy", "")
    head = (
        f"<h1>{esc(report.get('id') or 'Case')}</h1>"
        f'<p class="sub">{esc(report.get("case", ""))} &middot; angio-deploy {esc(version)}'
        f" &middot; {esc(report.get('format', ''))}</p>"
    )
    body = [
        head,
        _warnings(report),
        _viewer(meshes, report),
        _qca(report),
        plots,
        '<h2 id="overlays">Overlays</h2>'
        + (f'<div class="grid2">{overlays}</div>' if overlays else '<p class="none">None.</p>'),
        _quality(report),
        _views(report),
        _provenance(report),
        '<h2 id="report-json">report.json</h2><details><summary>the whole report</summary>'
        f"<pre>{esc(json.dumps(report, indent=2, sort_keys=True, default=json_default))}</pre>"
        "</details>",
    ]
    scripts = ""
    if _drawable(meshes)[0]:
        # The three.js subset as a classic script (it sets globalThis.AngioThree), then the
        # viewer as a module, which runs after the document is parsed.
        scripts = (
            f"<script>{_asset('vendor/three-subset.min.js')}</script>"
            f'<script type="module">{_asset("viewer.js")}</script>'
        )
    style = (
        "<style>#viewer { height: 520px; background: #1f2933; "
        "position: relative; overflow: hidden; } #viewer canvas { display: block; } "
        ".viewer-failed { color: #eee; padding: 16px; } .viewer-bar { margin: 6px 0; } "
        ".viewer-bar button { margin-right: 6px; } .viewer-bar label { margin-left: 12px; } "
        ".legend { display: flex; align-items: center; gap: 8px; margin: 4px 0; } "
        ".ramp { display: inline-block; width: 240px; height: 12px; border: 1px solid #999; }"
        "</style>"
    )
    return page(title, "\n".join(body) + scripts, head=style)


def figures_in(out_dir: str | Path) -> dict[str, bytes]:
    """The figures of a result folder the page embeds (overlay_*.png, diameter_*.png)."""
    out = {}
    for p in sorted(Path(out_dir).glob("*.png")):
        if p.name.startswith(FIGURE_PREFIXES):
            out[p.name] = p.read_bytes()
    return out


def write_report_html(
    out_dir: str | Path,
    report: Mapping[str, Any],
    meshes: Sequence[MeshLayer] = (),
    images: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` atomically and return its path; ``images`` defaults to
    the folder's own figures (:func:`figures_in`)."""
    out_dir = Path(out_dir)
    if images is None:
        images = figures_in(out_dir)
    path = atomic_write_text(out_dir / REPORT_HTML, render_report_html(report, meshes, images))
    log.debug("wrote %s (%d bytes)", path, path.stat().st_size)
    return path
