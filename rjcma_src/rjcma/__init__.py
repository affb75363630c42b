"""rjcma: Recursive Joint Cross-Modal Attention (audio + visual + text) for valence/arousal on Aff-Wild2.

A reproducibility package for Praveen & Alam, "Recursive Joint Cross-Modal Attention for Multimodal Fusion in
Dimensional Emotion Recognition" (CVPRW 2024).

``rjcma.predict("clip.mp4")`` scores a video of one's own and returns its rows as a DataFrame
(:func:`rjcma.scoring.predict`; the model is found as ``rjcma predict`` finds it).
"""

__version__ = "0.1.0"

import importlib  # noqa: E402

from rjcma.config import Config, load_config  # noqa: E402,F401
from rjcma.errors import RjcmaError  # noqa: E402,F401


def __getattr__(name: str):
    """``rjcma.predict``, looked up on first use, so ``import rjcma`` and ``rjcma --help`` stay free of torch. This
    is the package's one arrow from its face up to the apps, named by string on purpose (every layer reads
    ``rjcma.__version__``, so an import statement here would be a circle); ``tests/test_layers.py`` allows exactly
    this one."""
    if name == "predict":
        return importlib.import_module("rjcma.scoring").predict
    raise AttributeError(f"module 'rjcma' has no attribute {name!r}")
