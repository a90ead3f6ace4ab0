"""The web process's view of an upload: what its first bytes say it is."""

import subprocess
import sys

import pytest
from PIL import Image

from ml.errors import MediaError, MediaMissingError, UnsupportedMediaError
from ml.media import load_image_bgr, media_kind
from ml.sniff import REFUSED_FORMATS, content_type, read_head, refusal, sniff_format, sniff_media_type
from tests.media import write_video


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The first bytes of an ISO base media file: its `ftyp` box, then the next box's start."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


IPHONE_HEIC = ftyp(b"heic", b"mif1", b"heic")
SAMSUNG_HEIF = ftyp(b"mif1", b"mif1", b"heic")
AVIF_STILL = ftyp(b"avif", b"avif", b"mif1", b"miaf", b"MA1B")
AVIF_STILL_MIF1_FIRST = ftyp(b"mif1", b"mif1", b"avif", b"miaf")
AVIF_ANIMATED = ftyp(b"avis", b"avif", b"avis", b"msf1", b"iso8", b"mif1", b"miaf")
MP4 = ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41")
PHONE_MOV = ftyp(b"qt  ", b"qt  ")


@pytest.mark.parametrize("head", [IPHONE_HEIC, SAMSUNG_HEIF], ids=["iphone", "samsung"])
def test_a_heic_photo_is_not_mistaken_for_a_video_but_refused_with_what_to_do(head):
    assert sniff_format(head) == "heif"
    assert sniff_media_type(head) is None
    assert "HEIC/HEIF photos are not supported" in refusal(head)
    assert "JPEG" in refusal(head)


@pytest.mark.parametrize("head", [AVIF_STILL, AVIF_STILL_MIF1_FIRST], ids=["avif-brand", "mif1-brand"])
def test_an_avif_photo_is_an_image(head):
    assert sniff_format(head) == "avif"
    assert sniff_media_type(head) == "image"
    assert refusal(head) is None


def test_an_animated_avif_is_refused_rather_than_read_as_one_still():
    assert sniff_media_type(AVIF_ANIMATED) is None
    assert refusal(AVIF_ANIMATED) == REFUSED_FORMATS["avif-sequence"]


@pytest.mark.parametrize("head", [MP4, PHONE_MOV, b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat"])
def test_mp4_and_mov_files_are_still_videos(head):
    assert sniff_media_type(head) == "video"


@pytest.mark.parametrize(
    "suffix,fourcc,fmt,mime",
    [(".webm", "VP80", "webm", "video/webm"), (".mkv", "MJPG", "matroska", "video/x-matroska")],
)
def test_a_webm_video_is_told_from_other_matroska_files_by_its_doctype(tmp_path, astronaut, suffix, fourcc, fmt, mime):
    path = write_video(tmp_path / f"clip{suffix}", [astronaut[:64, :64]] * 3, fourcc=fourcc)
    head = read_head(path)

    assert (sniff_format(head), content_type(head), sniff_media_type(head)) == (fmt, mime, "video")


def test_a_webm_doctype_written_with_long_sizes_is_still_found():
    # sizes as eight-byte numbers, as some muxers write them; DocType "webm" padded with a zero
    header = b"\x42\x86\x81\x01" + b"\x42\x82\x01" + (5).to_bytes(7, "big") + b"webm\x00"
    head = b"\x1a\x45\xdf\xa3\x01" + len(header).to_bytes(7, "big") + header

    assert sniff_format(head) == "webm"


@pytest.mark.parametrize(
    "head",
    [
        b"\x1a\x45\xdf\xa3 matroska",  # no EBML header to read
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84we",  # its DocType cut off
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webx",
    ],
    ids=["unreadable", "cut-off", "other-doctype"],
)
def test_an_ebml_file_without_a_webm_doctype_is_matroska(head):
    assert sniff_format(head) == "matroska"


def test_an_unknown_file_is_refused_without_a_specific_reason():
    assert sniff_media_type(b"%PDF-1.7 not media at all") is None
    assert refusal(b"%PDF-1.7 not media at all") is None


def test_a_real_avif_photo_decodes_like_any_other_still(tmp_path, astronaut):
    path = tmp_path / "photo.avif"
    Image.fromarray(astronaut[:, :, ::-1]).save(path)
    assert sniff_media_type(path.read_bytes()[:64]) == "image"
    assert media_kind(path) == ("image", "avif")
    assert load_image_bgr(path).shape == astronaut.shape


def test_the_engine_refuses_a_heic_file_with_the_same_message(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(IPHONE_HEIC + bytes(200))
    with pytest.raises(UnsupportedMediaError, match="HEIC/HEIF photos are not supported"):
        media_kind(path)


def test_importing_the_sniffer_loads_no_decoder():
    code = (
        "import sys, ml.sniff; "
        "print(sorted(m for m in ('cv2', 'numpy', 'PIL', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_file_is_named_by_the_path_given_and_an_empty_one_by_its_name(tmp_path):
    with pytest.raises(MediaMissingError, match="^/nonexistent/x.jpg: file not found$"):
        read_head("/nonexistent/x.jpg")
    with pytest.raises(MediaMissingError, match=f"^{tmp_path}: is a directory"):
        read_head(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    # what the site shows the person who uploaded it: never the folder it is stored in
    with pytest.raises(MediaError, match="^empty.jpg: the file is empty$"):
        read_head(tmp_path / "empty.jpg")
