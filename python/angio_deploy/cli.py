"""The ``angio-deploy`` command line: a thin layer over the Python API.

Only this module prints, draws progress and picks exit codes (CASE_FORMAT.md):
0 success, 2 usage, 65 bad input data, 66 input not found, 69 backend unavailable,
70 internal error, 73 output folder refused or not writable, 141 stdout closed by the
reader. Errors print one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from ._version import __version__
from .errors import EX_OK, EX_SOFTWARE, AngioDeployError
from .synth.versions import GENERATOR_VERSION, GENERATOR_VERSIONS

PROG = "angio-deploy"


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, nd) for x in v) + "]"
    return str(v)


def _print_info(desc: dict[str, Any]) -> None:
    print(f"case        {desc['case']}" + (f"  (id {desc['id']})" if desc.get("id") else ""))
    for v in desc["views"]:
        g = v["geometry"]
        prov = g["provenance"]
        print(
            f"view {v['name']}      {v['image']}  [{v['kind']}]  {v['size'][0]} x {v['size'][1]} px"
        )
        if v["frame_count"] > 1 or v["frame"] is not None:
            print(f"  frame     {v['frame']} of {v['frame_count']} ({v['frame_selection']})")
        rows = [
            ("primary", "primary_angle_deg", "deg"),
            ("secondary", "secondary_angle_deg", "deg"),
            ("SID", "sid_mm", "mm"),
            ("SOD", "sod_mm", "mm"),
            ("spacing", "pixel_spacing_mm", "mm/px"),
        ]
        if g["primary_angle_deg"] is None:
            print(f"  matrix    {_fmt(g['projection_matrix'], 4)}  <- {prov.get('matrix', '-')}")
        else:
            for label, key, unit in rows:
                nd = 6 if key == "pixel_spacing_mm" else 2
                print(f"  {label:<9} {_fmt(g[key], nd)} {unit}  <- {prov.get(key, '-')}")
        print(f"  source    {_fmt(g['source_mm'], 1)} mm")
        s = v["soi"]
        print(f"  SOI       start {_fmt(s['start'], 1)}  end {_fmt(s['end'], 1)}  (px [u, v])")
    print(f"separation  {desc['view_separation_deg']:.1f} deg")
    for k, sb in enumerate(desc["side_branches"]):
        print(
            f"branch {k}    a {_fmt(sb[0]['start'], 1)} -> {_fmt(sb[0]['end'], 1)}; "
            f"b {_fmt(sb[1]['start'], 1)} -> {_fmt(sb[1]['end'], 1)}"
        )
    for w in desc["warnings"]:
        print(f"warning     {w}")


def _cmd_info(args: argparse.Namespace) -> int:
    from .io.case import load_case

    desc = load_case(args.case_dir).describe()
    if args.json:
        print(json.dumps(desc, indent=2))
    else:
        _print_info(desc)
    return EX_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from .errors import EX_USAGE, InputError
    from .synth.engine import check_output_dir, synthesise

    if args.count < 0:
        print(f"{PROG}: error: --count must be >= 0, got {args.count}", file=sys.stderr)
        return EX_USAGE
    if args.seed < 0:
        print(f"{PROG}: error: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return EX_USAGE
    try:
        check_output_dir(args.out_dir, overwrite=args.overwrite)
    except InputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EX_USAGE

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{done}/{total} cases", end="" if done < total else "\n", file=sys.stderr)

    paths = synthesise(
        args.out_dir,
        args.count,
        args.seed,
        overwrite=args.overwrite,
        size=args.size,
        workers=args.workers,
        progress=progress,
        version=args.generator_version,
    )
    if not args.quiet:
        print(f"wrote {len(paths)} cases under {args.out_dir}")
    return EX_OK


def _reconstructor(args: argparse.Namespace):
    """The Reconstructor that the shared reconstruction options ask for."""
    from .api import Reconstructor

    return Reconstructor(
        args.segmenter,
        provider=args.provider,
        surface=False if args.no_refine else None,
        models_dir=args.models_dir,
    )


def _batch_options(args: argparse.Namespace, **more: Any):
    """BatchOptions from the shared reconstruction options, plus a command's own."""
    from .batch import BatchOptions

    return BatchOptions(
        segmenter=args.segmenter,
        provider=args.provider,
        refine_geometry=not args.no_geometry_refinement,
        refine_surface=not args.no_refine,
        models_dir=args.models_dir,
        **more,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .io.output_dir import check_output_dir

    out = Path(args.out) if args.out else Path(args.case_dir) / "out"
    # Refuse a folder we may not replace before spending the run on it.
    check_output_dir(out, case_dir=args.case_dir)

    def progress(stage: str, seconds: float) -> None:
        if args.verbose:
            print(f"{stage:<14} {1e3 * seconds:8.1f} ms", file=sys.stderr)

    rec = _reconstructor(args)
    result = rec.reconstruct(
        args.case_dir,
        refine_geometry=not args.no_geometry_refinement,
        refine_surface=not args.no_refine,
        force=args.force,
        skip_failed_branches=args.skip_failed_branches,
        progress=progress,
    )
    result.write(out)
    dice = result.report["quality"]["reprojection_dice"]
    print(
        f"wrote {out}  (reprojection Dice {dice[0]:.3f} / {dice[1]:.3f}, "
        f"{result.report['timings_s']['total']:.2f} s)"
    )
    for w in result.report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return EX_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import csv

    from .evaluate import evaluate_cases

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet:
            print(f"\r{done}/{total} {name}", end="" if done < total else "\n", file=sys.stderr)

    if args.workers or args.scheduler:
        from .evaluate import evaluate_cohort

        _quiet_dask(args)

        options = _batch_options(args)
        res = evaluate_cohort(
            args.cases_dir,
            options,
            workers=args.workers or None,
            scheduler=args.scheduler,
            true_geometry=args.true_geometry,
            out_root=args.out_root,
            limit=args.limit,
            progress=progress,
        )
    else:
        rec = _reconstructor(args)
        res = evaluate_cases(
            args.cases_dir,
            rec,
            refine_geometry=not args.no_geometry_refinement,
            refine_surface=not args.no_refine,
            true_geometry=args.true_geometry,
            out_root=args.out_root,
            limit=args.limit,
            progress=progress,
        )
    from .metrics.case import HEADLINE_METRICS

    summ = res["summary"]
    print(f"{res['n_cases']} cases, {res['failed']} failed")
    width = max(map(len, HEADLINE_METRICS))
    print(f"{'metric':<{width}} {'mean':>9} {'sd':>9} {'median':>9} {'p95':>9} {'n':>5}")
    for m in HEADLINE_METRICS:
        if m in summ:
            s = summ[m]
            print(
                f"{m:<{width}} {s['mean']:9.4f} {s['sd']:9.4f} {s['median']:9.4f} "
                f"{s['p95']:9.4f} {s['n']:5d}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"cases": res["cases"], "summary": summ}, fh, indent=2, default=float)
    if args.csv:
        keys = sorted({k for r in res["cases"] for k in r if not isinstance(r[k], (list, dict))})
        keys.sort(key=lambda k: (k != "case", k))
        with open(args.csv, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(res["cases"])
    # A case that hit a bug is recorded and the rest went on; the status still says so.
    return EX_SOFTWARE if any(r.get("exit_code") == EX_SOFTWARE for r in res["cases"]) else EX_OK


def _quiet_dask(args: argparse.Namespace) -> None:
    # Dask's own INFO lines (scheduler start, worker registration) are noise here; its
    # warnings (a worker died and was restarted) are not. --debug shows everything. Its
    # import sets its loggers' levels, so the level is set after it.
    try:
        import distributed  # noqa: F401
    except ImportError:  # run_batch says what to install
        return
    logging.getLogger("distributed").setLevel(logging.DEBUG if args.debug else logging.WARNING)


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch
    from .errors import EX_USAGE

    for flag, value, least in (("--workers", args.workers, 0), ("--threads", args.threads, 1)):
        if value is not None and value < least:
            print(f"{PROG}: error: {flag} must be >= {least}, got {value}", file=sys.stderr)
            return EX_USAGE
    _quiet_dask(args)

    def progress(done: int, total: int, record: dict[str, Any]) -> None:
        if args.quiet:
            return
        width = 30
        fill = width * done // max(total, 1)
        bar = "#" * fill + "." * (width - fill)
        end = "" if done < total else "\n"
        line = f"\r[{bar}] {done}/{total} {record['status']:<7} {record['case'][-40:]:<40}"
        print(line, end=end, file=sys.stderr, flush=True)

    options = _batch_options(
        args,
        force=args.force,
        intra_op_threads=args.threads,
        skip_failed_branches=args.skip_failed_branches,
    )
    res = run_batch(
        args.cases_dir,
        args.out_root,
        options,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=not args.redo,
        limit=args.limit,
        progress=progress,
    )
    c = res.counts
    print(
        f"{len(res.records)} cases: {c['ok']} ok, {c['failed']} failed, {c['skipped']} skipped "
        f"in {res.wall_s:.1f} s ({res.engine}); summary in {args.out_root}"
    )
    for r in res.records:
        if r["status"] == "failed":
            print(
                f"failed: {r['case']}: exit {r['exit_code']}: {r['error_type']}: {r['error']}",
                file=sys.stderr,
            )
    return res.exit_code


def _cmd_build_engines(args: argparse.Namespace) -> int:
    from .backends import SessionConfig
    from .models.prepare import prepare_models

    # The same session settings `run` uses, so the engines cached here are the ones it finds.
    cfg = SessionConfig(provider=args.provider)
    rows = prepare_models(args.models_dir, cfg)
    print(f"{'model':<12} {'provider':<28} {'load ms':>9} {'first run ms':>13} {'run ms':>8}")
    for r in rows:
        print(
            f"{r['name']:<12} {r['provider']:<28} {1e3 * r['load_s']:9.1f} "
            f"{1e3 * r['first_run_s']:13.1f} {1e3 * r['run_s']:8.1f}"
        )
    if any(r["provider"] == "TensorrtExecutionProvider" for r in rows):
        print("TensorRT engines built and cached for the pipeline's input shapes")
    else:
        print("no TensorRT on this machine: every model verified and run on ONNX Runtime")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"models": rows}, fh, indent=2)
    return EX_OK


class _DeprecatedAlias(argparse.Action):
    """A store_true flag whose old spelling still works for one release, with a notice."""

    def __init__(self, option_strings, dest, *, old: str, new: str, **kw):
        self.old, self.new = old, new
        super().__init__(option_strings, dest, nargs=0, default=False, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == self.old:
            print(
                f"{PROG}: {self.old} is deprecated and will be removed in the next release; "
                f"use {self.new}",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, True)


def _add_no_surface_refinement(p: argparse.ArgumentParser) -> None:
    # "refine" alone meant surface refinement here and geometry refinement elsewhere
    # (issue 15): the flag now says which; --no-refine stays as an alias for one release.
    p.add_argument(
        "--no-surface-refinement",
        "--no-refine",
        dest="no_refine",
        action=_DeprecatedAlias,
        old="--no-refine",
        new="--no-surface-refinement",
        help="stop after mesh initialisation (no surface refinement; "
        "--no-refine is its deprecated old name)",
    )


def _add_reconstruction_options(p: argparse.ArgumentParser, *, writes: bool = True) -> None:
    """The options every reconstructing command shares (run, evaluate, batch), in one
    place so their spelling, defaults and help cannot drift apart. ``writes``: the command
    writes results a user reads (run, batch), so --force / --skip-failed-branches apply."""
    _add_no_surface_refinement(p)
    p.add_argument(
        "--no-geometry-refinement",
        action="store_true",
        help="triangulate with the header geometry as read (no view-B refinement)",
    )
    p.add_argument(
        "--segmenter",
        choices=("network", "frangi"),
        default="network",
        help="the shipped U-Net (default) or the classical Frangi baseline",
    )
    p.add_argument(
        "--provider", default="auto", help="ONNX Runtime provider (auto, cpu, cuda, tensorrt)"
    )
    p.add_argument(
        "--models-dir",
        metavar="DIR",
        help="another model folder with a manifest.json (default: the shipped models)",
    )
    if writes:
        p.add_argument(
            "--force",
            action="store_true",
            help="write an obviously wrong result anyway (with loud warnings) instead of failing",
        )
        p.add_argument(
            "--skip-failed-branches",
            action="store_true",
            help="leave out (and report) a side branch that cannot be reconstructed, "
            "instead of failing the run",
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Two X-ray coronary angiograms in, a 3D lumen surface mesh out.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("-v", "--verbose", action="store_true", help="show progress logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="validate a case folder and show the geometry used")
    info.add_argument("case_dir", metavar="CASE_DIR")
    info.add_argument("--json", action="store_true", help="print the same as JSON")
    info.set_defaults(func=_cmd_info)

    run = sub.add_parser("run", help="reconstruct one case folder")
    run.add_argument("case_dir", metavar="CASE_DIR")
    run.add_argument("--out", metavar="DIR", help="result folder (default CASE_DIR/out)")
    _add_reconstruction_options(run)
    run.set_defaults(func=_cmd_run)

    ev = sub.add_parser("evaluate", help="reconstruct and score every case with truth/")
    ev.add_argument("cases_dir", metavar="CASES_DIR")
    _add_reconstruction_options(ev, writes=False)
    ev.add_argument(
        "--true-geometry",
        action="store_true",
        help="diagnostic: use the true view geometry from truth/meta.json, not the headers",
    )
    ev.add_argument("--csv", metavar="FILE", help="one row per case")
    ev.add_argument("--json", metavar="FILE", help='{"cases": [...], "summary": {...}}')
    ev.add_argument("--out-root", metavar="DIR", help="write outputs here, not CASE/out")
    ev.add_argument("--limit", type=int, help="only the first N cases")
    ev.add_argument("-q", "--quiet", action="store_true")
    ev_where = ev.add_mutually_exclusive_group()
    ev_where.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run on Dask with N local worker processes (default 0: one after another here)",
    )
    ev_where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on an existing Dask scheduler"
    )
    ev.set_defaults(func=_cmd_evaluate)

    ba = sub.add_parser(
        "batch",
        help="reconstruct every case folder under CASES_DIR on Dask (resumable)",
        description=(
            "Every case folder (with case.json) under CASES_DIR into OUT_ROOT/<its relative "
            "path>, on a Dask LocalCluster or an existing scheduler. Cases with a complete "
            "result are skipped. Writes summary.json and summary.csv in OUT_ROOT. Exit 0 "
            "when every case is ok or skipped, 70 when a case hit an internal error, else "
            "the failed cases' exit code (65 when they differ)."
        ),
    )
    ba.add_argument("cases_dir", metavar="CASES_DIR")
    ba.add_argument("--out-root", metavar="DIR", required=True, help="results and summary")
    ba_where = ba.add_mutually_exclusive_group()
    ba_where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: one per usable core; 0: no Dask, here)",
    )
    ba_where.add_argument(
        "--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786"
    )
    ba.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads of one case (ONNX Runtime, native core; default: cores / workers)",
    )
    ba.add_argument("--redo", action="store_true", help="reconstruct cases that have a result")
    ba.add_argument("--limit", type=int, help="only the first N cases")
    _add_reconstruction_options(ba)
    ba.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ba.set_defaults(func=_cmd_batch)

    be = sub.add_parser(
        "build-engines",
        help="prepare the shipped models for this machine (TensorRT engines on NVIDIA GPUs)",
    )
    be.add_argument(
        "--provider", default="auto", help="ONNX Runtime provider (auto, cpu, cuda, tensorrt)"
    )
    be.add_argument("--models-dir", metavar="DIR", help="another models folder (manifest.json)")
    be.add_argument("--json", metavar="FILE", help="write the per-model table as JSON")
    be.set_defaults(func=_cmd_build_engines)

    synth = sub.add_parser("synth", help="write synthetic case folders with truth")
    synth.add_argument("out_dir", metavar="OUT_DIR")
    synth.add_argument("--count", type=int, required=True, help="number of cases")
    synth.add_argument("--seed", type=int, required=True, help="seed of the first case")
    synth.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT_DIR")
    synth.add_argument("--size", type=int, choices=(512, 1024), help="force the image size")
    synth.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    synth.add_argument(
        "--generator-version",
        choices=GENERATOR_VERSIONS,
        default=GENERATOR_VERSION,
        help="generator version (default %(default)s: the test split and every published "
        "number are version 1; version 2 draws real-looking frames, docs/DATASET.md)",
    )
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    synth.set_defaults(func=_cmd_synth)
    return p


#: 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe.
EX_SIGPIPE = 141


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (
        OSError,
        ValueError,
        AttributeError,
    ):  # stdout replaced by an object without a descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``angio-deploy`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.INFO if args.verbose else logging.ERROR)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Libraries' warnings (pydicom on odd tag values, Pillow, ...) go through logging, so
    # an error is still one line on stderr; -v shows them.
    logging.captureWarnings(True)
    try:
        return int(args.func(args))
    except AngioDeployError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`angio-deploy info CASE | head`): a normal way to stop.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        _silence_stdout()
        return EX_SIGPIPE
    except Exception as exc:  # an internal bug: say so in one line
        if args.debug:
            traceback.print_exc()
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EX_SOFTWARE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
