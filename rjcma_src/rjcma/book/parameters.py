"""The notebooks' parameters: one cell tagged ``parameters`` per notebook, ``name = literal`` lines whose names are
config fields; the runner gives each the value the profile has (papermill injects them after that cell)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Iterable

from rjcma.config import Config, leaf_fields
from rjcma.errors import RjcmaError


def parameters_cells(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]


def _assignment(stmt: ast.stmt, path: Path) -> tuple[str, ast.expr]:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return stmt.target.id, stmt.value
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    raise RjcmaError(f"{path}: parameters cell line {stmt.lineno}: only `name = literal` assignments are allowed")


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and literal values of the (single) ``parameters`` cell; RjcmaError if it breaks the rules."""
    import nbformat  # the book extra (optional dependency)

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    idx = parameters_cells(nb)
    if len(idx) != 1:
        raise RjcmaError(f"{path}: needs exactly one cell tagged 'parameters', found {len(idx)}")
    try:
        tree = ast.parse(nb.cells[idx[0]].source)
    except SyntaxError as e:
        raise RjcmaError(f"{path}: parameters cell line {e.lineno}: {e.msg}") from None
    out: dict[str, Any] = {}
    for stmt in tree.body:
        name, value = _assignment(stmt, path)
        try:
            out[name] = ast.literal_eval(value)
        except ValueError:
            raise RjcmaError(
                f"{path}: parameters cell line {stmt.lineno}: `{name}` must be a literal (number, string, "
                "bool, list...); derive other values in the next cell"
            ) from None
    return out


def parameter_values(cfg: Config, names: Iterable[str], source: str = "notebook") -> dict[str, Any]:
    """The config's value for each parameter name (bare config field names only)."""
    lf = leaf_fields()
    out: dict[str, Any] = {}
    for name in names:
        if "." in name or name not in lf:
            raise RjcmaError(
                f"{source}: parameter {name!r} is not a config field; rename it to one of "
                "`rjcma info --config` (bare name) or derive it in the next cell"
            )
        section, fname = lf[name]
        value = cfg.profile if section == "profile" else getattr(getattr(cfg, section), fname)
        out[name] = list(value) if isinstance(value, (list, tuple)) else value
    return out


def _literal(value: Any) -> str:
    """A parameter value as a Python literal, strings in double quotes (as the notebooks write them)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def merge_injected(nb: Any) -> bool:
    """One parameters cell on the page: papermill's injected values written into the notebook's own cell (its
    comments kept), and papermill's cell removed. Returns True when the notebook had an injected cell.

    A reader then sees each parameter once, with the value this page ran with and what it means; the downloaded
    notebook runs the same way."""
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    own = parameters_cells(nb)
    if len(injected) != 1 or len(own) != 1:
        return False
    values = {}
    for stmt in ast.parse(nb.cells[injected[0]].source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
    cell = nb.cells[own[0]]
    lines = cell.source.splitlines()
    for stmt in ast.parse(cell.source).body:
        name, value = _assignment(stmt, Path("notebook"))
        if name in values and value.lineno == value.end_lineno:
            row = lines[value.lineno - 1]
            lines[value.lineno - 1] = row[: value.col_offset] + _literal(values.pop(name)) + row[value.end_col_offset:]
    lines += [f"{name} = {_literal(v)}" for name, v in values.items()]  # a value the cell did not assign
    cell.source = "\n".join(lines)
    del nb.cells[injected[0]]
    return True
