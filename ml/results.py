"""What the detector returns: frozen dataclasses of plain Python values.

These types are the seam between `ml` and its callers (the CLI, the Django worker): they hold
no tensors, arrays or file handles, so they can be logged, compared, turned into JSON with
`dataclasses.asdict`, and stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MEDIA_IMAGE = "image"
MEDIA_VIDEO = "video"

VERDICT_REAL = "real"
VERDICT_FAKE = "fake"
VERDICT_NO_FACE = "no_face"


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


@dataclass(frozen=True)
class FrameResult:
    """One sampled frame (an image is a single frame with index 0 and time 0.0)."""

    index: int
    time: float
    faces: tuple[FaceResult, ...]

    @property
    def fake_probability(self) -> float | None:
        """The frame's score: its most suspicious face, or None when it has no face."""
        if not self.faces:
            return None
        return max(face.fake_probability for face in self.faces)


@dataclass(frozen=True)
class Explanation:
    """A Grad-CAM heatmap for one face, as a PNG overlay on the face crop."""

    frame_index: int
    face_index: int
    fake_probability: float
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class AnalysisResult:
    media_type: str  # MEDIA_IMAGE or MEDIA_VIDEO
    verdict: str  # VERDICT_REAL, VERDICT_FAKE or VERDICT_NO_FACE
    fake_probability: float | None  # None when verdict is no_face
    threshold: float
    frames: tuple[FrameResult, ...]
    model_name: str
    model_version: str
    timings: dict[str, float]  # seconds per stage: decode, faces, classify, explain
    width: int
    height: int
    frame_count: int  # frames in the whole file (1 for an image)
    duration: float  # seconds (0.0 for an image)
    explanations: tuple[Explanation, ...] = ()

    @property
    def faces_count(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def to_json_dict(self) -> dict:
        """A JSON-ready dict (heatmap PNGs left out)."""
        data = asdict(self)
        data.pop("explanations")
        for frame, frame_data in zip(self.frames, data["frames"]):
            frame_data["fake_probability"] = frame.fake_probability
            for face_data in frame_data["faces"]:
                box = face_data["box"]
                face_data["box"] = [box["x"], box["y"], box["w"], box["h"]]
        data["faces_count"] = self.faces_count
        return data
