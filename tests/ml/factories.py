"""Test media written on the fly: videos of a moving face, rotated copies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], *, fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving_face_frames(face: np.ndarray, count: int, *, size: tuple[int, int] = (480, 360)) -> list[np.ndarray]:
    """The face pasted on a grey background, moving left to right, one frame each step;
    each frame also carries its index as a grey level (4 x index) in the top-left corner."""
    width, height = size
    side = min(height, width) * 2 // 3
    small = cv2.resize(face, (side, side))
    top = (height - side) // 2
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 90, np.uint8)
        x = int((width - side) * i / max(1, count - 1))
        frame[top : top + side, x : x + side] = small
        frame[:16, :16] = min(255, i * 4)
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
