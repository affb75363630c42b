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
    """``rjcma.predict``, looked up on first use: ``import rjcma`` and ``rjcma --help`` stay free of torch. The
    package root is the bottom layer and every layer reads ``rjcma.__version__``; naming the apps-layer function by
    its module's name, not by an import statement, keeps the layers' arrows pointing down."""
    if name == "predict":
        return importlib.import_module("rjcma.scoring").predict
    raise AttributeError(f"module 'rjcma' has no attribute {name!r}")
