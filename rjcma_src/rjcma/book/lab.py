"""``rjcma lab``: JupyterLab on ``notebooks/`` with this environment's kernel, the package importable and every
kernel working in the repository root (as under ``rjcma book``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rjcma.book.execute import ensure_kernel
from rjcma.book.paths import repo_root
from rjcma.errors import RjcmaError

LAB_STARTUP = """# written by `rjcma lab`: kernels started from JupyterLab work in the repository root,
# as under `rjcma book` (papermill), so the notebooks' relative paths (data/demo_corpus, results/...) resolve.
import os as _os

if _os.environ.get("RJCMA_ROOT"):
    _os.chdir(_os.environ["RJCMA_ROOT"])
"""


def lab(extra: list[str] | None = None) -> int:
    """Start JupyterLab on notebooks/ with this environment's kernel, the package importable and cwd = repo root."""
    root = repo_root()
    ensure_kernel()  # also puts this environment's share/jupyter first on JUPYTER_PATH
    ipydir = root / "_build" / "ipython"
    startup = ipydir / "profile_default" / "startup" / "00-rjcma-root.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text(LAB_STARTUP)
    env = dict(os.environ, RJCMA_ROOT=str(root), IPYTHONDIR=str(ipydir))
    env.pop("MPLBACKEND", None)  # inline figures
    exe = Path(sys.executable).parent / "jupyter-lab"
    if not exe.exists():
        raise RjcmaError(f"JupyterLab not installed; run: {sys.executable} -m pip install jupyterlab")
    cmd = [str(exe), f"--ServerApp.root_dir={root}", "notebooks/", *(extra or [])]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in cmd:
        cmd.append("--allow-root")  # containers and CI often run as root
    print("rjcma lab:", " ".join(cmd), flush=True)
    os.chdir(root)
    os.execve(str(exe), cmd, env)
    return 0  # pragma: no cover - execve does not return
