"""Video metadata and frame sampling.

Sampling policy: K frames (default 32, the DeepfakeBench protocol) spread evenly over the whole
video, first and last frame included (`sample_indices`). A video shorter than K frames gives all
its frames. Frames are skipped with `grab()` and only the sampled ones are converted with
`retrieve()`. Seeking (CAP_PROP_POS_FRAMES) decodes from a keyframe before the target each time:
on a clip with one keyframe in 163 frames it was 7x slower than walking through, on a clip with
a keyframe every 12 frames twice as fast. So a long video's keyframes are listed first from its
packets (no decoding, about 10 ms for 1,800 frames; `keyframe_index`), and a sampled frame is
reached by a seek only where that decodes fewer frames than walking there (`seek_plan`). The
frames are the same either way; seeking is used only on constant-frame-rate streams whose packet
count matches the header, and any surprise falls back to walking through. A video with
B-frames that is not read by seeks is read by PyAV instead, which skips the frames nothing refers
to (ml/video_skipping.py: the same frames, 40 % less decoding on a DFDC clip).

The frame count in a container header can be wrong. When the stream ends before the header said
it would, the frames that really exist are counted and sampled again evenly, so the samples
always cover the real length. Rotation metadata (phone videos) is applied, so frames come out
upright; `VideoInfo.rotation` reports what the file said.

Animated GIF and WebP files go through Pillow with the same sampling policy, in one pass that
holds a single decoded canvas at a time.

Memory stays bounded whatever the file says (`ml.media.MediaLimits`): the frame size is checked
from the header before decoding, and every kept frame is scaled down to `frame_pixels` as it is
read, so K frames of a huge video or animation never sit in memory at full size. `VideoInfo`
reports the file's own (upright) size; the sampled frames may be smaller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageSequence

from .errors import MediaError, MediaTooLargeError
from .media import DEFAULT_LIMITS, MIN_SIDE, MediaLimits, check_canvas, fit_pixels, load_image_bgr, media_kind, open_image, read_head, sniff_format
from .results import MEDIA_VIDEO
from .video_skipping import read_skipping

DEFAULT_FRAMES = 32


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    fps: float
    duration: float  # seconds
    width: int  # of upright frames, after rotation
    height: int
    rotation: int  # degrees clockwise stated by the file's metadata (0, 90, 180, 270)


@dataclass(frozen=True)
class SampledFrame:
    index: int
    time: float  # seconds from the start
    image: np.ndarray | None  # BGR uint8, upright; None where a FrameSink took it


class FrameSink(Protocol):
    """Takes sampled frames as they are decoded, so that a caller never holds them all at once
    (the detector: ml/frames.py). `begin` starts a pass over the frames at `indices` (at
    `times`, in seconds), and forgets any earlier pass: a pass is started again when the file turns
    out shorter than its header said, or when seeking is given up for walking. `add` is called
    for each frame of the pass, in increasing index order (a frame that fails to decode is
    skipped), with the frame's own timestamp where the decoder gives one (a video whose frame
    rate varies shows frame i later or earlier than i / fps)."""

    def begin(self, indices: list[int], times: list[float]) -> None: ...

    def add(self, index: int, image: np.ndarray, time: float | None = None) -> None: ...


def frame_time(index: int, fps: float) -> float:
    """When frame `index` shows, in seconds (0 when the file states no frame rate)."""
    return round(index / fps, 3) if fps else 0.0


def sample_indices(frame_count: int, k: int = DEFAULT_FRAMES) -> list[int]:
    """K frame indices spread evenly over [0, frame_count), first and last included."""
    if frame_count <= 0:
        return []
    if k <= 0:
        raise ValueError("k must be positive")
    if frame_count <= k:
        return list(range(frame_count))
    if k == 1:
        return [0]
    return sorted({round(i * (frame_count - 1) / (k - 1)) for i in range(k)})


def _is_animation(path: Path) -> bool:
    return sniff_format(read_head(path)) in ("gif", "webp")


def _decoder_threads() -> int:
    """FFmpeg decoding threads: one per core this process may run on. FFmpeg's own default
    (0, chosen by OpenCV) decoded a 10 s 1080p H.264 clip in 790-850 ms on 2 cores; 2 threads
    in 680-740 ms."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, _decoder_threads()])
    if not cap.isOpened():
        cap.release()
        if _holds_no_picture(path):
            raise MediaError(f"{path.name}: the file has no video track (sound only?); upload a video or a photo")
        raise MediaError(f"{path.name}: cannot open the video (corrupt or unsupported codec)")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


