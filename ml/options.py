"""The options of an analysis, in one place: the detector, the CLI and the site's settings use
these defaults (a Django test pins the settings' defaults to them)."""

from __future__ import annotations

from dataclasses import dataclass

from .faces import DEFAULT_MAX_FACES, DEFAULT_MAX_PHOTO_FACES
from .frames import FULL_SEARCH_EVERY
from .media import DEFAULT_LIMITS, MediaLimits
from .tracks import MIN_TRACK_FRAMES
from .verify import DEFAULT_VERIFIER
from .video import DEFAULT_FRAMES


@dataclass(frozen=True)
class DetectorOptions:
    """Every knob of an analysis, with the defaults the site, the CLI and the tests share."""

    max_frames: int = DEFAULT_FRAMES  # frames sampled from a video
    max_faces: int = DEFAULT_MAX_FACES  # confirmed faces scored per frame of a video
    max_photo_faces: int = DEFAULT_MAX_PHOTO_FACES  # confirmed faces scored in a photo
    full_search_every: int = FULL_SEARCH_EVERY  # sampled frames; between them only near known faces
    heatmaps: int = 2  # faces per file that get a Grad-CAM heatmap (tracks.faces_to_explain)
    verifier: str = DEFAULT_VERIFIER  # how Haar boxes are confirmed (ml/verify.py)
    min_track_frames: int = MIN_TRACK_FRAMES
    frame_image_size: int = 960  # long side of the stored JPEG of each frame; 0: none
    thumbnail_size: int = 320  # long side of the file's thumbnail; 0: none
    jpeg_quality: int = 85
    limits: MediaLimits = DEFAULT_LIMITS  # the decoder's pixel budget (ml/media.py)
