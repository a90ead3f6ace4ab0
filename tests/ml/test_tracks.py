import pytest

from ml.results import Box
import numpy as np

from ml.tracks import (
    evenly_spaced_faces,
    face_look,
    faces_to_explain,
    file_score,
    link_tracks,
    look_distance,
    shape_distance,
    summarize_tracks,
)


def box(x, y=100, side=80):
    return Box(x, y, side, side)


def test_a_face_moving_a_little_stays_one_person():
    frames = [[box(100)], [box(110)], [box(125)], [box(140)]]
    assert link_tracks(frames) == [[1], [1], [1], [1]]


def test_two_people_side_by_side_keep_their_numbers_whatever_the_box_order():
    left, right = box(50), box(400)
    frames = [[left, right], [right, left], [box(55), box(405)]]
    assert link_tracks(frames) == [[1, 2], [2, 1], [1, 2]]


def test_a_face_far_away_or_of_another_size_starts_a_new_track():
    frames = [[box(100)], [box(600)], [box(600, side=300)]]
    assert link_tracks(frames) == [[1], [2], [3]]


def test_a_track_survives_a_short_gap_but_not_a_long_one():
    assert link_tracks([[box(100)], [], [], [], [], [box(102)]]) == [[1], [], [], [], [], [1]]  # 4 frames missed
    assert link_tracks([[box(100)], [], [], [], [], [], [box(102)]]) == [[1], [], [], [], [], [], [2]]


