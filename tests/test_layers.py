"""The package's layers hold: every import between its modules points down (or stays inside one layer), and no
import path leads from a module back to itself.

    base      config, runtime, io, errors, metrics, layout, paper_numbers, fusions, assets (and the package itself)
      ↑
    data      models        two siblings: they never import each other (models take tensors; the data layer
      ↑         ↑           serves any trainer)
    encoders                the frozen frame encoders: weights (released or stand-ins, whose pretraining draws with
      ↑                     the demo renderer), VGGish's front end, strided encoding; so it uses both
    preprocess              a video to per-frame inputs (the route), the feature store
      ↑
    train                   end-to-end training builds its encoders from the encoders layer
      ↑
    apps      cli, scoring, predict_outputs, book, figures, results_tables, report, lessons, reference, bundle

The graph is read from the source with ``ast``: every ``import`` and ``from … import`` of a package module, at the top
of a file or inside a function, ``if TYPE_CHECKING`` blocks included (a type-only arrow is still an arrow). Third-party
packages are not part of the graph. A module that is in none of the layers below fails the test until it is placed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rjcma

PACKAGE = Path(rjcma.__file__).parent

# top-level module or subpackage -> layer (a subpackage's modules all sit in its layer)
LAYER_OF = {
    "__init__": "base", "config": "base", "io": "base", "errors": "base", "metrics": "base", "layout": "base",
    "paper_numbers": "base", "fusions": "base", "assets": "base", "runtime": "base",
    "data": "data", "models": "models",
    "encoders": "encoders",
    "preprocess": "preprocess",
    "train": "train",
    "cli": "apps", "scoring": "apps", "predict_outputs": "apps", "book": "apps", "figures": "apps",
    "results_tables": "apps", "report": "apps", "lessons": "apps", "reference": "apps", "bundle": "apps",
}
RANK = {"base": 0, "data": 1, "models": 1, "encoders": 2, "preprocess": 3, "train": 4, "apps": 5}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> str | None:
    """The layer of ``rjcma.<top>...``; None for a module not placed in :data:`LAYER_OF`."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYER_OF.get(top)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, module: str, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a package module in ``path`` (anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rjcma"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "rjcma":
                continue
            for a in node.names:  # `from rjcma.data import synth` imports the module rjcma.data.synth
                sub = f"{target}.{a.name}"
                out.append((node.lineno, sub if sub in known else target))
    return out


def arrow_allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if a == b:
        return True
    return RANK[b] < RANK[a]  # data and models share a rank: neither is below the other


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in package_modules() if layer(m) is None)
    assert not unplaced, f"modules in no layer (place them in LAYER_OF of tests/test_layers.py): {unplaced}"


def test_imports_follow_the_layers():
    mods = package_modules()
    known = set(mods)
    bad = []
    for src, path in mods.items():
        if layer(src) is None:
            continue  # reported by test_every_module_has_a_layer
        for line, dst in imported_modules(path, src, known):
            if layer(dst) is None:
                continue
            if not arrow_allowed(src, dst):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {src} ({layer(src)}) imports {dst} "
                           f"({layer(dst)})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in the file)."""
    mods = package_modules()
    known = set(mods)
    return {src: {dst for _, dst in imported_modules(path, src, known) if dst in known and dst != src}
            for src, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (each holds a circle of imports)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_circle_of_imports():
    found = cycles(import_graph())
    assert not found, "modules that import each other, directly or around a circle: " + "; ".join(map(str, found))


# ---- the checker itself -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("rjcma.models.backbones", "rjcma.config", True),
        ("rjcma.data.store", "rjcma.io", True),
        ("rjcma.encoders.standins", "rjcma.data.synth.render", True),
        ("rjcma.encoders.standins", "rjcma.models.backbones", True),
        ("rjcma.train.loop", "rjcma.encoders.build", True),
        ("rjcma.preprocess.route", "rjcma.encoders.encode", True),
        ("rjcma.encoders.logmel", "rjcma.preprocess.audio", False),  # the front end sits below the decoding
        ("rjcma.models.backbones", "rjcma.encoders.build", False),
        ("rjcma.scoring", "rjcma.train.loop", True),
        ("rjcma.data.synth.mux", "rjcma.data.synth.truth", True),
        ("rjcma.models.backbones", "rjcma.data.synth", False),  # siblings
        ("rjcma.data.dataset", "rjcma.models.rjcma", False),
        ("rjcma.data.store", "rjcma.preprocess.text", False),  # upwards
        ("rjcma.config", "rjcma.models.rjcma", False),
        ("rjcma.preprocess.pipeline", "rjcma.cli.train", False),
        ("rjcma.train.cv", "rjcma.results_tables", False),
    ],
)
def test_arrow_rule(src, dst, ok):
    assert arrow_allowed(src, dst) is ok


def test_cycle_finder():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walk_sees_local_relative_and_type_checking_imports(tmp_path):
    """A function-local import, a relative import and one under TYPE_CHECKING all count as arrows."""
    pkg = tmp_path / "rjcma"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    f = pkg / "data" / "x.py"
    f.write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "if TYPE_CHECKING:\n"
        "    from rjcma.models.rjcma import RJCMAModel\n"
        "def g():\n"
        "    from ..preprocess import text\n"
        "    import rjcma.train.loop\n"
    )
    got = {m for _, m in imported_modules(f, "rjcma.data.x", {"rjcma.preprocess.text"})}
    assert got == {"rjcma.models.rjcma", "rjcma.preprocess.text", "rjcma.train.loop"}
    assert not any(arrow_allowed("rjcma.data.x", m) for m in got)


# The one arrow named by string: the package's face hands on ``rjcma.predict`` (the apps' one-call API) on first use
# (PEP 562), so ``import rjcma`` stays light. Any other module that names a package module by string must follow the
# layers like an import statement does.
NAMED_BY_STRING_ALLOWED = {("rjcma", "rjcma.scoring")}


def modules_named_by_string(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every ``import_module("rjcma....")`` call with a literal name in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
                and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("rjcma")):
            out.append((node.lineno, str(node.args[0].value)))
    return out


def test_modules_named_by_string_follow_the_layers_too():
    bad, seen = [], set()
    for src, path in package_modules().items():
        for line, dst in modules_named_by_string(path):
            seen.add((src, dst))
            if (src, dst) not in NAMED_BY_STRING_ALLOWED and layer(dst) and not arrow_allowed(src, dst):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {src} names {dst} ({layer(dst)})")
    assert not bad, "modules named by string against the layers:\n" + "\n".join(bad)
    assert NAMED_BY_STRING_ALLOWED <= seen, "the allowed exception is gone: remove it from NAMED_BY_STRING_ALLOWED"