# A second video track this many times the first's pixels is the main one.
MAIN_TRACK_RATIO = 2


def _refuse_a_side_track(path: Path, info: VideoInfo) -> None:
    """Raises MediaError when OpenCV, which reads a file's first video track and cannot be told
    another, would read a small side track (a preview) instead of the main picture. Cover
    pictures are no such track: MP4 stores one after the video, MKV as an attachment, and both
    are marked as pictures."""
    import av

    try:
        with av.open(str(path)) as container:
            tracks = [
                (s.codec_context.width or 0, s.codec_context.height or 0)
                for s in container.streams.video
                if not s.disposition & av.stream.Disposition.attached_pic
            ]
    except (av.FFmpegError, OSError, ValueError):
        return
    if len(tracks) < 2:
        return
    first = info.width * info.height
    width, height = max(tracks, key=lambda size: size[0] * size[1])
    if width * height >= MAIN_TRACK_RATIO * max(first, 1):
        raise MediaError(
            f"{path.name}: the file holds {len(tracks)} video tracks and only the first "
            f"({info.width} x {info.height}) can be read here, not the main one ({width} x {height}); "
            "save the video with its main track alone and upload that"
        )


def _holds_no_picture(path: Path) -> bool:
    """Whether FFmpeg (through PyAV) can read the container and finds no video stream in it:
    an audio-only MP4, which OpenCV only reports as a file it cannot open."""
    import av

    try:
        with av.open(str(path)) as container:
            return not container.streams.video
    except (av.FFmpegError, OSError, ValueError):
        return False


# A frame OpenCV cannot decode (a damaged JPEG in an MJPEG AVI, a lost packet) fails its grab
# and the next one goes on; only this many failures in a row mean the stream has ended.
MAX_BAD_FRAMES = 4


def _read_at(
    cap: cv2.VideoCapture, targets: list[int], frame_pixels: int, sink: FrameSink | None = None, fps: float = 0.0
) -> tuple[dict[int, np.ndarray | None], int, tuple[int, int] | None, dict[int, float]]:
    """Decode the frames at `targets`, each scaled down to `frame_pixels`; return them (None for
    those handed to `sink`), how many frames were walked through, the (width, height) of the
    decoded frames and each decoded target's timestamp in seconds (see `_timestamps`)."""
    _begin_pass(sink, targets, fps)
    wanted = set(targets)
    last = max(targets)
    frames: dict[int, np.ndarray] = {}
    stamps: dict[int, float] = {}
    size = None
    position = 0
    failed = 0  # frames in a row that would not decode
    while position <= last:
        if not cap.grab():
            failed += 1
            if failed > MAX_BAD_FRAMES:  # the end of the stream, not a damaged frame
                position -= failed - 1
                break
            position += 1  # a damaged frame still takes its place in the stream
            continue
        failed = 0
        if position in wanted:
            ok, image = cap.retrieve()
            if ok and image is not None:
                size = size or (image.shape[1], image.shape[0])
                stamps[position] = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                nominal = frame_time(position, fps)
                shown = _timestamp(stamps[position], nominal, stamps, position)
                frames[position] = _kept(position, fit_pixels(image, frame_pixels), sink, shown)
        position += 1
    return frames, position, size, _timestamps(stamps)


def _timestamp(stamp: float, nominal: float, stamps: dict[int, float], position: int) -> float | None:
    """A decoded frame's own time where it can be trusted (after the frames before it), else
    None (the caller's i / fps stands)."""
    earlier = [t for i, t in stamps.items() if i < position]
    if (stamp <= 0 and position > 0) or (earlier and stamp <= max(earlier)):
        return None
    return round(stamp, 3) if abs(stamp - nominal) > 0.0005 else None


