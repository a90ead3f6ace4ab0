"""The digester searches faces as frames are decoded and lets each frame go once it is cut."""

import gc
import weakref

import numpy as np

from ml.frames import FrameDigest, FrameDigester
from ml.options import DetectorOptions
from ml.results import Box


def digester(searched: list, *, every: int = 4) -> FrameDigester:
    def search(image, near):
        searched.append((int(image[0, 0, 0]), near is None))
        return [Box(10, 10, 20, 20)], 0, 0

    def digest(index, time_s, image, boxes, left_out, rejected):
        return FrameDigest(index, time_s, boxes, left_out, rejected)

    return FrameDigester(search=search, digest=digest, every=every, max_gap_s=60.0)


def frame(index: int) -> np.ndarray:
    return np.full((8, 8, 3), index, np.uint8)


def test_it_holds_no_more_frames_than_those_since_the_last_full_search():
    searched = []
    sink = digester(searched)
    sink.begin(list(range(13)), [i / 10 for i in range(13)])
    alive = []
    most = 0
    for index in range(13):
        image = frame(index)
        alive.append(weakref.ref(image))
        sink.add(index, image)
        del image
        gc.collect()
        most = max(most, sum(ref() is not None for ref in alive))
    assert most <= 3  # frames 1-3 wait for the full search of frame 4
    assert [d.index for d in sink.finish()] == list(range(13))
    assert [index for index, whole in searched if whole] == [0, 4, 8, 12]


def test_a_new_pass_forgets_the_frames_of_the_one_before():
    searched = []
    sink = digester(searched)
    sink.begin([0, 10, 20, 30], [0.0, 1.0, 2.0, 3.0])
    sink.add(0, frame(0))
    sink.add(10, frame(10))
    sink.begin([0, 5, 11], [0.0, 0.5, 1.1])  # the file was shorter than its header said
    for index in (0, 5, 11):
        sink.add(index, frame(index))
    digests = sink.finish()
    assert [(d.index, d.time) for d in digests] == [(0, 0.0), (5, 0.5), (11, 1.1)]


def test_frames_after_the_last_full_search_are_searched_whole_when_the_last_frame_never_came():
    searched = []
    sink = digester(searched)
    sink.begin(list(range(6)), [i / 10 for i in range(6)])  # full searches planned at 0, 4, 5
    for index in range(5):
        sink.add(index, frame(index))
    sink.begin(list(range(6)), [i / 10 for i in range(6)])
    for index in (0, 1, 2):  # the decoder stopped early
        sink.add(index, frame(index))
    searched.clear()
    assert [d.index for d in sink.finish()] == [0, 1, 2]
    assert searched == [(1, True), (2, True)]


class Recording:
    """A FrameSink that keeps what the last pass gave it."""

    def begin(self, indices, times):
        self.planned, self.frames = list(indices), {}

    def add(self, index, image, time=None):
        self.frames[index] = image


def test_a_sink_gets_the_frames_sampling_returns_even_when_the_header_overstates_the_length(tmp_path, astronaut):
    from ml.video import sample_frames
    from tests.media import moving_face_frames, write_video

    path = write_video(tmp_path / "cut.avi", moving_face_frames(astronaut, 40), fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the AVI header still says 40 frames
    info, kept = sample_frames(path, 8)
    sink = Recording()

    streamed_info, streamed = sample_frames(path, 8, sink=sink)

    assert streamed_info == info
    assert [f.index for f in streamed] == [f.index for f in kept] == sorted(sink.frames)
    assert all(f.image is None for f in streamed)
    assert all(np.array_equal(sink.frames[f.index], f.image) for f in kept)


def test_analysing_a_cut_video_scores_the_frames_that_exist(tmp_path, astronaut, detector):
    from ml.video import sample_frames
    from tests.media import moving_face_frames, write_video

    path = write_video(tmp_path / "cut.avi", moving_face_frames(astronaut, 40), fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _, kept = sample_frames(path, 8)

    result = detector.analyze(path, DetectorOptions(max_frames=8))

    assert [(f.index, f.time) for f in result.frames] == [(f.index, f.time) for f in kept]
    assert all(len(f.faces) == 1 for f in result.frames)
