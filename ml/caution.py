"""When a verdict is held at "uncertain" though its score would say more, and why.

A confident wrong answer is the worst thing this product can say, and four ways to give one
were found by a trust audit of ../shared/data and a journalist's test of the site
(2026-11-27). Each holds a verdict at "uncertain" and names the reason
(`AnalysisResult.uncertain_reason`); the file's score is unchanged, so the reason can be read
against it. The first three concern videos only: a photo's one frame is the whole of what it
shows, and the AI-generated model was trained and measured on photos.

- `few_frames`: a "real" verdict when no person was seen in enough sampled frames to count
  (`MIN_TRACK_FRAMES`, 3) and the most-seen person decided instead (ml/tracks.py). A real
  verdict claims nothing was found in the whole video, and a face seen in 2 of 32 frames
  examined little of it: the real StyleTalk close-up `styletalk_furious_talk1_clip2` was "real
  0.315" from two boxes (before the turned face search of ml/faces.py found his tilted head in
  all 32 frames). A "fake" verdict stands on what was seen and is not held.
- `fake_moments`: a "real" verdict while a counted person has at least `FAKE_MOMENTS_FACES`
  (3) faces, and at least `FAKE_MOMENTS_SHARE` (10 %) of theirs, at or above the fake
  threshold. A person's score is the mean of their faces, which would average a short swapped
  passage away. Of the 29 real clips of ../shared/data/videos, it holds one
  (`styletalk_furious_talk2_clip1`, mean 0.405 with 6 of 32 faces in the fake band); no other
  real clip called real had a single face in the fake band.
- `ai_generated_video`: a video called "Fake: AI-generated face" by the second model alone.
  That model learned still StyleGAN2 photos, no generated video was ever at hand to test it on,
  and on video its score swings between frames a second apart; a real LivePortrait clip
  cropped to 80 % was "Fake: AI-generated face, 99.6 %". Until it is measured on generated
  video, its call there is a lead for a person to follow, not a verdict.
- `ai_generated_hint` (photos and videos): a "real" verdict while the AI-generated model gives
  at least half its threshold. "Real" is the face-swap model's finding, and a green "Real" on
  a generated face is a confident wrong answer: a StyleGAN2 face at 0.471 (threshold 0.714)
  was shown so. Measured through the site's path (2026-11-27; see detection/presenters.py
  `_near_ai_generated`): 4 of 149 Celeb-DF real photos and 4 of 83 StyleGAN2 faces land
  there; none of the 29 real clips (their highest: 0.195).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .results import (
    KIND_AI_GENERATED,
    MEDIA_VIDEO,
    UNCERTAIN_AI_HINT,
    UNCERTAIN_AI_VIDEO,
    UNCERTAIN_FAKE_MOMENTS,
    UNCERTAIN_FEW_FRAMES,
    VERDICT_FAKE,
    VERDICT_REAL,
    FrameResult,
    TrackResult,
)

FAKE_MOMENTS_FACES = 3
FAKE_MOMENTS_SHARE = 0.10
AI_HINT_SHARE = 0.5  # of the AI-generated model's threshold


def fake_moments(track: TrackResult, frames: Sequence[FrameResult], *, threshold: float) -> int:
    """How many of a person's faces score at or above the fake threshold."""
    return sum(
        1 for frame in frames for face in frame.faces if face.track == track.id and face.fake_probability >= threshold
    )


def has_fake_moments(track: TrackResult, frames: Sequence[FrameResult], *, threshold: float) -> bool:
    """Whether enough of a person's faces lie in the fake band to hold a "real" verdict."""
    needed = max(FAKE_MOMENTS_FACES, math.ceil(FAKE_MOMENTS_SHARE * track.frames))
    return fake_moments(track, frames, threshold=threshold) >= needed


def uncertain_reason(
    *,
    media_type: str,
    verdict: str,
    fake_kind: str,
    tracks: Sequence[TrackResult],
    frames: Sequence[FrameResult],
    threshold: float,
    min_track_frames: int,
    synthetic_probability: float | None = None,
    synthetic_threshold: float | None = None,
) -> str:
    """The reason to hold this verdict at "uncertain" (one of UNCERTAIN_REASONS), or "" to let
    it stand. `tracks` as ml.tracks.summarize_tracks made them, `frames` every sampled frame;
    the synthetic probability and threshold are the file's (None: no AI-generated model)."""
    video = media_type == MEDIA_VIDEO
    if video and verdict == VERDICT_FAKE and fake_kind == KIND_AI_GENERATED:
        return UNCERTAIN_AI_VIDEO
    if verdict != VERDICT_REAL:
        return ""
    if synthetic_probability is not None and synthetic_threshold is not None:
        if synthetic_probability >= synthetic_threshold * AI_HINT_SHARE:
            return UNCERTAIN_AI_HINT
    if not video:
        return ""
    if tracks and max(track.frames for track in tracks) < min(min_track_frames, len(frames)):
        return UNCERTAIN_FEW_FRAMES
    if any(track.counted and has_fake_moments(track, frames, threshold=threshold) for track in tracks):
        return UNCERTAIN_FAKE_MOMENTS
    return ""
