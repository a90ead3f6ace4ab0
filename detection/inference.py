"""The only Django module that talks to the `ml` engine.

It loads the detector once per worker process (lazily, so after django-q2 forked the worker),
runs it on a stored file, and maps its frozen dataclasses onto unsaved ORM rows. Views and
serializers never import this module's heavy half: the web process only sniffs media types.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ml.errors import CheckpointError, MediaError
from ml.media import sniff_media_type as _sniff_media_type
from ml.results import AnalysisResult

from .models import Analysis, AnalysisFace, AnalysisFrame

__all__ = [
    "CheckpointError",
    "MediaError",
    "SNIFF_BYTES",
    "FrameRows",
    "analyze",
    "get_detector",
    "result_fields",
    "result_rows",
    "sniff_media_type",
]

logger = logging.getLogger(__name__)

# How many leading bytes `sniff_media_type` wants to see.
SNIFF_BYTES = 64

_lock = threading.Lock()
_detectors: dict[tuple[int, str | None], object] = {}


def sniff_media_type(head: bytes) -> str | None:
    """Analysis.MediaType value for a file's first bytes, or None when unsupported."""
    return _sniff_media_type(head)


def get_detector():
    """This process's detector for the configured checkpoint, loaded on first use."""
    path = settings.DEEPFAKE_MODEL_PATH
    key = (os.getpid(), str(path) if path else None)
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            from ml import load_detector  # torch is imported here, never in the web process

            logger.info("loading detector from %s", path or "the default checkpoint")
            detector = load_detector(path)
            _detectors[key] = detector
    return detector


def analyze(path: str | Path, *, progress: Callable[[float], None] | None = None) -> AnalysisResult:
    """Run the detector on a stored file. Raises MediaError for a file it cannot analyse."""
    return get_detector().analyze(
        path,
        max_frames=settings.DETECTION_MAX_FRAMES,
        max_faces=settings.DETECTION_MAX_FACES,
        explain=settings.DETECTION_EXPLAIN,
        progress=progress,
    )


def result_fields(result: AnalysisResult) -> dict:
    """Analysis field values from a detector result."""
    return {
        "media_type": result.media_type,
        "verdict": result.verdict,
        "fake_probability": result.fake_probability,
        "threshold": result.threshold,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "width": result.width,
        "height": result.height,
        "duration": result.duration,
        "frame_count": result.frame_count,
        "frames_analysed": len(result.frames),
        "faces_count": result.faces_count,
        "timings": {stage: round(seconds, 4) for stage, seconds in result.timings.items()},
    }


@dataclass
class FrameRows:
    """An unsaved frame, its unsaved faces, and the heatmap PNG (or None) of each face."""

    frame: AnalysisFrame
    faces: list[AnalysisFace]
    heatmaps: list[bytes | None]


def result_rows(analysis: Analysis, result: AnalysisResult) -> list[FrameRows]:
    heatmaps = {(e.frame_index, e.face_index): e.png for e in result.explanations}
    rows = []
    for frame_result in result.frames:
        frame = AnalysisFrame(
            analysis=analysis,
            index=frame_result.index,
            time=frame_result.time,
            fake_probability=frame_result.fake_probability,
        )
        faces = [
            AnalysisFace(
                frame=frame,
                index=face_index,
                x=face.box.x,
                y=face.box.y,
                w=face.box.w,
                h=face.box.h,
                fake_probability=face.fake_probability,
            )
            for face_index, face in enumerate(frame_result.faces)
        ]
        pngs = [heatmaps.get((frame_result.index, i)) for i in range(len(faces))]
        rows.append(FrameRows(frame=frame, faces=faces, heatmaps=pngs))
    return rows
