"""Deepfake detection engine: faces, frames, a real/fake classifier, explanations, training.

Framework-free: nothing here imports Django. Typical use::

    from ml import load_detector
    result = load_detector().analyze("photo.jpg")
    print(result.verdict, result.fake_probability)

The detector (and with it torch) is imported on first use, so light modules such as
`ml.media` (content sniffing) can be imported by a web process without loading torch.
"""

from .errors import CheckpointError, MediaError, MlError, UnsupportedMediaError
from .results import AnalysisResult, Box, FaceResult, FrameResult, TrackResult

_LAZY = {"DEFAULT_CHECKPOINT", "Detector", "load_detector"}

__all__ = [
    "DEFAULT_CHECKPOINT",
    "AnalysisResult",
    "Box",
    "CheckpointError",
    "Detector",
    "DetectorOptions",
    "FaceResult",
    "FrameResult",
    "MediaError",
    "MlError",
    "TrackResult",
    "UnsupportedMediaError",
    "load_detector",
]


def __getattr__(name: str):
    if name == "DetectorOptions":
        from .options import DetectorOptions

        return DetectorOptions
    if name in _LAZY:
        from . import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'ml' has no attribute {name!r}")
