import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ml.errors import MediaError, MediaTooLargeError
from ml.media import MediaLimits, media_kind
from ml import video, video_skipping
from ml.video import sample_frames, sample_indices, seek_plan, video_info

from tests.media import (
    blank_one_mjpeg_frame,
    ffmpeg_rotate,
    hostile_gif,
    moving_face_frames,
    write_h264_with_b_frames,
    write_matroska_saying_half_its_length,
    write_sound_only_mp4,
    write_variable_rate_video,
    write_video,
    write_video_with_a_preview_track_first,
)


def frame_number(image: np.ndarray) -> int:
    """The index the test wrote into the frame's top-left corner."""
    return round(float(image[2:10, 2:10].mean()) / 4)


def test_k_indices_spread_evenly_over_the_whole_video_first_and_last_included():
    indices = sample_indices(100, 32)
    assert len(indices) == 32 and indices[0] == 0 and indices[-1] == 99
    gaps = np.diff(indices)
    assert gaps.min() >= 3 and gaps.max() <= 4


def test_a_video_shorter_than_k_gives_all_its_frames():
    assert sample_indices(5, 32) == [0, 1, 2, 3, 4]
    assert sample_indices(0, 32) == []


def test_it_decodes_exactly_the_sampled_frames_of_a_generated_video(tmp_path, astronaut):
    path = write_video(tmp_path / "walk.avi", moving_face_frames(astronaut, 40, size=(480, 360)), fps=20, fourcc="MJPG")
    info, frames = sample_frames(path, 8)
    assert (info.frame_count, info.fps, info.width, info.height) == (40, 20.0, 480, 360)
    assert info.duration == pytest.approx(2.0)
    assert [f.index for f in frames] == sample_indices(40, 8)
    assert [frame_number(f.image) for f in frames] == [f.index for f in frames]
    assert [f.time for f in frames] == [pytest.approx(f.index / 20) for f in frames]


def test_the_tools_read_a_photo_as_one_frame_and_a_video_as_its_sampled_frames(tmp_path, astronaut):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut[:, :, ::-1]).save(photo)
    [(index, image)] = video.read_frames(photo, 8)
    assert index == 0 and np.array_equal(image, astronaut)
    path = write_video(tmp_path / "walk.avi", moving_face_frames(astronaut, 40, size=(480, 360)), fps=20, fourcc="MJPG")
    frames = video.read_frames(path, 8)
    assert [i for i, _ in frames] == sample_indices(40, 8)
    assert [frame_number(image) for _, image in frames] == sample_indices(40, 8)


def test_a_short_video_is_sampled_whole(tmp_path, astronaut):
    path = write_video(tmp_path / "short.mp4", moving_face_frames(astronaut, 5))
    info, frames = sample_frames(path, 32)
    assert info.frame_count == 5
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_a_rotated_phone_video_comes_out_upright(tmp_path, astronaut):
    upright = moving_face_frames(astronaut, 6, size=(240, 320))  # portrait
    sideways = [np.ascontiguousarray(np.rot90(f)) for f in upright]  # stored landscape
    stored = write_video(tmp_path / "sideways.mp4", sideways)
    path = ffmpeg_rotate(stored, tmp_path / "phone.mp4", -90)
    info, frames = sample_frames(path, 4)
    assert info.rotation == 90
    assert (info.width, info.height) == (240, 320) == (video_info(path).width, video_info(path).height)
    first = frames[0].image.astype(int)
    assert first.shape[:2] == (320, 240)
    assert np.abs(first - upright[0]).mean() < 8, "the frame matches the upright original"


