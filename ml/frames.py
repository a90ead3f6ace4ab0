"""Frames in, faces and everything cut from the pixels out, while the video is still decoding.

`FrameDigester` is the `FrameSink` (ml/video.py) the detector hands to the decoder. It runs the
face search policy of ml/detector.py frame by frame: a frame chosen for a full search
(`full_search_positions`) is searched at once; a frame between two full searches waits for the
next one, then is searched near the faces found on either side. As soon as a frame's faces are
known, everything the analysis needs from its pixels is cut (`FrameDigest`: the face crops of
both models, the frame's JPEG, a thumbnail-sized copy) and the frame itself is let go. So at
most the frames since the last full search (6) are held at full size, never all 32: for a 1080p
video that is about 37 MB instead of 200.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .results import Box

FULL_SEARCH_EVERY = 6  # sampled frames between two full face searches, at most
FULL_SEARCH_MAX_GAP_S = 2.0  # seconds of video between two full face searches, at most


@dataclass
class FrameDigest:
    """What the analysis keeps of one sampled frame."""

    index: int
    time: float
    boxes: list[Box]  # confirmed faces to score, largest first
    faces_left_out: int  # confirmed faces over the per-frame cap
    boxes_rejected: int  # Haar boxes not confirmed, too blurred to judge, or a second box on a face
    crops: list[np.ndarray] = field(default_factory=list)  # the face-swap model's, one per box
    synthetic_crops: list[np.ndarray] = field(default_factory=list)  # the synthetic model's, one per box
    # a photo's: the other views of each box's face (SyntheticDetector.views), one list per box
    synthetic_views: list[list[np.ndarray]] = field(default_factory=list)
    jpeg: bytes | None = None  # the frame, scaled down, for the result page
    small: np.ndarray | None = None  # thumbnail-sized copy
    size: tuple[int, int] | None = None  # (width, height) of the frame as searched, if known


def full_search_positions(times: Sequence[float], every: int, max_gap_s: float) -> list[int]:
    """Which sampled frames (by position) get a full face search: the first, the last, and
    enough between so that no two are more than `every` frames or `max_gap_s` seconds apart (the
    frames of a long video are far apart in time: each is searched whole)."""
    every = max(1, every)
    chosen: list[int] = []
    for position in range(len(times)):
        last = chosen[-1] if chosen else None
        if (
            last is None
            or position == len(times) - 1
            or position - last >= every
            or times[position + 1] - times[last] > max_gap_s
        ):
            chosen.append(position)
    return chosen


# (image, faces to search near or None for the whole frame) -> (boxes, left out, rejected)
Search = Callable[[np.ndarray, "list[Box] | None"], tuple[list[Box], int, int]]
# (index, time, image, boxes, left out, rejected) -> what is kept of the frame
Digest = Callable[[int, float, np.ndarray, list[Box], int, int], FrameDigest]


class FrameDigester:
    """A FrameSink that searches faces as frames arrive and keeps only their digests."""

    def __init__(
        self,
        *,
        search: Search,
        digest: Digest,
        every: int,
        max_gap_s: float,
        progress: Callable[[float], None] | None = None,
    ):
        self._search = search
        self._digest = digest
        self._every = every
        self._max_gap_s = max_gap_s
        self._progress = progress or (lambda fraction: None)
        self.seconds_digesting = 0.0  # spent cutting crops and JPEGs (the rest is decoding or search)
        self.begin([], [])

    def begin(self, indices: list[int], times: Sequence[float]) -> None:
        """A new pass over the frames at `indices`, shown at `times` (seconds)."""
        self._times = list(times)
        self._indices = list(indices)
        self._position = {index: p for p, index in enumerate(indices)}
        self._full = set(full_search_positions(self._times, self._every, self._max_gap_s))
        self._digests: dict[int, FrameDigest] = {}
        self._anchor: tuple[int, list[Box]] | None = None  # the last fully searched frame
        self._pending: list[tuple[int, np.ndarray]] = []  # frames since then, waiting

    def add(self, index: int, image: np.ndarray, time: float | None = None) -> None:
        position = self._position[index]
        if time is not None:  # the frame's own time (a variable frame rate), not the planned one
            self._times[position] = time
        if position not in self._full:
            self._pending.append((position, image))
            return
        found = self._search(image, None)
        self._settle(found[0])
        self._keep(position, image, found)
        self._anchor = (position, found[0])

    def finish(self) -> list[FrameDigest]:
        """The digests of every frame added in the current pass, in order."""
        for position, image in self._pending:  # the frames after the last full search (the
            self._keep(position, image, self._search(image, None))  # last frame did not decode)
        self._pending = []
        return [self._digests[p] for p in sorted(self._digests)]

    def _settle(self, after: list[Box]) -> None:
        """Search the waiting frames, now that the next full search found `after`."""
        waiting, self._pending = self._pending, []
        if not waiting:
            return
        if self._anchor is None:  # the first frame did not decode: search them whole
            for position, image in waiting:
                self._keep(position, image, self._search(image, None))
            return
        before = self._anchor[1]
        if not before and not after:  # nobody on either side: look at the middle frame whole
            middle = len(waiting) // 2
            position, image = waiting[middle]
            found = self._search(image, None)
            self._keep(position, image, found)
            self._near(waiting[:middle], before, found[0])
            self._near(waiting[middle + 1 :], found[0], after)
        else:
            self._near(waiting, before, after)

    def _near(self, waiting: list[tuple[int, np.ndarray]], before: list[Box], after: list[Box]) -> None:
        around = before + after
        expected = min(len(before), len(after))
        for position, image in waiting:
            if not around:  # no face on either side: nothing to search near
                self._keep(position, image, ([], 0, 0))
                continue
            found = self._search(image, around)
            if len(found[0]) < expected:  # someone moved away: look everywhere
                found = self._search(image, None)
            self._keep(position, image, found)

    def _keep(self, position: int, image: np.ndarray, found: tuple[list[Box], int, int]) -> None:
        started = time.perf_counter()
        boxes, left_out, rejected = found
        self._digests[position] = self._digest(self._indices[position], self._times[position], image, boxes, left_out, rejected)
        self.seconds_digesting += time.perf_counter() - started
        self._progress(len(self._digests) / max(1, len(self._indices)))
