"""Media and models every test makes for itself (nothing from ../shared): the astronaut photo,
videos written with OpenCV, phone-rotated copies, hostile GIFs and an untrained checkpoint.
Framework-free, so the ml tests and the Django tests share it."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import skimage.data


@functools.cache
def astronaut_bgr(side: int | None = None) -> np.ndarray:
    """A real, public-domain photo with one frontal face, as BGR (512 px, or `side` px square).
    Cached: copy it before writing into it."""
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    if side is None:
        return image
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def faces_of_the_astronaut(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    """The astronaut photo and pictures made from it: mirrored, darker, small in a large frame."""
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[90:990, 510:1410] = cv2.resize(astronaut, (900, 900), interpolation=cv2.INTER_AREA)
    return {
        "astronaut": astronaut,
        "mirrored": np.ascontiguousarray(astronaut[:, ::-1]),
        "darker": cv2.convertScaleAbs(astronaut, alpha=0.6, beta=0),
        "small-in-1080p": canvas,
    }


def write_video(path: Path, frames: list[np.ndarray], *, fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def write_h264_with_b_frames(path: Path, frames: list[np.ndarray], *, fps: int = 25, index_first: bool = False) -> Path:
    """An H.264 MP4 as x264 writes most video found online: three B-frames between references,
    the middle one a reference too (b-pyramid), the other two referred to by nothing. Nearly
    lossless (CRF 4: the grey level each frame carries survives within a step; x264 writes no
    B-frames at all when lossless). `index_first`: the sample index before the media data, as
    files prepared for streaming have it."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", options={"movflags": "faststart"} if index_first else {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "4", "x264-params": "bframes=3:b-adapt=0:b-pyramid=normal:keyint=250"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def video_bytes(frames: list[np.ndarray], *, fps: float = 10.0, fourcc: str = "mp4v") -> bytes:
    """The content of a video of `frames`, written in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        return write_video(Path(folder) / "clip.mp4", frames, fps=fps, fourcc=fourcc).read_bytes()


def untrained_checkpoint(path: Path) -> Path:
    """A checkpoint with random weights: enough to drive the pipeline, never to judge verdicts."""
    from ml.model import build_model, save_checkpoint

    return save_checkpoint(
        build_model(arch="resnet18"),
        path,
        threshold=0.5,
        name="untrained-test-model",
        training={"note": "random weights, for the tests"},
    )


def moving_face_frames(photo: np.ndarray, count: int, *, size: tuple[int, int] = (256, 256)) -> list[np.ndarray]:
    """The photo panning sideways (60 px each way), resized to `size` (width, height); each frame
    carries its index as a grey level (4 x index) in its top-left corner."""
    height, width = photo.shape[:2]
    frames = []
    for i in range(count):
        shift = -60 + 120 * i / max(1, count - 1)
        moved = cv2.warpAffine(photo, np.float32([[1, 0, shift], [0, 1, 0]]), (width, height),
                               borderMode=cv2.BORDER_REFLECT)
        frame = cv2.resize(moved, size, interpolation=cv2.INTER_AREA)
        frame[:12, :12] = min(255, i * 4)
        frames.append(frame)
    return frames


def ffmpeg_rotate(source: Path, target: Path, degrees: int) -> Path:
    """Copy a video, adding display-rotation metadata as a phone would."""
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", str(degrees),
         "-i", str(source), "-c", "copy", str(target)],
        check=True,
    )
    return target


def hostile_gif(path: Path, *, side: int, frames: int = 40) -> Path:
    """A tiny GIF that declares a `side` x `side` screen and holds `frames` frames of one pixel
    each: a few hundred bytes on disk that a naive decoder turns into full-screen frames."""
    import struct

    header = b"GIF89a" + struct.pack("<HH", side, side) + bytes([0x80, 0, 0])  # 2-colour table
    palette = b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    body = b""
    for i in range(frames):
        control = b"\x21\xf9\x04\x00" + struct.pack("<H", 10) + b"\x00\x00"  # 100 ms
        descriptor = b"\x2c" + struct.pack("<HHHH", i % side, 0, 1, 1) + b"\x00"
        pixels = b"\x02\x02\x44\x01\x00"  # LZW, minimum code size 2: clear, index 1, end
        body += control + descriptor + pixels
    path.write_bytes(header + palette + loop + body + b"\x3b")
    return path


def write_sound_only_mp4(path: Path, *, seconds: float = 0.5) -> Path:
    """An MP4 with one AAC audio track and no video (silence), written with PyAV."""
    import av

    rate, samples = 44100, 1024
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        for i in range(int(seconds * rate / samples) + 1):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * samples
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def blank_one_mjpeg_frame(path: Path, index: int) -> Path:
    """Overwrite the JPEG data of frame `index` of an MJPEG AVI with zeros, as damage in
    storage or transfer would, leaving the container's chunks in place."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    begin, end = starts[index], starts[index + 1] - 8  # the next frame's chunk header stays
    data[begin:end] = bytes(end - begin)
    path.write_bytes(bytes(data))
    return path


def write_matroska_saying_half_its_length(path: Path, frames: list[np.ndarray], *, fps: int = 10) -> Path:
    """An MKV (MPEG-4 part 2, no B-frames) whose header's Duration element states half the real
    length, as a recording cut off while writing its header can."""
    import struct

    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qscale": "2"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float (milliseconds)
    (stated,) = struct.unpack(">d", data[at + 3 : at + 11])
    data[at + 3 : at + 11] = struct.pack(">d", stated / 2)
    path.write_bytes(bytes(data))
    return path


def write_variable_rate_video(path: Path, frames: list[np.ndarray], times_s: list[float]) -> Path:
    """An MKV (MPEG-4 part 2, no B-frames) whose frames show at `times_s`, not evenly spaced,
    as a phone records in poor light; its header states an average frame rate."""
    from fractions import Fraction

    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"qscale": "2"}
        for image, at in zip(frames, times_s):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(at * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_video_with_a_preview_track_first(path: Path, frames: list[np.ndarray], *, preview: tuple[int, int] = (160, 90)) -> Path:
    """An MKV whose first video track is a small plain preview and whose second holds `frames`,
    as some cameras record: what OpenCV reads is the first."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="matroska") as container:
        side = container.add_stream("mpeg4", rate=25)
        side.width, side.height, side.pix_fmt = preview[0], preview[1], "yuv420p"
        main = container.add_stream("mpeg4", rate=25)
        main.width, main.height, main.pix_fmt = width, height, "yuv420p"
        plain = np.full((preview[1], preview[0], 3), 128, np.uint8)
        for image in frames:
            container.mux(side.encode(av.VideoFrame.from_ndarray(plain, format="bgr24")))
            container.mux(main.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(side.encode(None))
        container.mux(main.encode(None))
    return path
