"""Recognise and decode media files by their content, never by their name.

Supported stills: JPEG, PNG, WebP, BMP. Supported videos: MP4/MOV (ISO base media), AVI,
WebM/MKV (Matroska). Animated GIF and animated WebP are treated as videos: their frames are
sampled like a video's, with timestamps from the frame durations. A single-frame GIF is a still.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError, UnsupportedMediaError
from .results import MEDIA_IMAGE, MEDIA_VIDEO

# Pillow must refuse absurd images instead of allocating gigabytes (a "decompression bomb").
Image.MAX_IMAGE_PIXELS = 80_000_000

HEAD_BYTES = 64
IMAGE_FORMATS = ("jpeg", "png", "webp", "bmp", "gif")
VIDEO_FORMATS = ("mp4", "avi", "matroska")
_ISO_BRANDS_HINT = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def sniff_format(head: bytes) -> str | None:
    """The container format from a file's first bytes (at least 12), or None if unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[4:8] in _ISO_BRANDS_HINT:
        return "mp4"
    return None


def sniff_media_type(head: bytes) -> str | None:
    """"image", "video" or None from a file's first bytes.

    Animated GIF/WebP cannot be told from the first bytes alone; they count as "image" here
    and `open_media` decides when it decodes them.
    """
    fmt = sniff_format(head)
    if fmt in IMAGE_FORMATS:
        return MEDIA_IMAGE
    if fmt in VIDEO_FORMATS:
        return MEDIA_VIDEO
    return None


def read_head(path: str | Path) -> bytes:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except FileNotFoundError:
        raise MediaError(f"{path.name}: file not found") from None
    except IsADirectoryError:
        raise MediaError(f"{path.name}: is a directory, not a file") from None
    if not head:
        raise MediaError(f"{path.name}: the file is empty")
    return head


def media_kind(path: str | Path) -> tuple[str, str]:
    """(media type, container format) of a file, from its content.

    Raises UnsupportedMediaError when the content is not a supported image or video.
    """
    path = Path(path)
    head = read_head(path)
    fmt = sniff_format(head)
    if fmt is None:
        raise UnsupportedMediaError(
            f"{path.name}: not a supported image (JPEG, PNG, WebP, BMP, GIF) "
            "or video (MP4, MOV, AVI, WebM, MKV)"
        )
    if fmt in ("gif", "webp") and _frame_count_pillow(path) > 1:
        return MEDIA_VIDEO, fmt
    return (MEDIA_IMAGE if fmt in IMAGE_FORMATS else MEDIA_VIDEO), fmt


def _frame_count_pillow(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError(f"{path.name}: cannot decode the image ({exc})") from None


def load_image_bgr(path: str | Path) -> np.ndarray:
    """Decode a still image fully into a BGR uint8 array, honouring EXIF orientation.

    Pillow decodes everything here (so a truncated file fails loudly instead of returning a
    half-grey picture) and `exif_transpose` turns phone photos upright.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError:
        raise MediaError(f"{path.name}: the image is too large to analyse") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path.name}: cannot decode the image ({exc})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise MediaError(f"{path.name}: the image is too small to contain a face")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