def test_a_header_that_overstates_the_length_still_samples_frames_that_exist(tmp_path, astronaut):
    path = write_video(tmp_path / "cut.avi", moving_face_frames(astronaut, 40), fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the AVI header still says 40 frames
    info, frames = sample_frames(path, 8)
    assert 10 < info.frame_count < 40
    assert frames[-1].index == info.frame_count - 1
    assert [frame_number(f.image) for f in frames] == [f.index for f in frames]


def test_an_undecodable_video_raises_a_clear_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    assert media_kind(path)[0] == "video"
    with pytest.raises(MediaError, match="broken.mp4"):
        sample_frames(path, 8)


def test_a_header_that_understates_the_length_still_samples_the_whole_video(tmp_path, astronaut):
    path = write_matroska_saying_half_its_length(tmp_path / "cut-short.mkv", moving_face_frames(astronaut, 40))
    assert video_info(path).frame_count < 30  # as the header says

    info, frames = sample_frames(path, 8)

    assert info.frame_count == 40
    assert [f.index for f in frames] == sample_indices(40, 8)
    assert frame_number(frames[-1].image) >= 36  # the real end (lossy: within a few grey steps), not the stated one


def test_a_variable_frame_rate_video_gives_each_frame_its_own_time(tmp_path, astronaut):
    shown_at = [i * 0.04 for i in range(20)] + [0.8 + i * 0.2 for i in range(1, 21)]  # 25 fps, then 5
    path = write_variable_rate_video(tmp_path / "phone.mkv", moving_face_frames(astronaut, 40), shown_at)

    info, frames = sample_frames(path, 8)

    assert [f.time for f in frames] == pytest.approx([shown_at[f.index] for f in frames], abs=0.002)
    assert frames[-1].time == pytest.approx(4.8, abs=0.002)  # 39 / 25 fps would say 1.56 s
    assert info.duration >= 4.8


def test_one_damaged_frame_does_not_end_the_video(tmp_path, astronaut):
    path = write_video(tmp_path / "camera.avi", moving_face_frames(astronaut, 40), fps=10, fourcc="MJPG")
    blank_one_mjpeg_frame(path, 15)

    info, frames = sample_frames(path, 40)

    assert info.frame_count == 40 and info.duration == pytest.approx(4.0)
    assert [f.index for f in frames] == [i for i in range(40) if i != 15]
    assert [frame_number(f.image) for f in frames[-3:]] == [37, 38, 39]


def test_a_sound_only_mp4_says_it_has_no_video_track(tmp_path):
    path = write_sound_only_mp4(tmp_path / "voice memo.mp4")
    assert media_kind(path)[0] == "video"
    with pytest.raises(MediaError, match=r"^voice memo\.mp4: the file has no video track"):
        sample_frames(path, 8)


def test_a_video_whose_first_track_is_a_small_preview_is_refused_not_judged_on_the_preview(tmp_path, astronaut):
    path = write_video_with_a_preview_track_first(tmp_path / "camera.mkv", moving_face_frames(astronaut, 8, size=(640, 480)))
    assert video_info(path).width == 160  # what OpenCV reads
    with pytest.raises(MediaError, match=r"^camera\.mkv: the file holds 2 video tracks and only the first \(160 x 90\).*the main one \(640 x 480\)"):
        sample_frames(path, 8)


def test_an_animated_gif_is_sampled_like_a_video(tmp_path, astronaut):
    frames = moving_face_frames(astronaut, 6, size=(240, 180))
    images = [Image.fromarray(f[..., ::-1]) for f in frames]
    path = tmp_path / "loop.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=200, loop=0)
    assert media_kind(path) == ("video", "gif")
    info, sampled = sample_frames(path, 3)
    assert info.frame_count == 6 and info.duration == pytest.approx(1.2)
    assert [f.index for f in sampled] == [0, 2, 5]
    assert [f.time for f in sampled] == [0.0, 0.4, 1.0]


def test_a_single_frame_gif_is_a_still_image(tmp_path, astronaut):
    path = tmp_path / "still.gif"
    Image.fromarray(astronaut[..., ::-1]).save(path)
    assert media_kind(path) == ("image", "gif")


def test_an_animated_webp_is_sampled_like_a_video(tmp_path, astronaut):
    frames = moving_face_frames(astronaut, 4, size=(128, 128))
    images = [Image.fromarray(f[..., ::-1]) for f in frames]
    path = tmp_path / "loop.webp"
    images[0].save(path, save_all=True, append_images=images[1:], duration=250, loop=0, lossless=True)
    assert media_kind(path) == ("video", "webp")
    info, sampled = sample_frames(path, 8)
    assert info.frame_count == 4 and info.duration == pytest.approx(1.0)
    assert [f.time for f in sampled] == [0.0, 0.25, 0.5, 0.75]
    assert [frame_number(f.image) for f in sampled] == [0, 1, 2, 3]


def test_a_hostile_gif_is_decoded_one_canvas_at_a_time_and_its_frames_scaled_down(tmp_path):
    # 16 frames of a 2000 x 2000 screen: 192 MB if every sampled frame were kept at full size.
    path = hostile_gif(tmp_path / "screen.gif", side=2000, frames=16)
    limits = MediaLimits(frame_pixels=250_000)
    tracemalloc.start()  # numpy's allocations are traced
    try:
        info, sampled = sample_frames(path, 16, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.width, info.height, info.frame_count) == (2000, 2000, 16)
    assert len(sampled) == 16
    assert all(f.image.shape[0] * f.image.shape[1] <= 250_000 for f in sampled)
    assert sampled[0].image.shape[:2] == (500, 500)
    assert peak < 40_000_000, f"{peak / 1e6:.0f} MB held at once"


def test_an_animation_over_the_painting_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    path = hostile_gif(tmp_path / "long.gif", side=6000, frames=40)  # 959 bytes, 1.44 Gpx to paint
    assert path.stat().st_size == 959
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a refused animation"))
    with pytest.raises(MediaTooLargeError, match=r"long.gif: the animation has 40 frames of 6000 x 6000 pixels; at most 27 frames of that size can be analysed"):
        sample_frames(path, 32)


def test_a_video_over_the_pixel_budget_is_refused_from_its_header(tmp_path, astronaut):
    path = write_video(tmp_path / "wide.avi", moving_face_frames(astronaut, 3, size=(640, 480)), fourcc="MJPG")
    with pytest.raises(MediaTooLargeError, match=r"wide.avi: the picture is 640 x 480 pixels"):
        sample_frames(path, 3, MediaLimits(max_pixels=300_000))


def test_video_frames_are_scaled_down_as_they_are_read(tmp_path, astronaut):
    path = write_video(tmp_path / "big.avi", moving_face_frames(astronaut, 4, size=(640, 480)), fourcc="MJPG")
    info, frames = sample_frames(path, 4, MediaLimits(frame_pixels=640 * 480 // 4))
    assert (info.width, info.height) == (640, 480)
    assert [f.image.shape[:2] for f in frames] == [(240, 320)] * 4


def test_a_long_video_is_sampled_by_seeking_to_the_same_frames_walking_gives(tmp_path, astronaut, monkeypatch):
    # OpenCV's mp4v writer puts a keyframe every 12 frames: 8 samples of 400 frames are 57 apart.
    path = write_video(tmp_path / "long.mp4", moving_face_frames(astronaut, 400, size=(160, 120)), fps=25)
    assert video.keyframe_index(path, 400, 25.0)[:3] == [0, 12, 24]
    plans = []
    monkeypatch.setattr(video, "seek_plan", lambda *a: plans.append(seek_plan(*a)) or plans[-1])
    info, seeking = sample_frames(path, 8)
    assert any(plans[0])
    monkeypatch.setattr(video, "_read_seeking", lambda *a: None)
    _, walking = sample_frames(path, 8)
    assert info.frame_count == 400 and [f.index for f in seeking] == sample_indices(400, 8)
    for a, b in zip(seeking, walking):
        assert a.index == b.index and np.array_equal(a.image, b.image)


def test_a_seek_is_planned_only_where_it_decodes_fewer_frames_than_walking():
    targets = [0, 100, 200, 300]
    assert seek_plan(targets, [0]) == [False, False, False, False]  # one keyframe: walk through
    assert seek_plan(targets, list(range(0, 400, 12))) == [False, True, True, True]
    assert seek_plan([0, 20, 40], list(range(0, 60, 12))) == [False, False, False]  # too close to pay


def test_a_video_with_b_frames_gives_the_same_frames_while_decoding_only_what_they_need(tmp_path, astronaut, monkeypatch):
    path = write_h264_with_b_frames(tmp_path / "online.mp4", moving_face_frames(astronaut, 60, size=(160, 120)))
    order = video_skipping.display_order(path, 60, 25.0)
    assert order is not None and sorted(order.values()) == list(range(60))
    read = video_skipping.read_skipping(
        path, sample_indices(60, 8), frame_pixels=10**6, frame_count=60, fps=25.0, threads=2,
        begin=lambda: None, keep=lambda index, image: image,
    )
    frames, size, decoded = read
    assert sorted(frames) == sample_indices(60, 8) and size == (160, 120)
    assert decoded < 0.7 * 60, "the B-frames nothing refers to were not decoded"
    info, skipping = sample_frames(path, 8)
    monkeypatch.setattr(video, "_read_skipping", lambda *a: None)
    _, walking = sample_frames(path, 8)
    assert info.frame_count == 60 and [f.index for f in skipping] == [f.index for f in walking] == sample_indices(60, 8)
    assert all(abs(frame_number(f.image) - f.index) <= 1 for f in skipping), "x264 moves the grey level a little"
    for a, b in zip(skipping, walking):
        assert np.array_equal(a.image, b.image), "the same pixels as OpenCV's full decode"


def test_a_video_without_b_frames_or_with_rotation_is_left_to_opencv(tmp_path, astronaut):
    plain = write_video(tmp_path / "plain.mp4", moving_face_frames(astronaut, 40, size=(160, 120)), fps=25)
    assert video_skipping.display_order(plain, 40, 25.0) is None
    upright = moving_face_frames(astronaut, 40, size=(240, 320))
    stored = write_h264_with_b_frames(tmp_path / "sideways.mp4", [np.ascontiguousarray(np.rot90(f)) for f in upright])
    phone = ffmpeg_rotate(stored, tmp_path / "phone.mp4", -90)
    info, frames = sample_frames(phone, 4)
    assert info.rotation == 90 and frames[0].image.shape[:2] == (320, 240)
    assert np.abs(frames[0].image.astype(int) - upright[0]).mean() < 8, "upright, as OpenCV turns it"


def test_a_header_that_disagrees_with_the_packets_is_left_to_opencv(tmp_path, astronaut):
    path = write_h264_with_b_frames(tmp_path / "online.mp4", moving_face_frames(astronaut, 30, size=(160, 120)))
    assert video_skipping.display_order(path, 30, 25.0) is not None
    assert video_skipping.display_order(path, 31, 25.0) is None, "a frame count the packets do not match"
    assert video_skipping.display_order(path, 30, 10.0) is None, "timestamps that do not step by the frame rate"
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("just words")
    assert video_skipping.display_order(not_a_video, 30, 25.0) is None, "a file PyAV cannot open"


def test_a_cut_off_video_with_b_frames_is_sampled_where_it_can_be_and_refused_clearly_where_not(tmp_path, astronaut):
    frames = moving_face_frames(astronaut, 30, size=(160, 120))
    for index_first in (True, False):
        path = write_h264_with_b_frames(tmp_path / f"{index_first}.mp4", frames, index_first=index_first)
        cut = tmp_path / f"cut-{index_first}.mp4"
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        if index_first:  # the header promises 30 frames, the packets stop half-way
            info, sampled = sample_frames(cut, 8)
            assert 0 < info.frame_count < 30 and sampled and all(f.index < info.frame_count for f in sampled)
        else:  # the index was at the end: nothing can be read
            with pytest.raises(MediaError):
                sample_frames(cut, 8)


def test_a_read_error_part_way_through_a_b_frame_video_leaves_it_to_opencv(tmp_path, astronaut, monkeypatch):
    import av

    path = write_h264_with_b_frames(tmp_path / "online.mp4", moving_face_frames(astronaut, 60, size=(160, 120)))
    real_open, opened = av.open, []

    class FailingHalfWay:
        """The second opening (the decoding pass) fails to read its 21st packet."""

        def __init__(self, container):
            self.container = container

        def __getattr__(self, name):
            return getattr(self.container, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

        def demux(self, stream):
            for count, packet in enumerate(self.container.demux(stream)):
                if count == 20:
                    raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
                yield packet

    def open_failing(*args, **kwargs):
        container = real_open(*args, **kwargs)
        opened.append(container)
        return FailingHalfWay(container) if len(opened) == 2 else container

    monkeypatch.setattr(av, "open", open_failing)
    info, frames = sample_frames(path, 8)
    assert len(opened) == 2, "the decoding pass was tried"
    assert info.frame_count == 60 and [f.index for f in frames] == sample_indices(60, 8), "OpenCV read them all"
    assert all(abs(frame_number(f.image) - f.index) <= 1 for f in frames)