def _timestamps(stamps: dict[int, float]) -> dict[int, float]:
    """The frames' own times (seconds) when they increase with the frames, as in any
    well-formed file; empty otherwise, and the times come from i / fps. A phone's variable frame rate makes
    them differ: frame 89 of a test clip showed at 6.49 s, not the 3.56 s that 89 / 25 gives."""
    order = sorted(stamps)
    times = [stamps[i] for i in order]
    if not times or any(b <= a for a, b in zip(times, times[1:])) or (order[0] > 0 and times[0] <= 0):
        return {}
    return {i: round(stamps[i], 3) for i in order}


def _begin_pass(sink: FrameSink | None, targets: list[int], fps: float) -> None:
    """Start `sink`'s pass over the frames at `targets` (nothing without a sink)."""
    if sink is not None:
        sink.begin(list(targets), [frame_time(i, fps) for i in targets])


def _kept(index: int, image: np.ndarray, sink: FrameSink | None, time: float | None = None) -> np.ndarray | None:
    """The frame to keep, or None once `sink` has taken it."""
    if sink is None:
        return image
    sink.add(index, image, time)
    return None


# OpenCV's seek lands on the keyframe at or before (target - 16) and decodes forward from there;
# starting over costs about as much as decoding this many more frames (decoder flush and refill).
_SEEK_BACKOFF = 16
_SEEK_OVERHEAD = 8
# Below this many frames between samples, seeking cannot pay: the keyframes are not even listed.
_MIN_SEEK_GAP = _SEEK_BACKOFF + _SEEK_OVERHEAD + 8


def keyframe_index(path: Path, frame_count: int, fps: float) -> list[int] | None:
    """Display indices of the video's keyframes, read from its packets without decoding them;
    None when the stream cannot be trusted for frame-exact seeks (no frame rate, timestamps not
    evenly spaced, or a packet count other than `frame_count`)."""
    if fps <= 0 or frame_count <= 0:
        return None
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    stamps, keys = [], []
    try:
        if not cap.isOpened():
            return None
        while cap.grab():
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            keys.append(bool(cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME)))
            if len(stamps) > frame_count:
                return None
    finally:
        cap.release()
    if len(stamps) != frame_count or not keys[0]:
        return None
    order = np.argsort(stamps, kind="stable")
    steps = np.diff(np.asarray(stamps)[order])
    period = 1000.0 / fps
    if len(steps) and float(np.abs(steps - period).max()) > 0.05 * period:
        return None
    display = np.empty(frame_count, np.int64)
    display[order] = np.arange(frame_count)
    return sorted(int(display[i]) for i in range(frame_count) if keys[i])


def seek_plan(targets: list[int], keyframes: list[int]) -> list[bool]:
    """For each target (increasing), whether to seek to it (True) or walk there with grab()."""
    plan = []
    position = 0  # the next frame grab() would decode
    for target in targets:
        start = max(0, target - _SEEK_BACKOFF)
        keyframe = max((k for k in keyframes if k <= start), default=0)
        seek_cost = target - keyframe + 1 + _SEEK_OVERHEAD
        walk_cost = target - position + 1
        plan.append(seek_cost < walk_cost)
        position = target + 1
    return plan


