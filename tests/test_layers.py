"""The package's architecture, checked: every import inside ``paperlib`` (module level, inside
functions and under ``TYPE_CHECKING`` alike, read with :mod:`ast`) points to the same or a
lower layer, no import circle exists, each module stays small and each sub-package says in its
docstring what lives there.

The layer of a module is the sub-package it lives in (``paperlib.engine.samples`` -> engine)
or, for a module directly under ``paperlib/``, the table :data:`MODULE_LAYER` (keyed by the
module's own name, so the same table serves the flat and the foldered layout). A new module
must be added to the table: the test names the ones it does not know.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paperlib"

#: Layers from the bottom up; an import may only point to the same or a lower layer.
#: ``base`` holds the few names every layer shares and stays directly under ``paperlib/``;
#: ``api`` is ``paperlib/__init__.py`` (the public API re-exports from every layer).
LAYERS: tuple[str, ...] = ("base", "data", "engine", "method", "serving", "repro", "api")

#: Layer of every module (by its own name). Sub-packages are named after their layer.
MODULE_LAYER: dict[str, str] = {
    # base: shared by every layer
    "spec": "base", "version": "base", "progress": "base",
    # data and streams
    "datasets": "data", "dataset_registry": "data", "streams": "data",
    # engine: retrainer, sample sources, weight scopes, plugins, accounting, models, and the
    # bandit policies the sample source and weight scope of the paper's method draw from
    "models": "engine", "accounting": "engine", "metrics": "engine", "plugins": "engine",
    "determinism": "engine", "rewards": "engine", "finite": "engine",
    "losses": "engine", "samples": "engine", "weights": "engine", "retrain": "engine",
    "bandits": "engine", "bandit_policy": "engine", "exp3": "engine",
    "stochastic_bandits": "engine",
    # method: regularisers and the named methods
    "importance": "method", "sni": "method", "baseline_regularizers": "method",
    "regularizers": "method", "methods": "method", "rivals": "method", "distill": "method",
    # serving: the run configuration, the serving simulation, the results store
    "config": "serving", "runner": "serving", "store": "serving", "provenance": "serving",
    # reproduction: grids, figures, tables, notebooks, benchmarks, the command line
    "gridrun": "repro", "notebook_setup": "repro", "grids": "repro", "experiments": "repro",
    "labels": "repro", "manifest": "repro", "plots": "repro", "budget_plots": "repro",
    "report": "repro", "claims": "repro", "reprocheck": "repro",
    "notebooks": "repro", "nbclean": "repro", "sweep": "repro", "sweep_cli": "repro",
    "pool": "repro", "plan": "repro", "plan_count": "repro", "plan_passes": "repro",
    "calibrate": "repro", "gpu_check": "repro", "bundle": "repro",
    "reference": "repro", "bench": "repro", "bench_targets": "repro", "bench_rivals": "repro",
    "bench_table": "repro",
    "cli": "repro",
}

MAX_LINES = 520  # "no module over about 500 lines"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    """``paperlib`` -> api; ``paperlib.<layer>[.x]`` -> that layer; ``paperlib.x`` (flat) ->
    :data:`MODULE_LAYER` ``[x]``. KeyError for an undeclared module."""
    parts = module.split(".")
    if parts == ["paperlib"]:
        return "api"
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    if len(parts) == 2:
        return MODULE_LAYER[parts[1]]
    raise KeyError(module)


def imports_of(path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """``(imported paperlib module, line)`` for every import statement anywhere in the file.
    ``from paperlib.x import y`` counts as ``paperlib.x.y`` when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "paperlib":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "paperlib":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            if subs:
                yield from ((s, node.lineno) for s in subs)
            if len(subs) < len(node.names):
                yield target, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods)
    return {m: {dst: line for dst, line in imports_of(p, known) if dst != m}
            for m, p in mods.items()}


def _declared(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return False
    return True


def test_every_module_has_a_layer() -> None:
    unknown = [m for m in modules() if not _declared(m)]
    assert not unknown, f"add these modules to MODULE_LAYER in {Path(__file__).name}: {unknown}"


def test_folder_agrees_with_the_table() -> None:
    """A module moved into a sub-package sits in the folder of its declared layer."""
    wrong = [m for m in modules() if len(m.split(".")) == 3 and m.split(".")[2] in MODULE_LAYER
             and MODULE_LAYER[m.split(".")[2]] != m.split(".")[1]]
    assert not wrong


def test_imports_point_down() -> None:
    graph = import_graph()
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    declared = {m for m in graph if _declared(m)}  # undeclared: test_every_module_has_a_layer
    for src, deps in graph.items():
        for dst, line in deps.items():
            if src not in declared or (dst in graph and dst not in declared):
                continue
            if dst not in graph:
                bad.append(f"{src}:{line} imports {dst}, which does not exist")
            elif layer_of(src) != "api" and rank[layer_of(dst)] > rank[layer_of(src)]:
                bad.append(f"{src} ({layer_of(src)}):{line} imports {dst} ({layer_of(dst)})")
    assert not bad, "imports pointing up the layers:\n" + "\n".join(bad)


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), plus self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    graph = {m: deps for m, deps in import_graph().items() if m != "paperlib"}
    found = cycles(graph)
    assert not found, f"import circles: {found}"


def test_cycle_finder_finds_a_circle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_relative_and_submodule_imports_are_resolved(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "paperlib"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "__init__.py").write_text('"""Engine."""\n')
    (pkg / "engine" / "a.py").write_text(
        "from . import b\nfrom .b import thing\nfrom paperlib import engine\n"
        "def f():\n    from paperlib.method import regs\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    known = {"paperlib.engine.b", "paperlib.method.regs", "paperlib.engine"}
    found = sorted(imports_of(pkg / "engine" / "a.py", known))
    assert found == [("paperlib.engine", 3), ("paperlib.engine.b", 1), ("paperlib.engine.b", 2),
                     ("paperlib.method.regs", 5)]
    assert layer_of("paperlib.engine.samples") == "engine" and layer_of("paperlib.engine.samples") == "engine"


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_small(name: str) -> None:
    lines = modules()[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it into cohesive modules"


def test_subpackages_say_what_lives_there() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree)
        assert doc and len(doc.split()) >= 5, f"{init}: one docstring saying what lives here"
        assert init.parent.name in LAYERS, f"sub-package {init.parent.name} is not a layer"
