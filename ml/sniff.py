"""What a file is, from its first bytes: the only media code a web process needs.

It imports neither cv2 nor numpy nor Pillow, so that the site can refuse a wrong upload before
it stores it without paying for the decoders (`ml.media` decodes, and re-exports these names).

Supported stills: JPEG, PNG, WebP, BMP, GIF, AVIF (Pillow decodes AVIF natively). Supported
videos: MP4/MOV (ISO base media), AVI, WebM and MKV (Matroska; the EBML header's DocType tells
them apart). Animated GIF and WebP start as "image" here; `ml.media.media_kind` counts their
frames when it opens them.

ISO base media files (MP4, MOV, HEIC, AVIF) share one container; the brands of the leading
`ftyp` box tell a photo from a video. HEIC/HEIF photos (an iPhone's default) and animated AVIF
are refused with a message that says what to do, instead of being mistaken for a video.
"""

from __future__ import annotations

from pathlib import Path

from .errors import MediaError, MediaMissingError
from .results import MEDIA_IMAGE, MEDIA_VIDEO

HEAD_BYTES = 64
IMAGE_FORMATS = ("jpeg", "png", "webp", "bmp", "gif", "avif")
VIDEO_FORMATS = ("mp4", "avi", "webm", "matroska")

# The content type a supported format is served with (a download's type follows its content,
# never the name it was uploaded under).
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "avif": "image/avif",
    "mp4": "video/mp4",
    "avi": "video/x-msvideo",
    "webm": "video/webm",
    "matroska": "video/x-matroska",
}

# Recognised formats that are refused, each with what the person should do instead.
REFUSED_FORMATS = {
    "heif": (
        "HEIC/HEIF photos are not supported. Save the photo as JPEG and upload that (on an "
        "iPhone: Settings > Camera > Formats > Most Compatible)."
    ),
    "avif-sequence": "Animated AVIF files are not supported. Upload the clip as an MP4 or WebM video.",
}

# Boxes that may open an ISO base media file (QuickTime files may start without `ftyp`).
_ISO_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_AVIF_STILL_BRANDS = {b"avif"}
_AVIF_SEQUENCE_BRANDS = {b"avis"}
_HEVC_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
# Generic HEIF brands: a photo when major, but MP4 files may list them among compatible ones.
_HEIF_BRANDS = _HEVC_IMAGE_BRANDS | {b"mif1", b"msf1"}


def ftyp_brands(head: bytes) -> tuple[bytes, set[bytes]]:
    """(major brand, every brand) of a leading `ftyp` box; (b"", empty) when there is none."""
    if head[4:8] != b"ftyp" or len(head) < 12:
        return b"", set()
    size = int.from_bytes(head[:4], "big")
    end = min(size if size >= 16 else len(head), len(head))
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    return major, brands


def _iso_format(head: bytes) -> str:
    major, brands = ftyp_brands(head)
    if brands & _AVIF_SEQUENCE_BRANDS:
        return "avif-sequence"
    if brands & _AVIF_STILL_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS or brands & _HEVC_IMAGE_BRANDS:
        return "heif"
    return "mp4"


def _vint(head: bytes, pos: int) -> tuple[int, int]:
    """An EBML variable-length integer at `pos`: (its length in bytes, its value without the
    length marker); (0, 0) where none can be read."""
    if pos >= len(head) or not head[pos]:
        return 0, 0
    length = 9 - head[pos].bit_length()
    if pos + length > len(head):
        return 0, 0
    return length, int.from_bytes(head[pos : pos + length], "big") & ((1 << (7 * length)) - 1)


def _ebml_doctype(head: bytes) -> bytes:
    """The DocType of the EBML header that opens `head` (b"webm", b"matroska"), or b"" when it is
    not within `head`. The header's elements come one after the other: an id (its length marker
    kept), a size, then that many bytes (a string may end in zero bytes)."""
    header_size_length, _ = _vint(head, 4)  # past the EBML magic
    if not header_size_length:
        return b""
    pos = 4 + header_size_length
    while True:
        id_length, _ = _vint(head, pos)
        size_length, size = _vint(head, pos + id_length)
        if not id_length or id_length > 4 or not size_length:
            return b""
        start = pos + id_length + size_length
        if head[pos : pos + id_length] == b"\x42\x82":
            return head[start : start + size].rstrip(b"\0") if start + size <= len(head) else b""
        pos = start + size


def sniff_format(head: bytes) -> str | None:
    """The container format from a file's first bytes (at least 12), or None if unknown.

    A format in `REFUSED_FORMATS` is recognised but not supported.
    """
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
        return "webm" if _ebml_doctype(head) == b"webm" else "matroska"
    if head[4:8] in _ISO_FIRST_BOXES:
        return _iso_format(head)
    return None


def sniff_media_type(head: bytes) -> str | None:
    """"image", "video" or None (unknown or refused) from a file's first bytes.

    Animated GIF/WebP cannot be told from the first bytes alone; they count as "image" here
    and `ml.media.media_kind` decides when it opens them.
    """
    fmt = sniff_format(head)
    if fmt in IMAGE_FORMATS:
        return MEDIA_IMAGE
    if fmt in VIDEO_FORMATS:
        return MEDIA_VIDEO
    return None


def content_type(head: bytes) -> str:
    """The MIME type of a supported file from its first bytes; application/octet-stream for
    anything else."""
    return CONTENT_TYPES.get(sniff_format(head) or "", "application/octet-stream")


def refusal(head: bytes) -> str | None:
    """Why a recognised but refused format cannot be analysed (for a person to read), or None."""
    return REFUSED_FORMATS.get(sniff_format(head) or "")


def read_head(path: str | Path) -> bytes:
    """A file's first HEAD_BYTES bytes; MediaError when it is missing, a folder or empty.

    A missing file is named by the path as given (which folder was looked in is the point; the
    site logs it and tells its user something else); an empty one by its name alone, as every
    message about a file's content is, because the site shows those to the person who uploaded it.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except FileNotFoundError:
        raise MediaMissingError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise MediaMissingError(f"{path}: is a directory, not a file") from None
    if not head:
        raise MediaError(f"{path.name}: the file is empty")
    return head