def _read_seeking(
    path: Path, info: VideoInfo, targets: list[int], frame_pixels: int, sink: FrameSink | None = None
) -> tuple[dict[int, np.ndarray | None], tuple[int, int] | None] | None:
    """The frames at `targets` reached by seeks where `seek_plan` says they pay; None when they
    would not, or when anything is off (the caller then walks through the file)."""
    if len(targets) < 2 or (targets[-1] - targets[0]) / (len(targets) - 1) < _MIN_SEEK_GAP:
        return None
    keyframes = keyframe_index(path, info.frame_count, info.fps)
    if not keyframes:
        return None
    plan = seek_plan(targets, keyframes)
    if not any(plan):
        return None
    cap = _open(path)
    frames: dict[int, np.ndarray | None] = {}
    size = None
    position = 0
    _begin_pass(sink, targets, info.fps)
    try:
        for target, seek in zip(targets, plan):
            if seek:
                cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                position = target
            while position < target:
                if not cap.grab():
                    return None
                position += 1
            ok, image = cap.read()
            position += 1
            if not ok or image is None or round(cap.get(cv2.CAP_PROP_POS_FRAMES)) != position:
                return None
            size = size or (image.shape[1], image.shape[0])
            frames[target] = _kept(target, fit_pixels(image, frame_pixels), sink)
    finally:
        cap.release()
    return frames, size


def _read_skipping(
    path: Path, info: VideoInfo, targets: list[int], frame_pixels: int, sink: FrameSink | None
) -> tuple[dict[int, np.ndarray | None], tuple[int, int] | None] | None:
    """The frames at `targets` decoded by PyAV, skipping the frames nothing refers to; None when
    the file is not one that path reads (ml/video_skipping.py)."""
    read = read_skipping(
        path, targets, frame_pixels=frame_pixels, frame_count=info.frame_count, fps=info.fps,
        threads=_decoder_threads(), begin=lambda: _begin_pass(sink, targets, info.fps),
        keep=lambda index, image: _kept(index, image, sink),
    )
    return None if read is None else read[:2]


def _count_frames(cap: cv2.VideoCapture) -> int:
    """Frames up to the end of the stream, damaged ones (see MAX_BAD_FRAMES) included."""
    count = failed = 0
    while failed <= MAX_BAD_FRAMES:
        if cap.grab():
            count += failed + 1
            failed = 0
        else:
            failed += 1
    return count


