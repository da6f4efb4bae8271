"""Code-shape rules of the ``flowint`` package, checked on its source with ``ast``.

* no class spans more than 300 lines and no function or method more than 60, docstrings aside;
* the modules of ``flowint`` import one another without a cycle;
* nothing in ``flowint/pde/`` takes a gradient step (``.backward(``, ``optimizer.step(``): the
  solvers hand their losses to the Trainer, which owns the optimisation.

The package is read from disk, not imported, so a rule broken in one module cannot hide behind
an import error in another.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60


def _package_dir() -> Path:
    spec = importlib.util.find_spec("flowint")
    assert spec is not None and spec.origin is not None, "flowint is not importable"
    return Path(spec.origin).resolve().parent


PACKAGE_DIR = _package_dir()
PACKAGE = PACKAGE_DIR.name


def _source_files(root: Path = PACKAGE_DIR) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, line: int) -> str:
    if path.is_relative_to(PACKAGE_DIR.parent):
        path = path.relative_to(PACKAGE_DIR.parent)
    return f"{path.as_posix()}:{line}"


# --------------------------------------------------------------------------------------------
# sizes of classes and functions
# --------------------------------------------------------------------------------------------

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _docstring_lines(node: ast.AST) -> int:
    """Lines taken by the docstring of a def or class (its first statement, a string)."""
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr):
        return 0
    value = body[0].value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return 0
    return body[0].end_lineno - body[0].lineno + 1


def _code_lines(node: ast.AST) -> int:
    """Lines a def or class spans, less the docstrings of it and of the defs nested in it."""
    span = node.end_lineno - node.lineno + 1
    nested = (inner for inner in ast.walk(node) if isinstance(inner, _DEFS))
    return span - sum(_docstring_lines(inner) for inner in nested)


def _oversized(tree: ast.Module, path: Path) -> Iterator[str]:
    """``file:line kind name: n lines (limit m)`` for each def or class over its limit."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            kind, limit = "class", MAX_CLASS_LINES
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kind, limit = "function", MAX_FUNCTION_LINES
        else:
            continue
        length = _code_lines(node)
        if length > limit:
            yield f"{_where(path, node.lineno)} {kind} {node.name}: {length} lines (limit {limit})"


def test_no_oversized_class_or_function() -> None:
    offenders = [line for path in _source_files() for line in _oversized(_parse(path), path)]
    assert not offenders, (
        f"{len(offenders)} definitions over the size limits (docstrings not counted):\n"
        + "\n".join(offenders)
    )


def test_size_check_counts_code_but_not_docstrings(tmp_path: Path) -> None:
    docstring = '    """' + "\n".join(["doc"] * 50) + '"""\n'
    body = "".join(f"    x{i} = {i}\n" for i in range(59))
    short = tmp_path / "short.py"
    short.write_text("def f():\n" + docstring + body)  # 1 + 59 code lines
    assert list(_oversized(_parse(short), short)) == []
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + docstring + body + "    return 0\n")  # 61 code lines
    assert len(list(_oversized(_parse(long), long))) == 1


# --------------------------------------------------------------------------------------------
# import cycles
# --------------------------------------------------------------------------------------------


def _module_names(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """``flowint.flows`` -> ``flowint/flows/__init__.py``, ``flowint.fit`` -> ``flowint/fit.py``."""
    names = {}
    for path in _source_files(root):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, in functions too, but not under TYPE_CHECKING."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:  # the ``else:`` of ``if TYPE_CHECKING`` runs
                yield from _imports_in(stmt)
        else:
            yield from _imports(child)


def _imports_in(stmt: ast.stmt) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        yield stmt
    else:
        yield from _imports(stmt)


def _ancestors(module: str) -> set[str]:
    """The packages that are imported before ``module`` runs: ``a.b.c`` -> {a, a.b}."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _chain(module: str) -> list[str]:
    """``a.b.c`` -> [a, a.b, a.b.c]: the modules that ``import a.b.c`` runs, outermost first."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _import_targets(
    stmt: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]
) -> set[str]:
    """The package modules whose code must have run (or be running) for ``stmt`` to succeed.

    An import runs every module along the dotted path. The packages that enclose the importer
    have already started by the time the importer runs, so they count only when a *name* is
    taken from them (``from . import x`` with ``x`` defined in the ``__init__``): that name must
    exist already, which is what a cycle breaks. Submodules named by ``from P import sub`` are
    edges to the submodule itself.
    """
    enclosing = _ancestors(importer)
    targets: set[str] = set()

    def run(module: str) -> None:
        for step in _chain(module):
            if step in modules and step not in enclosing and step != importer:
                targets.add(step)

    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            run(alias.name)
        return targets

    if stmt.level:
        package = importer if is_package else importer.rpartition(".")[0]
        base_parts = package.split(".")
        if stmt.level > 1:
            base_parts = base_parts[: -(stmt.level - 1)]
        base = ".".join(base_parts + ([stmt.module] if stmt.module else []))
    else:
        base = stmt.module or ""
    run(base)
    for alias in stmt.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            run(sub)
        elif base in modules and base != importer:
            targets.add(base)  # a name from ``base``: its ``__init__`` must have defined it
    return targets


