"""Re-encoded copies for `check-degradation` (ml/degradation.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from ml.degradation import (
    DEGRADATIONS,
    EDITED,
    Degradation,
    degradation_report,
    degraded,
    degrade_image,
    degrade_video,
    frames_of,
)
from tests.media import astronaut_bgr, ffmpeg_rotate, write_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 720x720 clip of the astronaut drifting, 40 frames at 10 fps."""
    face = cv2.resize(astronaut_bgr(), (720, 720))
    return write_video(tmp_path_factory.mktemp("clip") / "drift.mp4", [np.roll(face, 3 * i, axis=1) for i in range(40)])


def test_a_video_is_re_encoded_smaller_and_blockier_with_every_frame_kept(clip, tmp_path):
    out = degrade_video(clip, tmp_path / "small.mp4", Degradation("240p", 240, 38, 30))

    frames = frames_of(out)
    assert len(frames) == len(frames_of(clip)) == 40
    assert frames[0].shape[:2] == (240, 240)
    original = cv2.resize(frames_of(clip)[0], (240, 240), interpolation=cv2.INTER_AREA)
    assert 1.0 < float(np.abs(frames[0].astype(int) - original.astype(int)).mean()) < 20  # compressed, still the same picture
    assert out.stat().st_size < clip.stat().st_size


def test_a_video_can_be_re_encoded_as_opencvs_mp4v_writer_does_with_every_frame_kept(clip, tmp_path):
    out = degrade_video(clip, tmp_path / "mp4v.mp4", Degradation("480p mp4v", 480, 0, 75, codec="mp4v"))

    frames = frames_of(out)
    assert len(frames) == 40
    assert frames[0].shape[:2] == (480, 480)
    original = cv2.resize(frames_of(clip)[0], (480, 480), interpolation=cv2.INTER_AREA)
    assert float(np.abs(frames[0].astype(int) - original.astype(int)).mean()) < 20
    with av.open(str(out)) as written:
        assert written.streams.video[0].codec_context.name == "mpeg4"  # MPEG-4 part 2, not H.264


def test_a_phone_video_stored_sideways_is_re_encoded_upright(tmp_path):
    face = cv2.resize(astronaut_bgr(), (320, 240))
    sideways = ffmpeg_rotate(write_video(tmp_path / "a.mp4", [face] * 5), tmp_path / "sideways.mp4", 90)
    capture = cv2.VideoCapture(str(sideways))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    upright = capture.read()[1]  # as the detector reads it

    copy = frames_of(degrade_video(sideways, tmp_path / "copy.mp4", Degradation("own", None, 28, 0)))[0]

    assert copy.shape == upright.shape == (320, 240, 3)
    assert float(np.abs(copy.astype(int) - upright.astype(int)).mean()) < 10


def test_a_photo_of_any_size_is_scaled_without_rounding_and_never_to_nothing(tmp_path):
    for width, height in ((513, 301), (3, 1000), (1, 1)):
        src = tmp_path / f"{width}x{height}.png"
        cv2.imwrite(str(src), np.full((height, width, 3), 128, np.uint8))

        out = degrade_image(src, tmp_path / f"{width}x{height}.jpg", Degradation("240p", 240, 38, 30))

        expected = (height, width) if height <= 240 else (240, max(1, round(width * 240 / height)))
        assert cv2.imread(str(out)).shape[:2] == expected


def test_a_photo_is_scaled_and_saved_as_a_lower_quality_jpeg_never_larger(tmp_path):
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), astronaut_bgr())

    out = degrade_image(src, tmp_path / "face.jpg", Degradation("360p", 360, 33, 50))
    same = degrade_image(src, tmp_path / "same.jpg", Degradation("big", 2000, 33, 50))

    assert cv2.imread(str(out)).shape[:2] == (360, 360)
    assert cv2.imread(str(same)).shape[:2] == (512, 512)  # never scaled up


