import numpy as np
import pytest
from PIL import Image

from ml.errors import MediaError
from ml.media import media_kind
from ml.video import sample_frames, sample_indices, video_info

from .factories import ffmpeg_rotate, moving_face_frames, write_video


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