def _import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the package modules it imports (see ``_import_targets``)."""
    names = _module_names(root)
    modules = set(names)
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for stmt in _imports(_parse(path)):
            graph[name] |= _import_targets(stmt, name, is_package, modules)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first search closes, each as ``[m0, m1, ..., m0]``, without repeats."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found: dict[tuple[str, ...], list[str]] = {}

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle))
                key = tuple(cycle[start:] + cycle[:start])
                found.setdefault(key, [*key, key[0]])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return list(found.values())


def test_no_import_cycle() -> None:
    cycles = _cycles(_import_graph())
    assert not cycles, f"{len(cycles)} import cycles in {PACKAGE}:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_cycle_check_tells_reexports_from_cycles(tmp_path: Path) -> None:
    legit = _write_package(
        tmp_path / "legit",
        {
            "__init__.py": "from .a import A\nfrom . import sub\n__version__ = '1'\n",
            "a.py": "from .sub import B\nfrom .sub.c import C\nimport pkg.sub.c\n",
            "sub/__init__.py": "from .c import C\nfrom . import c\nB = 1\n",
            "sub/c.py": (
                "from typing import TYPE_CHECKING\n"
                "from .. import sub\n"  # the enclosing package: already running
                "if TYPE_CHECKING:\n    from ..a import A\n"
                "C = 1\n"
            ),
        },
    )
    assert _cycles(_import_graph(legit)) == []

    cyclic = _write_package(
        tmp_path / "cyclic",
        {
            "__init__.py": "from .a import A\n",
            "a.py": "A = 1\ndef f():\n    from .b import g\n",
            "b.py": "from . import A\n",  # a name of the parent's __init__
        },
    )
    assert _cycles(_import_graph(cyclic)) == [["pkg", "pkg.a", "pkg.b", "pkg"]]


# --------------------------------------------------------------------------------------------
# gradient steps in flowint/pde
# --------------------------------------------------------------------------------------------


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return ""


def _gradient_steps(tree: ast.Module, path: Path) -> Iterator[str]:
    """``file:line call`` for each ``x.backward(...)`` and ``<...optim...>.step(...)``."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, owner = node.func.attr, _dotted(node.func.value)
        if attr == "backward" or (attr == "step" and "optim" in owner.lower()):
            yield f"{_where(path, node.lineno)} {owner}.{attr}(...)"


def test_no_gradient_step_in_pde() -> None:
    offenders = [
        line
        for path in _source_files(PACKAGE_DIR / "pde")
        for line in _gradient_steps(_parse(path), path)
    ]
    assert not offenders, (
        f"{len(offenders)} gradient steps in {PACKAGE}/pde outside the Trainer:\n"
        + "\n".join(offenders)
    )


def test_gradient_step_scan_finds_steps(tmp_path: Path) -> None:
    path = tmp_path / "solver.py"
    path.write_text(
        "loss.backward()\nself.optimizer.step()\nopt_state.step()\nscheduler.step()\n"
        "torch.autograd.backward(loss)\n"
    )
    found = list(_gradient_steps(_parse(path), path))
    assert [line.split()[-1] for line in found] == [
        "loss.backward(...)",
        "self.optimizer.step(...)",
        "torch.autograd.backward(...)",
    ]
