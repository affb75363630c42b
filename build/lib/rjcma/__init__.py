"""rjcma: Recursive Joint Cross-Modal Attention (audio + visual + text) for valence/arousal on Aff-Wild2.

A reproducibility package for Praveen & Alam, "Recursive Joint Cross-Modal Attention for Multimodal Fusion in
Dimensional Emotion Recognition" (CVPRW 2024).
"""

__version__ = "0.1.0"

from rjcma.config import Config, load_config  # noqa: E402,F401
from rjcma.errors import RjcmaError  # noqa: E402,F401
