"""Face tracks: one person followed across the sampled frames of a video.

Linking (no extra dependency): frames are visited in order; each face is matched to an open
track whose latest box, seen at most `max_gap` sampled frames earlier, overlaps it (intersection
over union at least `min_iou`) or, for fast motion between sparse samples, whose centre lies
within `max_shift` box widths of it with a size within `max_scale` times. Pairs are matched
greedily, best overlap first; a track takes at most one face per frame. An unmatched face starts
a new track. Tracks are numbered from 1 in order of appearance.

Where the box fits but the face looks like someone else, the face starts a new track: a cut from
one person to another framed the same way (an interview, a news clip) must not pool a swapped
face with a real one, whose mean would hide the fake. Someone else differs from the track's last
face in both its colours (the hue-saturation histogram of the crop's middle, Bhattacharyya
distance over 0.5) and its light and shade (a 16 px grey thumbnail, correlation distance over
0.6). Measured 2026-11-26 on the faces as the worker finds them:
- the 31 clips of ../shared/data/videos: consecutive faces of one track are at most 0.33 apart in
  colours (899 pairs; median 0.07), so none is split; faces of different clips have median 0.57,
  and 62 % of those pairs are over 0.5;
- coloured, flashing light on one face (the astronaut and the DFDC fake under disco and strobe
  tints): colours up to 1.0 apart, but light and shade at most 0.38; split on colours alone,
  one face became 12-17 "people" and the file took the worst of them;
- cuts between two people in the same place: light and shade 0.89-1.25 apart.

A person may be missed for up to 4 sampled frames (an eighth of a 32-frame sample) and still
continue (`max_gap`). At 2, one man came back as a second "person" after the face finder lost him
for 3 frames, and the result page showed him twice with two scores (a journalist testing the
site read that as two people). Measured 2026-11-27 on the 31 videos, 145 re-encoded copies and
29 copies cropped to 80 %: 11 files had such splits joined, and no verdict moved but two copies
of one StyleTalk close-up, which went from "uncertain" (the person seen in 2 frames, so held)
to "real" from 6 frames. Those clips show one person each, so this measures splits, not two
people joined: after a cut, the look check above keeps them apart, whatever the gap.

Scoring policy (tested in tests/ml/test_tracks.py):
- a track's score is the mean fake probability of its faces;
- a track *counts* when it spans at least `min_frames` sampled frames, or every sampled frame
  of a clip shorter than that (a photo: its one frame);
- the file's score is the most suspicious counted track, so one swapped person among real ones
  makes the file fake, while a face that flickers into one or two frames cannot decide it;
- when no track is long enough (faces flicker in and out everywhere), the longest tracks count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .results import Box, TrackResult

MIN_TRACK_FRAMES = 3
SYNTHETIC_FACES_PER_TRACK = 4


@dataclass(frozen=True)
class Linking:
    min_iou: float = 0.3
    max_shift: float = 0.5  # centre distance, in widths of the larger box
    max_scale: float = 1.5  # larger over smaller box width
    max_gap: int = 4  # sampled frames a track may miss and still continue (see the module's docstring)
    max_look_distance: float = 0.5  # colours (look_distance) over which a face may be someone else
    max_shape_distance: float = 0.6  # ... if its light and shade (shape_distance) differ this much too


LOOK_BINS = (16, 8)  # hue, saturation


SHAPE_SIDE = 16  # the grey thumbnail's side, for shape_distance


@dataclass(frozen=True)
class Look:
    """What a face crop looks like, for telling one person from the next: its colours and its
    light and shade."""

    colours: np.ndarray  # normalised hue-saturation histogram of the crop's middle 70 %
    shape: np.ndarray  # the crop in grey at 16 x 16, zero mean, unit length


def face_look(crop: np.ndarray) -> Look:
    """A face crop's Look (BGR uint8 in)."""
    height, width = crop.shape[:2]
    middle = crop[int(height * 0.15) : int(height * 0.85), int(width * 0.15) : int(width * 0.85)]
    hsv = cv2.cvtColor(middle, cv2.COLOR_BGR2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, list(LOOK_BINS), [0, 180, 0, 256])
    grey = cv2.cvtColor(cv2.resize(crop, (SHAPE_SIDE, SHAPE_SIDE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    shape = grey.astype(np.float32).flatten()
    shape -= shape.mean()
    shape /= float(np.linalg.norm(shape)) or 1.0
    return Look(cv2.normalize(histogram, None, 1, 0, cv2.NORM_L1).flatten(), shape)


def look_distance(a: Look, b: Look) -> float:
    """How far apart two faces' colours are: 0 the same, up to 1 with none in common."""
    return float(cv2.compareHist(a.colours, b.colours, cv2.HISTCMP_BHATTACHARYYA))


def shape_distance(a: Look, b: Look) -> float:
    """How far apart two faces' light and shade are: 0 the same, 1 unrelated, up to 2."""
    return 1.0 - float(a.shape @ b.shape)


def someone_else(a: Look, b: Look, linking: Linking) -> bool:
    """Whether face b, where face a was, is another person: both its colours and its light and
    shade differ. Colours alone change under coloured or flashing light, and light and shade
    alone with expressions and turns of the head."""
    return look_distance(a, b) > linking.max_look_distance and shape_distance(a, b) > linking.max_shape_distance


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _affinity(a: Box, b: Box, linking: Linking) -> float:
    """How well box b continues box a: IoU, or a small positive value for a near, same-sized
    box that does not overlap enough; 0 when b cannot continue a."""
    overlap = iou(a, b)
    if overlap >= linking.min_iou:
        return overlap
    big, small = max(a.w, b.w), max(1, min(a.w, b.w))
    if big / small > linking.max_scale:
        return 0.0
    dx = (a.x + a.w / 2) - (b.x + b.w / 2)
    dy = (a.y + a.h / 2) - (b.y + b.h / 2)
    if (dx * dx + dy * dy) ** 0.5 <= linking.max_shift * big:
        return 0.01
    return 0.0


def link_tracks(
    frames: Sequence[Sequence[Box]],
    linking: Linking = Linking(),
    *,
    looks: Sequence[Sequence[Look]] | None = None,
) -> list[list[int]]:
    """The track number (from 1) of every box, frame by frame, in the boxes' own order.
    `looks`, shaped like `frames`, holds each face's `face_look`; without it boxes alone link."""
    ids: list[list[int]] = []
    open_tracks: dict[int, tuple[int, Box]] = {}  # track -> (frame position, latest box)
    last_looks: dict[int, Look] = {}
    next_id = 1
    for position, boxes in enumerate(frames):
        for track in [t for t, (seen, _) in open_tracks.items() if position - seen > linking.max_gap + 1]:
            del open_tracks[track]

        def fits(track: int, j: int) -> bool:
            if looks is None or track not in last_looks:
                return True
            return not someone_else(last_looks[track], looks[position][j], linking)

        pairs = sorted(
            (
                (_affinity(last, box, linking), track, j)
                for track, (_, last) in open_tracks.items()
                for j, box in enumerate(boxes)
                if fits(track, j)
            ),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for score, track, j in pairs:
            if score <= 0.0 or j in assigned or track in used_tracks:
                continue
            assigned[j] = track
            used_tracks.add(track)
        frame_ids = []
        for j, box in enumerate(boxes):
            track = assigned.get(j)
            if track is None:
                track, next_id = next_id, next_id + 1
            open_tracks[track] = (position, box)
            if looks is not None:
                last_looks[track] = looks[position][j]
            frame_ids.append(track)
        ids.append(frame_ids)
    return ids


def evenly_spaced_faces(track_ids: Sequence[Sequence[int]], per_track: int) -> list[tuple[int, int]]:
    """(frame position, face index) of at most `per_track` faces of each track, spread evenly
    from its first face to its last; every face of a track that has no more than that."""
    members: dict[int, list[tuple[int, int]]] = {}
    for position, frame_ids in enumerate(track_ids):
        for j, track in enumerate(frame_ids):
            members.setdefault(track, []).append((position, j))
    chosen = []
    for faces in members.values():
        if len(faces) <= per_track:
            chosen.extend(faces)
        else:
            picks = np.unique(np.round(np.linspace(0, len(faces) - 1, per_track)).astype(int))
            chosen.extend(faces[k] for k in picks)
    return sorted(chosen)


def faces_to_explain(
    track_ids: Sequence[Sequence[int]], scores: Sequence[float], count: int, people: Sequence[TrackResult] = ()
) -> list[int]:
    """Which faces get a heatmap: indices into `scores` (faces in frame order, as `track_ids`
    lists them), at most `count`. First each person's most suspicious face, people counted for
    the verdict first and the most suspicious of them first (`people`: the summarised tracks),
    then the most suspicious faces left. Picked by score alone, two people's heatmaps could both
    show the first, and the second would never be seen up close."""
    if count <= 0:
        return []
    tracks = [track for frame_ids in track_ids for track in frame_ids]
    by_score = [int(k) for k in np.argsort(-np.asarray(scores, dtype=float), kind="stable")]
    best: dict[int, int] = {}
    for k in by_score:
        best.setdefault(tracks[k], k)
    summary = {person.id: person for person in people}

    def rank(track: int) -> tuple:
        person = summary.get(track)
        counted = person is not None and person.counted
        return (not counted, -(person.fake_probability if counted else scores[best[track]]))

    firsts = [best[track] for track in sorted(best, key=rank)]
    chosen = set(firsts)
    return (firsts + [k for k in by_score if k not in chosen])[:count]


def summarize_tracks(
    track_ids: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    times: Sequence[float],
    *,
    min_frames: int = MIN_TRACK_FRAMES,
    synthetic: Sequence[Sequence[float | None]] | None = None,
) -> tuple[TrackResult, ...]:
    """One TrackResult per track, with the counting rule of the module's policy applied.
    `synthetic`, shaped like `scores`, adds each track's synthetic-face probability: the lowest
    over the faces that have one (None: not scored). The lowest, as a photo's face takes the
    lowest of its three framings: the second model's score of one person swings from frame to
    frame (a real clip, resized and saved with mp4v: 0.983, 0.946, 0.003 and 0.998 on its four
    sampled faces, a mean of 0.733 over the 0.714 threshold: "Fake: AI-generated face"). On 30
    StyleGAN2 portraits made into 4 s clips, the lowest still called 22 AI-generated against 24
    for the mean, and none of 30 FFHQ portraits either way (session 16, 2026-11-27)."""
    faces: dict[int, list[tuple[float, float]]] = {}
    synthetic_faces: dict[int, list[float]] = {}
    for position, (frame_ids, frame_scores, time) in enumerate(zip(track_ids, scores, times)):
        for j, (track, score) in enumerate(zip(frame_ids, frame_scores)):
            faces.setdefault(track, []).append((float(score), float(time)))
            if synthetic is not None and synthetic[position][j] is not None:
                synthetic_faces.setdefault(track, []).append(float(synthetic[position][j]))
    if not faces:
        return ()
    needed = min(min_frames, len(times))
    longest = max(len(v) for v in faces.values())
    if longest < needed:
        needed = longest
    return tuple(
        TrackResult(
            id=track,
            fake_probability=float(np.mean([s for s, _ in members])),
            frames=len(members),
            first_time=min(t for _, t in members),
            last_time=max(t for _, t in members),
            counted=len(members) >= needed,
            synthetic_probability=float(np.min(synthetic_faces[track])) if track in synthetic_faces else None,
        )
        for track, members in sorted(faces.items())
    )


def file_score(tracks: Sequence[TrackResult]) -> float | None:
    """The most suspicious counted track's score; None when there is no track (no face)."""
    counted = [t.fake_probability for t in tracks if t.counted]
    return max(counted) if counted else None


def synthetic_score(tracks: Sequence[TrackResult]) -> float | None:
    """The most AI-generated-looking counted track's synthetic probability, like file_score."""
    counted = [t.synthetic_probability for t in tracks if t.counted and t.synthetic_probability is not None]
    return max(counted) if counted else None
