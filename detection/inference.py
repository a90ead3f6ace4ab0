"""The only Django module that talks to the `ml` engine.

It loads the detector once per worker process (lazily, so after django-q2 forked the worker),
runs it on a stored file, and maps its frozen dataclasses onto unsaved ORM rows. Views and
serializers never import this module's heavy half: the web process only sniffs media types
(`ml.sniff`, which imports neither cv2 nor numpy nor torch).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from ml import sniff
from ml.errors import CheckpointError, MediaError, MediaMissingError, MediaTooLargeError
from ml.results import AnalysisResult

from .models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack

__all__ = [
    "CheckpointError",
    "MediaError",
    "MediaMissingError",
    "MediaTooLargeError",
    "SNIFF_BYTES",
    "ResultRows",
    "analyze",
    "detector_options",
    "get_detector",
    "result_fields",
    "result_rows",
    "sniff_content_type",
    "sniff_media_type",
    "sniff_refusal",
]

logger = logging.getLogger(__name__)

# How many leading bytes `sniff_media_type` wants to see.
SNIFF_BYTES = sniff.HEAD_BYTES

_lock = threading.Lock()
_detectors: dict[tuple[int, str | None], object] = {}


def sniff_media_type(head: bytes) -> str | None:
    """Analysis.MediaType value for a file's first bytes, or None when unsupported."""
    return sniff.sniff_media_type(head)


def sniff_content_type(head: bytes) -> str:
    """The MIME type to serve a stored upload with, from its content."""
    return sniff.content_type(head)


def sniff_refusal(head: bytes) -> str | None:
    """Why a recognised but unsupported format (HEIC, animated AVIF) is refused, or None."""
    return sniff.refusal(head)


def get_detector():
    """This process's detector for the configured checkpoint, loaded on first use."""
    path = settings.DEEPFAKE_MODEL_PATH
    key = (os.getpid(), str(path) if path else None)
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            from ml import load_detector  # the models are loaded here, never in the web process

            logger.info("loading detector from %s", path or "the default checkpoint")
            synthetic = settings.DEEPFAKE_SYNTHETIC_MODEL_PATH or None
            detector = load_detector(path, synthetic=synthetic, runtime=settings.DETECTION_RUNTIME)
            logger.info("detector %s loaded, faces scored by %s", detector.version, detector.runtimes)
            _detectors[key] = detector
    return detector


def worker_threads_set(threads: int) -> None:
    """Size OpenCV's, ONNX Runtime's and (where the detector loads it) torch's thread pools for
    this worker process (before any work)."""
    from ml.detector import threads_set

    threads_set(threads)


def warm_up() -> None:
    """Load the detector and run each stage once on a made-up frame (`Detector.warm_up`), so
    that the first upload pays for no lazy loading (BlazeFace, the Haar cascade, PyAV) or
    first-call costs."""
    import av  # noqa: F401  (the decoder of videos with B-frames, ml/video_skipping.py)

    get_detector().warm_up(detector_options())


def detector_options():
    """The analysis options from the settings (defaults are ml.options.DetectorOptions')."""
    from ml.options import DetectorOptions

    return DetectorOptions(
        max_frames=settings.DETECTION_MAX_FRAMES,
        max_faces=settings.DETECTION_MAX_FACES,
        max_photo_faces=settings.DETECTION_MAX_PHOTO_FACES,
        heatmaps=settings.DETECTION_HEATMAPS,
        limits=media_limits(),
    )


def media_limits():
    """The decoder's pixel budget (ml.media.MediaLimits) from the settings."""
    from ml.media import MediaLimits  # cv2 and numpy: the worker's half only

    return MediaLimits(
        max_pixels=settings.DETECTION_MAX_PIXELS,
        frame_pixels=settings.DETECTION_FRAME_PIXELS,
        max_animation_pixels=settings.DETECTION_MAX_ANIMATION_PIXELS,
    )


def analyze(path: str | Path, *, progress: Callable[[float], None] | None = None) -> AnalysisResult:
    """Run the detector on a stored file. Raises MediaError for a file it cannot analyse."""
    return get_detector().analyze(path, detector_options(), progress=progress)


def result_fields(result: AnalysisResult) -> dict:
    """Analysis field values from a detector result. The media type is the engine's: an
    animated GIF or WebP, an "image" when uploaded (its first bytes cannot tell), is a video."""
    return {
        "media_type": result.media_type,
        "verdict": result.verdict,
        "fake_probability": result.fake_probability,
        "threshold": result.threshold,
        "threshold_real": result.threshold_real,
        "fake_kind": result.fake_kind,
        "uncertain_reason": result.uncertain_reason,
        "synthetic_probability": result.synthetic_probability,
        "synthetic_threshold": result.synthetic_threshold,
        "synthetic_model_version": result.synthetic_model_version,
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
class ResultRows:
    """Complete, unsaved rows for a result, with the bytes of each file still to be stored:
    `files` maps (row, field name) to (file name, content)."""

    frames: list[AnalysisFrame]
    faces: list[tuple[AnalysisFrame, AnalysisFace]]
    tracks: list[AnalysisTrack]
    files: list[tuple[object, str, str, bytes]] = field(default_factory=list)  # row, field, name, content


def result_rows(analysis: Analysis, result: AnalysisResult) -> ResultRows:
    rows = ResultRows(frames=[], faces=[], tracks=[])
    if result.thumbnail_jpeg:
        rows.files.append((analysis, "thumbnail", "thumbnail.jpg", result.thumbnail_jpeg))
    for frame_result in result.frames:
        frame = AnalysisFrame(
            analysis=analysis,
            index=frame_result.index,
            time=frame_result.time,
            fake_probability=frame_result.fake_probability,
            faces_left_out=frame_result.faces_left_out,
            boxes_rejected=frame_result.boxes_rejected,
        )
        rows.frames.append(frame)
        if frame_result.image_jpeg:
            rows.files.append((frame, "image", f"{frame_result.index}.jpg", frame_result.image_jpeg))
        for face_index, face_result in enumerate(frame_result.faces):
            face = AnalysisFace(
                frame=frame,
                index=face_index,
                x=face_result.box.x,
                y=face_result.box.y,
                w=face_result.box.w,
                h=face_result.box.h,
                fake_probability=face_result.fake_probability,
                track=face_result.track,
                synthetic_probability=face_result.synthetic_probability,
                crop=face_result.crop.as_list() if face_result.crop is not None else None,
                crop_angle=face_result.crop_angle,
                heatmap_focus=face_result.heatmap_focus or "",
            )
            rows.faces.append((frame, face))
            if face_result.heatmap_png:
                rows.files.append((face, "heatmap", f"{frame_result.index}-{face_index}.png", face_result.heatmap_png))
    rows.tracks = [
        AnalysisTrack(
            analysis=analysis,
            number=track.id,
            fake_probability=track.fake_probability,
            frames=track.frames,
            first_time=track.first_time,
            last_time=track.last_time,
            counted=track.counted,
            synthetic_probability=track.synthetic_probability,
        )
        for track in result.tracks
    ]
    return rows
