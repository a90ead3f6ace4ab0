"""What the detector returns: frozen dataclasses of plain Python values.

These types are the seam between `ml` and its callers (the CLI, the Django worker): they hold
no tensors, arrays or file handles, so they can be logged, compared, turned into JSON and
stored. A result is built once, complete: each face carries its own track (person) number and
its heatmap; each sampled frame can carry a web-sized JPEG of itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEDIA_IMAGE = "image"
MEDIA_VIDEO = "video"
MEDIA_TYPES = (MEDIA_IMAGE, MEDIA_VIDEO)

VERDICT_REAL = "real"
VERDICT_UNCERTAIN = "uncertain"
VERDICT_FAKE = "fake"
VERDICT_NO_FACE = "no_face"
VERDICTS = (VERDICT_REAL, VERDICT_UNCERTAIN, VERDICT_FAKE, VERDICT_NO_FACE)

# What kind of fake a "fake" verdict found (empty for the other verdicts).
KIND_FACE_SWAP = "face_swap"
KIND_AI_GENERATED = "ai_generated"
FAKE_KINDS = (KIND_FACE_SWAP, KIND_AI_GENERATED)

# Why a video's verdict is "uncertain" though its score would say more (ml/caution.py); ""
# where the score's own band decided.
UNCERTAIN_FEW_FRAMES = "few_frames"  # "real" from a person seen in too few frames to count
UNCERTAIN_FAKE_MOMENTS = "fake_moments"  # "real" on average, with faces in the fake band
UNCERTAIN_AI_VIDEO = "ai_generated_video"  # the AI-generated model alone, on a video
UNCERTAIN_AI_HINT = "ai_generated_hint"  # "real", while the AI-generated model is half-way to its threshold
UNCERTAIN_REASONS = (UNCERTAIN_FEW_FRAMES, UNCERTAIN_FAKE_MOMENTS, UNCERTAIN_AI_VIDEO, UNCERTAIN_AI_HINT)


@dataclass(frozen=True)
class Box:
    """A face rectangle in the original frame's pixel coordinates."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class FaceResult:
    box: Box
    fake_probability: float
    track: int = 0  # the person (face track) this face belongs to, numbered from 1
    synthetic_probability: float | None = None  # wholly generated face (None: not scored, see ml/detector.py)
    heatmap_png: bytes | None = field(default=None, repr=False, compare=False)  # Grad-CAM overlay
    heatmap_focus: str | None = None  # where that heatmap is brightest, in words (ml.heatmaps.heat_focus)
    # The region the face-swap model saw (the box scaled by its margin and moved by its shift,
    # clamped to the frame), which its heatmap covers; None where it is not known. For a tilted
    # face (ml/faces.py TurnedBox) the region is upright in the frame turned `crop_angle`
    # degrees counter-clockwise about the region's centre (ml.faces.turned_crop_region), and
    # not clamped: where it reaches beyond the frame the model saw the frame's edges repeated.
    crop: Box | None = None
    crop_angle: float = 0.0


@dataclass(frozen=True)
class FrameResult:
    """One sampled frame (an image is a single frame with index 0 and time 0.0)."""

    index: int
    time: float
    faces: tuple[FaceResult, ...]
    faces_left_out: int = 0  # confirmed faces beyond the per-frame cap, not scored
    boxes_rejected: int = 0  # Haar boxes not confirmed as faces, too blurred to judge, or a second box on a face: not scored
    image_jpeg: bytes | None = field(default=None, repr=False, compare=False)  # web-sized copy

    @property
    def fake_probability(self) -> float | None:
        """The frame's score: its most suspicious face, or None when it has no face."""
        if not self.faces:
            return None
        return max(face.fake_probability for face in self.faces)


@dataclass(frozen=True)
class TrackResult:
    """One person: the faces linked across sampled frames (see ml/tracks.py)."""

    id: int
    fake_probability: float  # mean over its faces
    frames: int  # sampled frames it appears in
    first_time: float
    last_time: float
    counted: bool  # long enough to decide the verdict
    synthetic_probability: float | None = None  # the lowest over its scored faces (ml/tracks.py)


@dataclass(frozen=True)
class AnalysisResult:
    media_type: str  # one of MEDIA_TYPES
    verdict: str  # one of VERDICTS
    fake_probability: float | None  # None when verdict is no_face
    threshold: float  # at or above: fake
    threshold_real: float  # below: real; between the two: uncertain
    frames: tuple[FrameResult, ...]
    tracks: tuple[TrackResult, ...]
    model_name: str
    model_version: str
    timings: dict[str, float]  # seconds per stage: decode, faces, classify, explain
    width: int
    height: int
    frame_count: int  # frames in the whole file (1 for an image)
    duration: float  # seconds (0.0 for an image)
    fake_kind: str = ""  # one of FAKE_KINDS when the verdict is fake, else ""
    uncertain_reason: str = ""  # one of UNCERTAIN_REASONS when held at uncertain (ml/caution.py)
    synthetic_probability: float | None = None  # the most suspicious counted person's
    synthetic_threshold: float | None = None  # at or above: "fake: AI-generated face"
    synthetic_model_version: str = ""
    thumbnail_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def faces_count(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def to_json_dict(self) -> dict:
        """A JSON-ready dict (images and heatmaps left out)."""
        return {
            "media_type": self.media_type,
            "verdict": self.verdict,
            "fake_probability": self.fake_probability,
            "threshold": self.threshold,
            "threshold_real": self.threshold_real,
            "fake_kind": self.fake_kind,
            "uncertain_reason": self.uncertain_reason,
            "synthetic_probability": self.synthetic_probability,
            "synthetic_threshold": self.synthetic_threshold,
            "synthetic_model_version": self.synthetic_model_version,
            "frames": [
                {
                    "index": frame.index,
                    "time": frame.time,
                    "fake_probability": frame.fake_probability,
                    "faces_left_out": frame.faces_left_out,
                    "boxes_rejected": frame.boxes_rejected,
                    "faces": [
                        {
                            "box": face.box.as_list(),
                            "crop": face.crop.as_list() if face.crop is not None else None,
                            "crop_angle": face.crop_angle,
                            "fake_probability": face.fake_probability,
                            "synthetic_probability": face.synthetic_probability,
                            "track": face.track,
                            "heatmap_focus": face.heatmap_focus,
                        }
                        for face in frame.faces
                    ],
                }
                for frame in self.frames
            ],
            "tracks": [
                {
                    "id": t.id,
                    "fake_probability": t.fake_probability,
                    "frames": t.frames,
                    "first_time": t.first_time,
                    "last_time": t.last_time,
                    "counted": t.counted,
                    "synthetic_probability": t.synthetic_probability,
                }
                for t in self.tracks
            ],
            "model_name": self.model_name,
            "model_version": self.model_version,
            "timings": self.timings,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "duration": self.duration,
            "faces_count": self.faces_count,
        }
