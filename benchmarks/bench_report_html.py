"""What report.html costs a run: the bytes it adds to the result folder and the time it adds
to writing the result, on the example case (issue 14 targets: <= 5 MB, <= 50 ms).

Run from the repository root (the package installed):

    .venv/bin/python benchmarks/bench_report_html.py [--repeats N]

Reconstructs examples/example_case once with the shipped models, then prints a markdown
table:

* the size of report.html and of the rest of the result folder;
* the first write_report_html of a fresh process that has imported what a run imports
  (what `angio-deploy run` pays: importing angio_deploy.report_html, reading the vendored
  three.js, rendering, writing, fsync);
* the median over N repeats of render_report_html alone and of write_report_html;
* the median over N repeats of the whole result write (Reconstruction.write) with and
  without report.html, and their difference -- the time report.html adds to a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "example_case"


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, minimum) wall time of fn() in ms over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    from angio_deploy.api import Reconstructor
    from angio_deploy.topology import N_AROUND

    work = Path(tempfile.mkdtemp(prefix="bench-report-html-"))
    try:
        case = Path(shutil.copytree(EXAMPLE, work / "case"))
        rec = Reconstructor().reconstruct(case)
        out = work / "out"
        rec.write(out)  # the run's own write, report.html included
        html = out / "report.html"
        size = html.stat().st_size
        rest = sum(p.stat().st_size for p in out.iterdir() if p.name != "report.html")

        # Cold: what a fresh `angio-deploy run` process pays -- importing the package (the
        # hook imports it when it runs), reading the vendored script, rendering, writing.
        cold_dir = work / "cold"
        shutil.copytree(out, cold_dir)
        (cold_dir / "report.html").unlink()
        code = f"""
import json, sys, time
import numpy as np
import angio_deploy.api, angio_deploy.cli, angio_deploy.pipeline.outputs  # loaded in a run
from angio_deploy.io.mesh_io import read_ply
d = sys.argv[1]
v, f, _ = read_ply(d + "/mesh.ply")
r = np.loadtxt(d + "/centreline.csv", delimiter=",", skiprows=1)[:, 4]
rep = json.load(open(d + "/report.json"))
t0, c0 = time.perf_counter(), time.process_time()
from angio_deploy.report_html import MeshLayer, write_report_html
write_report_html(d, rep, [MeshLayer("main", v, f, np.repeat(2 * r, {N_AROUND}))])
print(1e3 * (time.perf_counter() - t0), 1e3 * (time.process_time() - c0))
"""
        # Bytecode on, cached in a temporary prefix (an installed wheel has its .pyc files;
        # a PYTHONDONTWRITEBYTECODE environment would compile every module every run). The
        # first run writes the cache and is not counted.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        firsts = [
            [
                float(x)
                for x in subprocess.run(
                    [sys.executable, "-c", code, str(cold_dir)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout.split()
            ]
            for _ in range(6)
        ][1:]
        first_wall, first_cpu = ([f[k] for f in firsts] for k in (0, 1))

        import angio_deploy.report_html as report_html
        from angio_deploy.report_html import MeshLayer, render_report_html, write_report_html
        from angio_deploy.report_html.case_page import figures_in

        res = rec.result
        layers = [
            MeshLayer("main", res.vertices, res.faces, np.repeat(2.0 * res.radius_mm, N_AROUND))
        ]
        images = figures_in(out)
        render_ms = _median_ms(lambda: render_report_html(rec.report, layers, images), args.repeats)
        write_ms = _median_ms(lambda: write_report_html(out, rec.report, layers), args.repeats)

        # With and without report.html alternately, so that the shared machine's drifting
        # load hits both alike; the added time is the median of the paired differences.
        real = report_html.write_report_html
        times: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        try:
            for k in range(args.repeats):
                for on in (True, False) if k % 2 else (False, True):
                    report_html.write_report_html = real if on else (lambda *a, **kw: None)
                    t0, c0 = time.perf_counter(), time.process_time()
                    rec.write(out)  # the hook imports write_report_html when it runs
                    times[on].append(1e3 * (time.perf_counter() - t0))
                    cpu[on].append(1e3 * (time.process_time() - c0))
        finally:
            report_html.write_report_html = real
        with_ms = (statistics.median(times[True]), min(times[True]))
        without_ms = (statistics.median(times[False]), min(times[False]))
        added = [a - b for a, b in zip(times[True], times[False], strict=True)]
        added_cpu = [a - b for a, b in zip(cpu[True], cpu[False], strict=True)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs (the machine is shared)")
    print()
    print("| quantity | median | min |")
    print("|---|---:|---:|")
    print(f"| report.html size | {size / 1e6:.2f} MB ({size:,} bytes) | |")
    print(f"| rest of the result folder | {rest / 1e6:.2f} MB | |")
    print(
        "| import + first write_report_html, fresh process, .pyc cached (5 runs), wall "
        f"| {statistics.median(first_wall):.1f} ms | {min(first_wall):.1f} ms |"
    )
    print(
        "| the same, CPU time of the process "
        f"| {statistics.median(first_cpu):.1f} ms | {min(first_cpu):.1f} ms |"
    )
    rows = (
        ("render_report_html", render_ms),
        ("write_report_html (render, write, fsync)", write_ms),
        ("result write with report.html", with_ms),
        ("result write without report.html", without_ms),
    )
    for name, (med, low) in rows:
        print(f"| {name}, {args.repeats} runs | {med:.1f} ms | {low:.1f} ms |")
    print(
        f"| added to a run (paired differences), wall | {statistics.median(added):.1f} ms "
        f"| {min(added):.1f} ms |"
    )
    print(
        f"| added to a run (paired differences), CPU | {statistics.median(added_cpu):.1f} ms "
        f"| {min(added_cpu):.1f} ms |"
    )


if __name__ == "__main__":
    main()
