"""Recognise and decode media files by their content, never by their name.

Which formats are supported, and how a file's first bytes tell them apart, is `ml.sniff` (no
decoder imported there, for the web process). Supported stills: JPEG, PNG, WebP, BMP, AVIF.
Supported videos: MP4/MOV (ISO base media), AVI, WebM/MKV (Matroska). Animated GIF and animated WebP are treated as videos: their frames are
sampled like a video's, with timestamps from the frame durations. A single-frame GIF is a still.

Decoding has a pixel budget (`MediaLimits`), so that a small hostile file cannot make the engine
allocate gigabytes: the size of a still, of an animation's canvas and of a video's frames is read
from the header and refused before anything is decoded when it is over `max_pixels`; every
sampled video or animation frame is scaled down as it is read to at most `frame_pixels`; an
animation may make the decoder paint at most `max_animation_pixels` (canvas x frames).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from .results import MEDIA_IMAGE, MEDIA_VIDEO
# read_head and sniff_format are imported from here by ml/video.py.
from .sniff import IMAGE_FORMATS, REFUSED_FORMATS, read_head, sniff_format

# Pillow's own backstop against "decompression bombs": an error above twice this many pixels.
# `MediaLimits` refuses far smaller files first, with a clearer message.
Image.MAX_IMAGE_PIXELS = 80_000_000


@dataclass(frozen=True)
class MediaLimits:
    """How much a file may make the decoder allocate. The defaults suit a 2-core server."""

    # A still, an animation's canvas or a video frame: refused from its header above this.
    max_pixels: int = 50_000_000
    # Each sampled video or animation frame is scaled down to at most this many pixels.
    frame_pixels: int = 1920 * 1080
    # Canvas pixels x frames that an animation may make the decoder paint.
    max_animation_pixels: int = 1_000_000_000

    def __post_init__(self) -> None:
        for name in ("max_pixels", "frame_pixels", "max_animation_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"MediaLimits.{name} must be positive")


DEFAULT_LIMITS = MediaLimits()


def _megapixels(pixels: float) -> str:
    return f"{pixels / 1_000_000:.3g} megapixels"


MIN_SIDE = 8  # px: a picture or video narrower or lower than this is refused as too small for a face


def check_canvas(name: str, width: int, height: int, limits: MediaLimits) -> None:
    """Refuse a picture or a frame larger than the budget, before decoding it."""
    if width * height > limits.max_pixels:
        raise MediaTooLargeError(
            f"{name}: the picture is {width} x {height} pixels ({_megapixels(width * height)}); "
            f"the limit is {_megapixels(limits.max_pixels)}"
        )


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """The image scaled down (keeping its aspect ratio) to at most `max_pixels` pixels."""
    height, width = image.shape[:2]
    if width * height <= max_pixels:
        return image
    scale = (max_pixels / (width * height)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@contextmanager
def open_image(path: Path, limits: MediaLimits, *, what: str = "image") -> Iterator[Image.Image]:
    """Pillow's lazy image (only the header is read) after its size passed the budget.

    Decoding errors inside the block become MediaError.
    """
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x Pillow's backstop it only warns; our own check decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            if im.format == "JPEG":
                _draft_within(im, limits.max_pixels)
            check_canvas(path.name, *im.size, limits)
            yield im
    except Image.DecompressionBombError:
        raise MediaTooLargeError(
            f"{path.name}: the picture is larger than the limit of {_megapixels(limits.max_pixels)}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow's messages may name the file by its full path, which is the server's business.
        reason = str(exc).replace(f"'{path}'", f"'{path.name}'").replace(str(path), path.name)
        raise MediaError(f"{path.name}: cannot decode the {what} ({reason})") from None

def _draft_within(im: Image.Image, max_pixels: int) -> None:
    """Have a JPEG over the budget decoded at 1/2, 1/4 or 1/8 of its size (JPEG can, at a
    fraction of the cost), the largest of those within the budget: a 108-megapixel phone photo
    is then analysed at 27 instead of refused. Its `info["drafted_from"]` keeps the full size."""
    width, height = im.size
    factor = 1
    while width * height / (factor * factor) > max_pixels and factor < 8:
        factor *= 2
    if factor > 1:
        im.draft(im.mode, (-(-width // factor), -(-height // factor)))
        im.info["drafted_from"] = (width, height)


def drafted_size(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> tuple[int, int] | None:
    """(width, height) as a person sees it (EXIF orientation applied) of a JPEG that
    `load_image_bgr` decodes at a fraction of its size (`_draft_within`); None for any other
    picture, whose decoded size is its own. A result reports the file's own size, and its boxes
    in its pixels, as a video's does for frames read scaled down."""
    path = Path(path)
    with open_image(path, limits) as im:
        if "drafted_from" not in im.info:
            return None
        width, height = im.info["drafted_from"]
        if im.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8):  # a quarter turn
            width, height = height, width
    return width, height


