"""Data flows one way (issue 15): no import cycle inside the runtime package, and none
between the top-level packages (runtime, training, export), counting imports at module
level and inside functions alike. Found by reading the source (AST), not by importing."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {
    "angio_deploy": REPO / "python" / "angio_deploy",
    "training": REPO / "training",
    "export": REPO / "export",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for root in ROOTS.values():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root.parent).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of the project that ``name`` imports anywhere in its source."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub" imports the submodule when there is one.
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
            targets = subs or [mod]
        for t in targets:
            while t and t not in mods:  # "import a.b.c" of a module: the deepest known
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def test_no_import_cycle_inside_the_runtime_package() -> None:
    g = _graph()
    # A package's __init__ re-exporting its own submodules is not a cycle of concepts.
    runtime = {
        m: {t for t in deps if t.startswith("angio_deploy") and not m.startswith(t + ".")}
        for m, deps in g.items()
        if m.startswith("angio_deploy")
    }
    assert _cycles(runtime) == []


def test_no_cycle_between_the_runtime_subpackages() -> None:
    # backends, models, pipeline, io, geometry, kernels, ...: a layer, not a tangle.
    sub: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        if m.startswith("angio_deploy."):
            key = ".".join(m.split(".")[:2])
            sub.setdefault(key, set()).update(
                ".".join(t.split(".")[:2]) for t in deps if t.startswith("angio_deploy.")
            )
    for k in sub:
        sub[k].discard(k)
    assert _cycles(sub) == []


def test_top_level_packages_depend_one_way() -> None:
    top: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        top.setdefault(m.split(".")[0], set()).update(t.split(".")[0] for t in deps)
    for pkg in top:
        top[pkg].discard(pkg)
    assert "training" not in top["angio_deploy"] and "export" not in top["angio_deploy"]
    assert _cycles(top) == []


def test_the_scan_finds_a_cycle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
