"""The verdict policy's caution (ml/caution.py): when a video's verdict is held at "uncertain"."""

from ml.caution import uncertain_reason
from ml.results import (
    KIND_AI_GENERATED,
    KIND_FACE_SWAP,
    MEDIA_IMAGE,
    MEDIA_VIDEO,
    VERDICT_FAKE,
    VERDICT_REAL,
    VERDICT_UNCERTAIN,
    Box,
    FaceResult,
    FrameResult,
)
from ml.tracks import summarize_tracks

THRESHOLD_REAL, THRESHOLD = 0.4, 0.85


def clip(*people: list[float | None], synthetic: float | None = None):
    """Frames and summarised tracks of a clip: each person's face scores frame by frame (None:
    not seen in that frame)."""
    length = max(len(scores) for scores in people)
    track_ids = [[n + 1 for n, scores in enumerate(people) if k < len(scores) and scores[k] is not None] for k in range(length)]
    scores = [[people[t - 1][k] for t in ids] for k, ids in enumerate(track_ids)]
    times = [k / 10 for k in range(length)]
    marks = [[synthetic for _ in ids] for ids in track_ids] if synthetic is not None else None
    tracks = summarize_tracks(track_ids, scores, times, synthetic=marks)
    frames = [
        FrameResult(
            index=k,
            time=times[k],
            faces=tuple(FaceResult(box=Box(10, 10, 80, 80), fake_probability=s, track=t) for t, s in zip(ids, scores[k])),
        )
        for k, ids in enumerate(track_ids)
    ]
    return tracks, frames


def reason(tracks, frames, *, verdict=VERDICT_REAL, kind="", media_type=MEDIA_VIDEO):
    return uncertain_reason(
        media_type=media_type, verdict=verdict, fake_kind=kind, tracks=tracks, frames=frames,
        threshold=THRESHOLD, min_track_frames=3,
    )


def test_a_clip_real_throughout_is_left_real():
    tracks, frames = clip([0.1] * 32)
    assert reason(tracks, frames) == ""


def test_a_real_verdict_from_a_face_seen_in_two_of_32_frames_is_held():
    tracks, frames = clip([0.3, 0.3] + [None] * 30)
    assert reason(tracks, frames) == "few_frames"


def test_a_short_clip_whose_every_frame_shows_the_face_is_not_held():
    """Two sampled frames in all, a face in both: that is the whole clip."""
    tracks, frames = clip([0.3, 0.3])
    assert reason(tracks, frames) == ""


def test_a_fake_verdict_from_few_frames_stands():
    tracks, frames = clip([0.95, 0.95] + [None] * 30)
    assert reason(tracks, frames, verdict=VERDICT_FAKE, kind=KIND_FACE_SWAP) == ""


def test_a_real_average_over_a_short_run_of_fake_faces_is_held():
    """Six faces of 32 in the fake band (the real StyleTalk clip the policy was measured on had
    six, at a mean of 0.405); the mean alone says real."""
    scores = [0.2] * 26 + [0.9] * 6
    tracks, frames = clip(scores)
    assert tracks[0].fake_probability < THRESHOLD_REAL
    assert reason(tracks, frames) == "fake_moments"


def test_one_or_two_fake_band_faces_or_under_a_tenth_of_a_long_track_are_not_enough():
    assert reason(*clip([0.1] * 30 + [0.9] * 2)) == ""
    assert reason(*clip([0.1] * 50 + [0.9] * 5)) == ""  # 5 of 55: under 10 %
    assert reason(*clip([0.1] * 50 + [0.9] * 6)) == "fake_moments"  # 6 of 56


def test_fake_moments_of_someone_seen_too_briefly_to_count_do_not_hold_the_verdict():
    tracks, frames = clip([0.1] * 32, [0.9, 0.9] + [None] * 30)
    assert [track.counted for track in tracks] == [True, False]
    assert reason(tracks, frames) == ""


def test_a_video_called_ai_generated_by_the_second_model_alone_is_held():
    tracks, frames = clip([0.05] * 8, synthetic=0.99)
    assert reason(tracks, frames, verdict=VERDICT_FAKE, kind=KIND_AI_GENERATED) == "ai_generated_video"


def test_photos_are_never_held_for_what_only_a_video_shows():
    tracks, frames = clip([0.05])
    assert reason(tracks, frames, verdict=VERDICT_FAKE, kind=KIND_AI_GENERATED, media_type=MEDIA_IMAGE) == ""
    assert reason(tracks, frames, media_type=MEDIA_IMAGE) == ""


def test_uncertain_and_face_swap_verdicts_are_left_as_they_are():
    scores = [0.2] * 26 + [0.9] * 6
    assert reason(*clip(scores), verdict=VERDICT_UNCERTAIN) == ""
    assert reason(*clip(scores), verdict=VERDICT_FAKE, kind=KIND_FACE_SWAP) == ""


def test_a_real_verdict_while_the_ai_generated_model_is_half_way_to_its_threshold_is_held_photo_or_video():
    for media_type, scores in ((MEDIA_IMAGE, [0.05]), (MEDIA_VIDEO, [0.05] * 32)):
        tracks, frames = clip(scores)
        held = uncertain_reason(
            media_type=media_type, verdict=VERDICT_REAL, fake_kind="", tracks=tracks, frames=frames,
            threshold=THRESHOLD, min_track_frames=3, synthetic_probability=0.36, synthetic_threshold=0.714,
        )
        under_half = uncertain_reason(
            media_type=media_type, verdict=VERDICT_REAL, fake_kind="", tracks=tracks, frames=frames,
            threshold=THRESHOLD, min_track_frames=3, synthetic_probability=0.35, synthetic_threshold=0.714,
        )
        assert (held, under_half) == ("ai_generated_hint", ""), media_type
