"""Deepfake detection engine: faces, frames, a real/fake classifier, explanations, training.

Framework-free: nothing here imports Django. Typical use::

    from ml import load_detector
    result = load_detector().analyze("photo.jpg")
    print(result.verdict, result.fake_probability)
"""

from .detector import DEFAULT_CHECKPOINT, Detector, load_detector
from .errors import CheckpointError, MediaError, MlError, UnsupportedMediaError
from .results import AnalysisResult, Box, Explanation, FaceResult, FrameResult

__all__ = [
    "DEFAULT_CHECKPOINT",
    "AnalysisResult",
    "Box",
    "CheckpointError",
    "Detector",
    "Explanation",
    "FaceResult",
    "FrameResult",
    "MediaError",
    "MlError",
    "UnsupportedMediaError",
    "load_detector",
]