def test_the_report_has_each_files_verdict_at_each_re_encoding_from_its_own(detector, tmp_path):
    folder = tmp_path / "real"
    folder.mkdir()
    photo = folder / "face.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    chosen = DEGRADATIONS[:3]

    report = degradation_report(detector, [photo], tmp_path, degradations=chosen)

    assert [r["degradation"] for r in report["rows"]] == [d.name for d in chosen]
    assert all(r["group"] == "real" for r in report["rows"])
    assert [r["moved"] for r in report["rows"]] == [r["fake_probability"] - report["rows"][0]["fake_probability"] for r in report["rows"]]
    assert all(r["verdict"] in {"real", "uncertain", "fake"} and r["faces"] == 1 for r in report["rows"])
    assert [(s["degradation"], s["files"]) for s in report["summary"]] == [(d.name, 1) for d in chosen]
    # the astronaut's face is about 95 px across in the 512 px photo, smaller at 360p
    own, small = report["rows"][0]["face_side"], report["rows"][-1]["face_side"]
    assert 70 < own < 130 and small < own
    assert sum(s["files"] for s in report["by_face_size"]) == len(chosen)


def test_the_command_reads_a_folder_and_writes_its_table_and_json(tmp_path, untrained_checkpoint):
    (tmp_path / "fake").mkdir()
    cv2.imwrite(str(tmp_path / "fake" / "face.jpg"), astronaut_bgr())
    out = tmp_path / "report.json"

    done = subprocess.run(
        [sys.executable, "-m", "ml", "check-degradation", str(tmp_path / "fake"), "--out", str(out),
         "--checkpoint", str(untrained_checkpoint), "--no-synthetic", "--runtime", "torch"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "240p, CRF 38" in done.stdout and "fake" in done.stdout
    assert len(json.loads(out.read_text())["rows"]) == sum(d.codec == "libx264" for d in DEGRADATIONS)  # a photo has no mp4v copy


def test_an_edited_copy_is_edited_frame_by_frame_then_re_encoded_with_every_frame_kept(clip, tmp_path):
    vertical = EDITED[[d.edit for d in EDITED].index("vertical_blurred_fill")]
    mirror = EDITED[[d.edit for d in EDITED].index("mirrored")]

    tall = frames_of(degraded(clip, tmp_path, vertical))
    flipped = frames_of(degraded(clip, tmp_path, mirror))

    source = frames_of(clip)
    assert len(tall) == len(flipped) == 40
    assert tall[0].shape == (1280, 720, 3)
    assert float(np.abs(tall[5][280:1000].astype(int) - cv2.resize(source[5], (720, 720)).astype(int)).mean()) < 10
    assert float(np.abs(flipped[5].astype(int) - source[5][:, ::-1].astype(int)).mean()) < 10
    assert float(np.abs(flipped[5].astype(int) - source[5].astype(int)).mean()) > 20


def test_an_edit_must_be_known_and_made_by_x264():
    with pytest.raises(ValueError, match="an edit is one of"):
        Degradation("sideways", None, 23, 90, edit="sideways")
    with pytest.raises(ValueError, match="an edit is one of"):
        Degradation("mirrored mp4v", 480, 0, 75, codec="mp4v", edit="mirrored")


def test_the_edits_are_judged_beside_the_file_and_a_copy_only_re_encoded():
    assert EDITED[0] == DEGRADATIONS[0]  # as uploaded: the probabilities move from there
    plain = [d for d in EDITED if not d.edit and d.crf]
    assert len(plain) == 1 and {d.crf for d in EDITED if d.edit} == {plain[0].crf}


def test_an_edit_is_made_even_where_nothing_is_re_encoded_smaller(tmp_path):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), astronaut_bgr())

    copy = degraded(photo, tmp_path, Degradation("mirrored only", None, 0, 95, edit="mirrored"))

    assert copy != photo
    assert float(np.abs(cv2.imread(str(copy)).astype(int) - astronaut_bgr()[:, ::-1].astype(int)).mean()) < 3