def face_of(colour: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A 224 px "face crop" of one colour with some texture (BGR)."""
    noise = np.random.default_rng(seed).integers(-12, 13, (224, 224, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def test_someone_else_in_the_same_place_after_a_cut_is_another_person():
    box = Box(100, 100, 80, 80)
    skin, other = face_of((120, 150, 200)), face_of((90, 60, 40), seed=1)
    looks = [[face_look(skin)], [face_look(face_of((120, 150, 200), seed=2))], [face_look(other)], [face_look(other)]]

    assert link_tracks([[box]] * 4, looks=looks) == [[1], [1], [2], [2]]
    assert link_tracks([[box]] * 4) == [[1], [1], [1], [1]]  # boxes alone cannot tell


def test_the_same_face_in_other_colours_is_the_same_person(astronaut):
    box = Box(100, 100, 80, 80)
    face = astronaut[60:284, 150:374]
    tinted = np.clip(face * np.array([0.5, 0.8, 1.3]), 0, 255).astype(np.uint8)  # a coloured light
    looks = [[face_look(face)], [face_look(tinted)], [face_look(face)]]

    assert look_distance(looks[0][0], looks[1][0]) > 0.5  # the colours alone would split it
    assert shape_distance(looks[0][0], looks[1][0]) < 0.1
    assert link_tracks([[box]] * 3, looks=looks) == [[1], [1], [1]]


def test_look_distance_is_zero_for_the_same_colours_and_large_for_others():
    skin = face_look(face_of((120, 150, 200)))
    assert look_distance(skin, face_look(face_of((120, 150, 200), seed=3))) < 0.2
    assert look_distance(skin, face_look(face_of((90, 60, 40)))) > 0.5


def test_one_swapped_person_among_real_ones_decides_the_file():
    # person 1 real in 4 frames, person 2 fake in 4 frames
    ids = [[1, 2]] * 4
    scores = [[0.1, 0.9], [0.2, 0.8], [0.1, 0.95], [0.15, 0.85]]
    tracks = summarize_tracks(ids, scores, [0, 1, 2, 3])
    assert [t.fake_probability for t in tracks] == pytest.approx([0.1375, 0.875])
    assert file_score(tracks) == pytest.approx(0.875)


def test_a_face_seen_in_one_frame_cannot_decide_a_video():
    ids = [[1], [1, 2], [1], [1]]
    scores = [[0.1], [0.1, 0.99], [0.2], [0.1]]
    tracks = summarize_tracks(ids, scores, [0, 1, 2, 3])
    assert [(t.id, t.frames, t.counted) for t in tracks] == [(1, 4, True), (2, 1, False)]
    assert file_score(tracks) == pytest.approx(0.125)


def test_a_short_clip_counts_tracks_that_span_all_its_frames():
    tracks = summarize_tracks([[1], [1]], [[0.7], [0.9]], [0.0, 0.5], min_frames=3)
    assert tracks[0].counted and file_score(tracks) == pytest.approx(0.8)


def test_when_faces_only_flicker_the_longest_tracks_count():
    ids = [[1], [], [], [2], [2], [], [], [], [3]]
    scores = [[0.9], [], [], [0.2], [0.4], [], [], [], [0.95]]
    tracks = summarize_tracks(ids, scores, list(range(9)))
    assert [t.counted for t in tracks] == [False, True, False]
    assert file_score(tracks) == pytest.approx(0.3)


def test_no_face_anywhere_means_no_score():
    assert summarize_tracks([[], []], [[], []], [0, 1]) == ()
    assert file_score(()) is None


def test_the_synthetic_model_sees_at_most_four_faces_of_a_person_spread_along_the_track():
    track_ids = [[1] for _ in range(10)]
    track_ids[4].append(2)
    track_ids[5].append(2)

    chosen = evenly_spaced_faces(track_ids, 4)

    assert [(p, j) for p, j in chosen if track_ids[p][j] == 1] == [(0, 0), (3, 0), (6, 0), (9, 0)]
    assert [(p, j) for p, j in chosen if track_ids[p][j] == 2] == [(4, 1), (5, 1)]


def test_a_persons_synthetic_probability_is_the_lowest_of_the_faces_that_were_scored():
    track_ids = [[1], [1], [1]]
    tracks = summarize_tracks(track_ids, [[0.1], [0.2], [0.3]], [0.0, 1.0, 2.0], synthetic=[[0.9], [None], [0.6]])
    assert tracks[0].synthetic_probability == pytest.approx(0.6)
    # one person whose score swings as a real face's did: not called AI-generated on its mean
    swinging = summarize_tracks([[1]] * 4, [[0.1]] * 4, [0.0, 1.0, 2.0, 3.0], synthetic=[[0.983], [0.946], [0.003], [0.998]])
    assert swinging[0].synthetic_probability == pytest.approx(0.003)


def test_each_person_gets_a_heatmap_before_anyone_gets_a_second():
    # three frames: person 1 (scores 0.9, 0.95, 0.8) and person 2 (0.3, 0.4, 0.2), in frame order
    track_ids = [[1, 2], [1, 2], [1, 2]]
    scores = [0.9, 0.3, 0.95, 0.4, 0.8, 0.2]

    assert faces_to_explain(track_ids, scores, 2) == [2, 3]  # person 1's best, then person 2's
    assert faces_to_explain(track_ids, scores, 3) == [2, 3, 0]  # then the most suspicious left
    assert faces_to_explain([[1], [1]], [0.2, 0.7], 2) == [1, 0]  # one person: by score
    assert faces_to_explain(track_ids, scores, 0) == []


def test_the_people_counted_for_the_verdict_get_their_heatmap_before_people_seen_once():
    from ml.results import TrackResult

    # person 1 is seen in three frames (counted, mean 0.5); persons 2 and 3 once each, scoring higher
    track_ids = [[1, 2], [1, 3], [1]]
    scores = [0.5, 0.9, 0.6, 0.8, 0.4]
    people = [
        TrackResult(id=1, fake_probability=0.5, frames=3, first_time=0, last_time=2, counted=True),
        TrackResult(id=2, fake_probability=0.9, frames=1, first_time=0, last_time=0, counted=False),
        TrackResult(id=3, fake_probability=0.8, frames=1, first_time=1, last_time=1, counted=False),
    ]

    assert faces_to_explain(track_ids, scores, 2, people) == [2, 1]  # person 1's best, then person 2's
