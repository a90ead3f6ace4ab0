import cv2
import numpy as np
import pytest
from PIL import Image

from ml.errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from ml.media import MediaLimits, load_image_bgr, media_kind
from ml.sniff import sniff_media_type

from tests.media import hostile_gif, write_video


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".bmp"])
def test_it_recognises_still_images_by_their_content(tmp_path, astronaut, suffix):
    path = tmp_path / f"photo{suffix}"
    cv2.imwrite(str(path), astronaut)
    renamed = path.rename(tmp_path / "no_extension")
    assert media_kind(renamed)[0] == "image"
    assert sniff_media_type(renamed.read_bytes()[:64]) == "image"
    assert load_image_bgr(renamed).shape == astronaut.shape


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG"), (".webm", "VP80"), (".mkv", "MJPG")])
def test_it_recognises_videos_by_their_content(tmp_path, astronaut, suffix, fourcc):
    path = write_video(tmp_path / f"clip{suffix}", [astronaut] * 3, fourcc=fourcc)
    assert media_kind(path)[0] == "video"
    assert sniff_media_type(path.read_bytes()[:64]) == "video"


def test_it_rejects_an_empty_file_with_a_clear_error(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        media_kind(path)


def test_it_rejects_text_named_like_a_photo(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n" * 10)
    with pytest.raises(UnsupportedMediaError, match="not a supported image"):
        media_kind(path)


def test_it_rejects_a_truncated_jpeg_instead_of_guessing_the_missing_part(tmp_path, astronaut):
    path = tmp_path / "cut.jpg"
    cv2.imwrite(str(path), astronaut)
    path.write_bytes(path.read_bytes()[:4000])
    assert media_kind(path)[0] == "image"
    with pytest.raises(MediaError, match="cannot decode"):
        load_image_bgr(path)


def test_a_16_bit_grey_png_gives_its_picture_not_a_white_page(tmp_path, astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    path = tmp_path / "scan.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)  # 16-bit, as scanners write
    assert Image.open(path).mode == "I;16"

    image = load_image_bgr(path)

    assert np.array_equal(image[..., 0], grey) and np.array_equal(image[..., 2], grey)


def test_transparent_parts_are_judged_as_shown_over_white_not_by_the_pixels_under_them(tmp_path, astronaut):
    rgba = np.dstack([astronaut[..., ::-1], np.zeros(astronaut.shape[:2], np.uint8)])
    rgba[:256, :, 3] = 255  # the top half shown, the bottom half fully transparent
    path = tmp_path / "cut-out.png"
    Image.fromarray(rgba).save(path)

    image = load_image_bgr(path)

    assert np.array_equal(image[:256], astronaut[:256])
    assert (image[256:] == 255).all()


def test_a_picture_pillow_cannot_read_is_refused_without_naming_its_folder(tmp_path):
    path = tmp_path / "junk.gif"
    path.write_bytes(b"GIF89a" + b"x" * 200)
    with pytest.raises(MediaError, match=r"^junk\.gif: cannot decode the image") as refusal:
        load_image_bgr(path)
    assert str(tmp_path) not in str(refusal.value)


def test_it_turns_a_phone_photo_upright_from_its_exif_orientation(tmp_path, astronaut):
    path = tmp_path / "phone.jpg"
    rotated = cv2.rotate(astronaut[:, :400], cv2.ROTATE_90_CLOCKWISE)  # stored sideways
    image = Image.fromarray(cv2.cvtColor(rotated, cv2.COLOR_BGR2RGB))
    exif = image.getexif()
    exif[0x0112] = 8  # "rotate 90 CW to view" -> Pillow turns it back
    image.save(path, exif=exif)
    assert load_image_bgr(path).shape[:2] == (512, 400)


def test_every_exif_orientation_of_a_jpeg_gives_the_pixels_pillow_gives(tmp_path, astronaut):
    from PIL import ImageOps

    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.jpg"
        image = Image.fromarray(cv2.cvtColor(astronaut[:, :400], cv2.COLOR_BGR2RGB))
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(path, exif=exif, quality=90)
        with Image.open(path) as im:
            expected = cv2.cvtColor(np.asarray(ImageOps.exif_transpose(im).convert("RGB")), cv2.COLOR_RGB2BGR)
        assert np.array_equal(load_image_bgr(path), expected), orientation


def test_a_jpeg_with_data_after_its_end_is_still_read_whole(tmp_path, astronaut):
    path = tmp_path / "motion.jpg"  # phones append a video after the picture ("motion photos")
    cv2.imwrite(str(path), astronaut)
    path.write_bytes(path.read_bytes() + b"ftypmp42" + bytes(1000))
    assert load_image_bgr(path).shape == astronaut.shape


def png_declaring(path, width: int, height: int):
    """A real 1x1 PNG whose header is rewritten to declare width x height (valid CRC)."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytearray(data[12:29])  # "IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))
    return path


def test_a_still_over_the_pixel_budget_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    path = png_declaring(tmp_path / "huge.png", 12000, 12000)  # 144 Mpx in a 70-byte file
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a refused image"))
    with pytest.raises(MediaTooLargeError, match=r"huge.png: the picture is 12000 x 12000 pixels \(144 megapixels\); the limit is 50 megapixels"):
        media_kind(path)
    with pytest.raises(MediaTooLargeError, match="12000 x 12000"):
        load_image_bgr(path)


def test_a_jpeg_over_the_pixel_budget_is_decoded_smaller_instead_of_refused(tmp_path, astronaut):
    path = tmp_path / "phone-108mp.jpg"
    cv2.imwrite(str(path), cv2.resize(astronaut, (1600, 1200)))

    image = load_image_bgr(path, MediaLimits(max_pixels=1_000_000))  # 1.9 megapixels over 1

    assert image.shape == (600, 800, 3)  # half the size each way: the largest that fits
    assert np.abs(image.astype(int) - cv2.resize(astronaut, (800, 600)).astype(int)).mean() < 6


def test_a_picture_beyond_pillows_own_bomb_limit_is_a_clear_media_error(tmp_path):
    path = hostile_gif(tmp_path / "bomb.gif", side=13000, frames=2)  # 169 Mpx: Pillow raises
    with pytest.raises(MediaTooLargeError, match="bomb.gif: the picture is larger than the limit of 50 megapixels"):
        media_kind(path)


def test_the_pixel_budget_is_an_option(tmp_path, astronaut):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), astronaut)  # 512 x 512
    small = MediaLimits(max_pixels=100_000)
    with pytest.raises(MediaTooLargeError, match="the limit is 0.1 megapixels"):
        load_image_bgr(path, small)
    assert load_image_bgr(path, MediaLimits(max_pixels=512 * 512)).shape == astronaut.shape


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="frame_pixels"):
        MediaLimits(frame_pixels=0)


def test_a_video_too_small_to_hold_a_face_is_refused_as_a_photo_that_small_is(tmp_path):
    from ml.video import sample_frames

    path = write_video(tmp_path / "tiny.avi", [np.full((6, 64, 3), 128, np.uint8)] * 5, fourcc="MJPG")
    with pytest.raises(MediaError, match="too small to contain a face"):
        sample_frames(path)
    Image.new("RGB", (64, 6)).save(tmp_path / "tiny.png")
    with pytest.raises(MediaError, match="too small to contain a face"):
        load_image_bgr(tmp_path / "tiny.png")