def video_info(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Metadata from the container header (the frame count may be wrong on broken files)."""
    path = Path(path)
    if _is_animation(path):
        return _sample_animation(path, 0, limits)[0]
    cap = _open(path)
    try:
        return _info_from_capture(cap)
    finally:
        cap.release()


def _info_from_capture(cap: cv2.VideoCapture) -> VideoInfo:
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 0.0
    rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    # With CAP_PROP_ORIENTATION_AUTO on, OpenCV reports the size of the upright frames.
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    duration = count / fps if fps and count > 0 else 0.0
    return VideoInfo(max(count, 0), fps, duration, width, height, rotation)


def sample_frames(
    path: str | Path, k: int = DEFAULT_FRAMES, limits: MediaLimits = DEFAULT_LIMITS, *, sink: FrameSink | None = None
) -> tuple[VideoInfo, list[SampledFrame]]:
    """Metadata (with the true frame count) and K evenly spaced, decoded, upright frames, each
    scaled down to at most `limits.frame_pixels`. With a `sink`, each frame goes to it as it is
    decoded and the returned frames carry no image.

    Raises MediaTooLargeError, before decoding any frame, when the header states frames larger
    than `limits.max_pixels`.
    """
    path = Path(path)
    if _is_animation(path):
        info, sampled = _sample_animation(path, k, limits)
        if sink is None:
            return info, sampled
        sink.begin([f.index for f in sampled], [f.time for f in sampled])
        for frame in sampled:
            sink.add(frame.index, frame.image)
        return info, [SampledFrame(f.index, f.time, None) for f in sampled]
    cap = _open(path)
    try:
        info = _info_from_capture(cap)
        check_canvas(path.name, info.width, info.height, limits)
        if 0 < min(info.width, info.height) < MIN_SIDE:  # as a photo this small is (ml/media.py)
            raise MediaError(f"{path.name}: the video is too small to contain a face ({info.width} x {info.height} pixels)")
        _refuse_a_side_track(path, info)
        count = info.frame_count
        frames: dict[int, np.ndarray | None] = {}
        stamps: dict[int, float] = {}
        size = None
        seeking = _read_seeking(path, info, sample_indices(count, k), limits.frame_pixels, sink) if count > 0 else None
        skipping = None
        if seeking is None and count > 0 and info.rotation == 0:
            skipping = _read_skipping(path, info, sample_indices(count, k), limits.frame_pixels, sink)
        if seeking is not None:
            frames, size = seeking
        elif skipping is not None:
            frames, size = skipping
        elif count > 0:
            frames, walked, size, stamps = _read_at(cap, sample_indices(count, k), limits.frame_pixels, sink, info.fps)
            if walked < count:  # the header overstated the length: sample what exists
                count, frames = walked, {}
            elif cap.grab():  # it understated it (a recording cut short while writing its header):
                count, frames = walked + 1 + _count_frames(cap), {}  # sample the whole of it
        else:  # no length in the header: count what decodes
            count = _count_frames(cap)
        if not frames and count > 0:
            cap.release()
            cap = _open(path)
            frames, _, size, stamps = _read_at(cap, sample_indices(count, k), limits.frame_pixels, sink, info.fps)
    finally:
        cap.release()
    if not frames or size is None:
        raise MediaError(f"{path.name}: no decodable video frames")
    width, height = size
    check_canvas(path.name, width, height, limits)  # the header may have understated it
    fps = info.fps
    duration = count / fps if fps else 0.0
    if stamps and fps:  # a variable frame rate: the last frame may show later than count / fps
        shown_until = stamps[max(stamps)] + (count - max(stamps)) / fps
        if shown_until - duration > 1.0 / fps:
            duration = shown_until
    info = VideoInfo(count, fps, duration, width, height, info.rotation)
    sampled = [
        SampledFrame(index=i, time=stamps.get(i, frame_time(i, fps)), image=frames[i])
        for i in sorted(frames)
    ]
    return info, sampled


def _duration_ms(frame: Image.Image) -> int:
    """How long an animation frame shows; 100 ms when the file does not say. Pillow fills in a
    WebP frame's duration only once the frame is decoded."""
    frame.load()
    return frame.info.get("duration") or 100


def _sample_animation(path: Path, k: int, limits: MediaLimits) -> tuple[VideoInfo, list[SampledFrame]]:
    """One pass over an animation: every frame's duration, and the K sampled frames scaled
    down as they are decoded (k=0: the metadata only). The canvas size and the total number
    of pixels to paint are checked from the header first."""
    sampled = []
    elapsed_ms = 0
    with open_image(path, limits, what="animation") as im:
        width, height = im.size
        count = getattr(im, "n_frames", 1)
        painted = width * height * count
        if painted > limits.max_animation_pixels:
            raise MediaTooLargeError(
                f"{path.name}: the animation has {count} frames of {width} x {height} pixels; "
                f"at most {limits.max_animation_pixels // (width * height)} frames of that size "
                "can be analysed"
            )
        wanted = set(sample_indices(count, k)) if k > 0 else set()
        for index, frame in enumerate(ImageSequence.Iterator(im)):
            duration_ms = _duration_ms(frame)
            if index in wanted:
                rgb = fit_pixels(np.asarray(frame.convert("RGB")), limits.frame_pixels)
                image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                sampled.append(SampledFrame(index, round(elapsed_ms / 1000, 3), image))
            elapsed_ms += duration_ms
    if k > 0 and not sampled:
        raise MediaError(f"{path.name}: no decodable frames")
    duration = elapsed_ms / 1000
    fps = count / duration if duration else 0.0
    return VideoInfo(count, fps, duration, width, height, 0), sampled


def read_frames(
    path: str | Path, max_frames: int = DEFAULT_FRAMES, limits: MediaLimits = DEFAULT_LIMITS
) -> list[tuple[int, np.ndarray]]:
    """(frame index, BGR image) pairs of any supported file: a photo is one frame (index 0), a
    video or an animation gives `max_frames` evenly spaced frames. For the tools (dataset
    preparation, the face check); the detector also keeps each frame's time."""
    media_type, _ = media_kind(path, limits)
    if media_type == MEDIA_VIDEO:
        _, sampled = sample_frames(path, max_frames, limits)
        return [(f.index, f.image) for f in sampled]
    return [(0, load_image_bgr(path, limits))]
