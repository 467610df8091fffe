"""No private name crosses a module boundary (issue 15). Found by reading the source (AST),
not by importing, over the runtime package, training, export, tools and benchmarks.

The rule:

- A private name (one leading underscore; dunders such as ``__version__`` are public) is
  used only in the module that defines it: ``from m import _x`` and ``m._x`` on an
  imported module or name are violations, whatever package they are in.
- A private *module or package* (``angio_deploy._native``, ``angio_deploy._version``,
  ``angio_deploy.kernels._numpy``) is private to the package that contains it: modules
  inside that package may import it (``kernels`` dispatches to ``_native`` and its numpy
  twins in ``_numpy``; the twins import each other), nobody outside may. So no allow-list
  is needed: the compiled core is reached only through ``angio_deploy.kernels``.

A name must be made public in its one home (or moved there) before another module uses it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {
    "angio_deploy": REPO / "python" / "angio_deploy",
    "training": REPO / "training",
    "export": REPO / "export",
    "tools": REPO / "tools",
    "benchmarks": REPO / "benchmarks",
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules(roots: dict[str, Path]) -> dict[str, Path]:
    """Dotted name -> source file of every module under ``roots`` (stubs of compiled
    extensions, ``*.pyi``, count as modules; they are not scanned)."""
    mods: dict[str, Path] = {}
    for top, root in roots.items():
        for path in sorted(root.rglob("*.py*")):
            if path.suffix not in (".py", ".pyi"):
                continue
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods.setdefault(".".join(parts), path)
    return mods


def _private_module_outside(target: str, importer: str) -> str | None:
    """The first private component of the dotted module path ``target`` whose package
    does not contain ``importer``, or None."""
    parts = target.split(".")
    for k, part in enumerate(parts):
        if _is_private(part):
            package = ".".join(parts[:k])
            if not (importer == package or importer.startswith(package + ".")):
                return ".".join(parts[: k + 1])
    return None


def violations(name: str, path: Path, mods: dict[str, Path]) -> list[str]:
    """Private names that module ``name`` (source ``path``) takes from other modules."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> dotted path of what it was imported as

    def where(node: ast.AST) -> str:
        return f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{node.lineno}"

    def check_path(dotted: str, node: ast.AST, text: str) -> None:
        bad = _private_module_outside(dotted, name)
        if bad:
            found.append(f"{where(node)}: {text} (private module {bad})")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                check_path(a.name, node, f"import {a.name}")
                # "import a.b" binds a; "import a.b as m" binds m to a.b.
                local = a.asname or a.name.split(".")[0]
                bound[local] = a.name if a.asname else local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            check_path(mod, node, f"from {mod} import ...")
            for a in node.names:
                full = f"{mod}.{a.name}"
                bound[a.asname or a.name] = full
                if not _is_private(a.name):
                    continue
                if full in mods:  # a private submodule: its package's business
                    check_path(full, node, f"from {mod} import {a.name}")
                elif mod != name:
                    found.append(f"{where(node)}: from {mod} import {a.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            full = f"{bound[node.value.id]}.{node.attr}"
            if full in mods:
                check_path(full, node, f"{node.value.id}.{node.attr}")
            else:
                found.append(f"{where(node)}: {node.value.id}.{node.attr} ({full})")
    return found


def _scan(roots: dict[str, Path]) -> list[str]:
    mods = _modules(roots)
    out: list[str] = []
    for name, path in sorted(mods.items()):
        if path.suffix == ".py":
            out += violations(name, path, mods)
    return out


def test_no_private_name_is_imported_from_another_module() -> None:
    assert _scan(ROOTS) == []


def test_the_scan_finds_each_kind_of_violation(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "_impl").mkdir(parents=True)
    (pkg / "sub").mkdir()
    (pkg / "other").mkdir()
    files = {
        "__init__.py": "from ._version import __version__\nfrom . import _impl\n",
        "_version.py": "__version__ = '1'\n",
        "_native.pyi": "def f() -> None: ...\n",
        "_impl/__init__.py": "from .a import helper\n",
        "_impl/a.py": "def helper(): ...\ndef _hidden(): ...\n",
        "_impl/b.py": "from .a import _hidden\n",  # private name, same package: still bad
        "core.py": "from pkg import _native\nimport pkg.sub.util as u\nu._cache\n",
        "sub/__init__.py": "",
        "sub/util.py": "_cache = {}\nfrom pkg._impl.a import helper\n",  # inside pkg: fine
        "sub/_priv.py": "x = 1\n",
        "other/__init__.py": "",
        "other/use.py": "from pkg.sub._priv import x\nfrom pkg.sub import _priv\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text, encoding="utf-8")
    found = _scan({"pkg": pkg})
    # Compare the reasons (after "path:line: "), one per violation.
    reasons = sorted(v.split(": ", 1)[1] for v in found)
    assert reasons == [
        "from pkg._impl.a import _hidden",
        "from pkg.sub import _priv (private module pkg.sub._priv)",
        "from pkg.sub._priv import ... (private module pkg.sub._priv)",
        "u._cache (pkg.sub.util._cache)",
    ], found


def test_a_tool_outside_the_package_may_not_reach_its_private_modules(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "_native.pyi").write_text("", encoding="utf-8")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "t.py").write_text("from pkg import _native\nimport pkg._native\n", "utf-8")
    found = _scan({"pkg": pkg, "tools": tools})
    assert len(found) == 2 and all("private module pkg._native" in v for v in found)
