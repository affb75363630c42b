"""How an exercise's answer is judged: every check recomputes the answer with the package and returns a
:class:`Verdict`, which a notebook shows as one line (✓ or ✗ with what was expected). A missing answer (``None``)
and a wrong one fail; a check never raises on them, so a notebook run top to bottom (the book, a student's "Run
all") goes on past an exercise not done yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Verdict:
    """The outcome of an exercise's check; true when the answer is right."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.message}"


def passed(message: str) -> Verdict:
    return Verdict(True, message)


def failed(message: str) -> Verdict:
    return Verdict(False, message)


def _close(got: Any, want: Any, tol: float) -> bool:
    try:
        return bool(np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), atol=tol, rtol=0))
    except (TypeError, ValueError):
        return False


def _shown(v: Any) -> str:
    """A value as the verdict writes it: plain numbers (no numpy type names), six significant digits."""
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_shown(x) for x in v)
        return f"({inner})" if isinstance(v, tuple) else f"[{inner}]"
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return f"{v:.6g}"
    return repr(v)


def check_value(name: str, got: Any, want: Any, tol: float = 1e-6, why: str = "") -> Verdict:
    """Compare an answer with the package's own computation (numbers within ``tol``; strings and flags equal)."""
    if got is None:
        return failed(f"{name}: no answer yet; put it into the cell above and run this check again")
    if isinstance(want, (str, bool)) or (isinstance(want, tuple) and any(isinstance(w, str) for w in want)):
        same = got == want
    else:
        same = np.shape(got) == np.shape(want) and _close(got, want, tol)
    if not same:
        return failed(f"{name}: got {_shown(got)}, expected {_shown(want)}" + (f" ({why})" if why else ""))
    return passed(f"{name} = {_shown(got)}" + (f"; {why}" if why else ""))