def media_kind(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> tuple[str, str]:
    """(media type, container format) of a file, from its content.

    Raises UnsupportedMediaError when the content is not a supported image or video, and
    MediaTooLargeError when a still or an animation is over the pixel budget (from its header).
    """
    path = Path(path)
    head = read_head(path)
    fmt = sniff_format(head)
    if fmt in REFUSED_FORMATS:
        raise UnsupportedMediaError(f"{path.name}: {REFUSED_FORMATS[fmt]}")
    if fmt is None:
        raise UnsupportedMediaError(
            f"{path.name}: not a supported image (JPEG, PNG, WebP, BMP, GIF, AVIF) "
            "or video (MP4, MOV, AVI, WebM, MKV)"
        )
    if fmt in IMAGE_FORMATS:
        with open_image(path, limits) as im:  # the header only: refuses a bomb before decoding
            frames = getattr(im, "n_frames", 1) if fmt in ("gif", "webp") else 1
        if frames > 1:
            return MEDIA_VIDEO, fmt
    return (MEDIA_IMAGE if fmt in IMAGE_FORMATS else MEDIA_VIDEO), fmt


def load_image_bgr(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode a still image fully into a BGR uint8 array, honouring EXIF orientation.

    The size is checked from the header against `limits.max_pixels` before decoding. Pillow
    decodes everything (so a truncated file fails loudly instead of returning a half-grey
    picture) and `exif_transpose` turns phone photos upright, except the common case: a
    complete RGB or grey JPEG, which OpenCV decodes and turns upright itself, the same pixels
    (tested for all eight EXIF orientations) in 6 ms instead of 18 for a 1080p photo. Complete
    means it ends with the end-of-image marker, which a cut-off file lacks.
    """
    path = Path(path)
    with open_image(path, limits) as im:
        if im.format == "JPEG" and im.mode in ("RGB", "L") and "drafted_from" not in im.info and _ends_as_jpeg(path):
            image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise MediaError(f"{path.name}: cannot decode the image")
        else:
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # copies of a 1080p photo cost 5 ms each
            image = cv2.cvtColor(_as_rgb(im), cv2.COLOR_RGB2BGR)
    if image.ndim != 3 or image.shape[0] < MIN_SIDE or image.shape[1] < MIN_SIDE:
        raise MediaError(f"{path.name}: the image is too small to contain a face")
    return image


def _as_rgb(im: Image.Image) -> np.ndarray:
    """8-bit RGB pixels of a decoded picture as a person sees it: 16-bit grey scaled down (Pillow's
    own conversion clips it, turning most of a picture white), and transparent parts laid over
    white (a viewer shows them over the page; the pixels hidden under them are not judged)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I"):
        grey = np.asarray(im, dtype=np.float32)
        if im.mode != "I" or grey.max() > 255:  # 16-bit values
            grey = grey / 257.0
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        flat = Image.new("RGBA", im.size, (255, 255, 255, 255))
        flat.alpha_composite(im.convert("RGBA"))
        return np.asarray(flat.convert("RGB"))
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def _ends_as_jpeg(path: Path) -> bool:
    """Whether the file's last two bytes are JPEG's end-of-image marker (FF D9)."""
    with open(path, "rb") as f:
        f.seek(-2, 2)
        return f.read(2) == b"\xff\xd9"
