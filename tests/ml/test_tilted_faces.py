"""Tilted heads: the search the detector runs on turned copies of a whole frame in which neither
the upright nor the padded search confirmed a face (ml/faces.py `find_faces_rotated`, ROTATIONS)."""

import cv2
import numpy as np
import skimage.data

import ml.detector
import ml.verify
from ml.faces import (
    FINE_SEARCH,
    PHOTO_SEARCH,
    ROTATIONS,
    TurnedBox,
    crop_face,
    find_faces,
    find_faces_padded,
    find_faces_rotated,
    resize_square,
    turned_crop_region,
)
from ml.options import DetectorOptions
from ml.results import Box
from ml.verify import confirm_faces

from tests.media import write_video


def tilted(image: np.ndarray, angle: float = 25) -> tuple[np.ndarray, np.ndarray]:
    """The image turned `angle` degrees counter-clockwise about its centre on a canvas of its own
    size (the corners filled with its edges), and the 2x3 matrix that turned it."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE), matrix


def face_centre(astronaut, matrix) -> tuple[float, float]:
    """Where the centre of the astronaut's upright face lands in the turned image."""
    face = find_faces(astronaut)[0]
    return tuple(matrix @ (face.x + face.w / 2, face.y + face.h / 2, 1.0))


def confirmed_turned(image) -> list[Box]:
    """The faces the detector's turned retry confirms: the first step of ROTATIONS that confirms one."""
    for angles in ROTATIONS:
        boxes = find_faces_rotated(image, angles)
        faces = [box for box, ok in zip(boxes, confirm_faces(image, boxes)) if ok]
        if faces:
            return faces
    return []


def searches(monkeypatch, name: str) -> list[int]:
    """Counts the calls the detector makes to the face search `name` from here on."""
    calls: list[int] = []
    real = getattr(ml.detector, name)

    def counted(image, *args, **kwargs):
        calls.append(1)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(ml.detector, name, counted)
    return calls


def confirmed(image, boxes) -> list[Box]:
    return [box for box, ok in zip(boxes, confirm_faces(image, boxes)) if ok]


def test_a_tilted_head_is_missed_upright_and_padded_but_found_turned(astronaut):
    image, matrix = tilted(astronaut)
    for search in (PHOTO_SEARCH, FINE_SEARCH):
        assert confirmed(image, find_faces(image, max_faces=12, search=search)) == []
    assert confirmed(image, find_faces_padded(image, max_faces=12)) == []

    [box] = confirmed_turned(image)

    cx, cy = face_centre(astronaut, matrix)
    assert box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h
    assert abs(box.x + box.w / 2 - cx) <= 0.2 * box.w and abs(box.y + box.h / 2 - cy) <= 0.2 * box.h


def test_a_turned_box_is_in_the_frames_own_coordinates_and_holds_the_whole_tilted_face(astronaut):
    image, matrix = tilted(astronaut, angle=-30)
    face = find_faces(astronaut)[0]
    corners = [matrix @ (x, y, 1.0) for x in (face.x, face.x + face.w) for y in (face.y, face.y + face.h)]
    big = cv2.resize(image, (1536, 1536), interpolation=cv2.INTER_CUBIC)  # searched scaled down

    [small] = confirmed_turned(image)
    [box] = confirmed_turned(big)

    for x, y in corners:  # the upright face box, turned with the image, lies (about) inside
        assert small.x - 0.15 * small.w <= x <= small.x + 1.15 * small.w and small.y - 0.15 * small.h <= y <= small.y + 1.15 * small.h
    assert small.w >= face.w and small.h >= face.h  # larger than the upright box: it holds the turned one
    assert abs(box.x - 3 * small.x) <= 30 and abs(box.y - 3 * small.y) <= 30 and abs(box.w - 3 * small.w) <= 45
    assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 1536 and box.y + box.h <= 1536


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_a_tilted_faces_crop_is_cut_upright_as_the_face_upright_would_be(astronaut):
    face = find_faces(astronaut)[0]
    upright = crop_face(astronaut, face, size=128, shift=0.1)
    image, matrix = tilted(astronaut, angle=25)
    cx, cy = matrix @ (face.x + face.w / 2, face.y + face.h / 2, 1.0)
    turned = TurnedBox(0, 0, 1, 1, angle=-25, cx=cx, cy=cy, face_w=face.w, face_h=face.h)  # turned back by 25

    assert difference(crop_face(image, turned, size=128, shift=0.1), upright) < 8


def test_a_tilted_face_found_turned_is_cut_nearer_upright_than_its_box_would_be(astronaut):
    face = find_faces(astronaut)[0]
    upright = crop_face(astronaut, face, size=128, shift=0.1)
    image = tilted(astronaut, angle=-30)[0]
    [found] = confirmed_turned(image)
    as_any_box = Box(found.x, found.y, found.w, found.h)

    cut = crop_face(image, found, size=128, shift=0.1)

    assert difference(cut, upright) < difference(crop_face(image, as_any_box, size=128, shift=0.1), upright) - 10


def test_a_tilted_face_that_fills_the_frame_is_found_whole(astronaut):
    image, matrix = tilted(astronaut)
    cx, cy = (round(v) for v in face_centre(astronaut, matrix))
    tight = cv2.resize(image[cy - 46 : cy + 46, cx - 46 : cx + 46], (256, 256), interpolation=cv2.INTER_CUBIC)
    assert confirmed(tight, find_faces(tight, max_faces=12, search=PHOTO_SEARCH)) == []
    assert confirmed(tight, find_faces_padded(tight, max_faces=12)) == []

    [box] = confirmed_turned(tight)  # the turned copy keeps the corners the face runs into

    assert box.w >= 0.8 * 256 and box.h >= 0.8 * 256
    assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 256 and box.y + box.h <= 256  # clamped to the frame


def test_the_turned_search_confirms_nothing_in_a_picture_without_a_face():
    cat = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    coins = cv2.cvtColor(skimage.data.coins(), cv2.COLOR_GRAY2BGR)  # struck heads, but no face
    for image in (cat, coins):
        assert any(find_faces_rotated(image, angles) for angles in ROTATIONS)  # Haar fires on them turned
        assert confirmed_turned(image) == []  # and nothing of it is confirmed
    assert all(find_faces_rotated(np.full((200, 200, 3), 128, np.uint8), angles) == [] for angles in ROTATIONS)


def as_turned(box: Box) -> TurnedBox:
    """The box as the turned search would return it (here turned by 0 degrees)."""
    return TurnedBox(box.x, box.y, box.w, box.h, 0.0, box.x + box.w / 2, box.y + box.h / 2, box.w, box.h)


def test_a_turned_box_on_part_of_a_face_is_not_confirmed_where_an_upright_one_would_be(astronaut):
    face = find_faces(astronaut)[0]
    side = round(0.6 * face.w)  # the lower middle of her face: BlazeFace's face is 1.7 times as wide
    part = Box(face.x + (face.w - side) // 2, face.y + (face.h - side) // 2 + round(0.3 * face.h), side, side)
    whole = Box(face.x - face.w // 6, face.y - face.h // 6, face.w * 4 // 3, face.h * 4 // 3)

    assert confirm_faces(astronaut, [part]) == [True]
    assert confirm_faces(astronaut, [as_turned(part), as_turned(whole)]) == [False, True]


def test_a_turned_box_needs_blazeface_surer_of_its_face(astronaut, monkeypatch):
    face = find_faces(astronaut)[0]
    whole = Box(face.x - face.w // 6, face.y - face.h // 6, face.w * 4 // 3, face.h * 4 // 3)
    monkeypatch.setattr(ml.verify, "TURNED_MIN_SCORE", 0.9999)

    assert confirm_faces(astronaut, [whole]) == [True]
    assert confirm_faces(astronaut, [as_turned(whole)]) == [False]


def test_a_tilted_face_is_judged_where_it_was_no_face(tmp_path, astronaut, detector, monkeypatch):
    path = tmp_path / "tilted.png"
    cv2.imwrite(str(path), tilted(astronaut)[0])
    options = DetectorOptions(heatmaps=0)
    monkeypatch.setattr(detector, "rotated_retry", False)
    assert detector.analyze(path, options).verdict == "no_face"  # the upright and padded searches miss it
    monkeypatch.setattr(detector, "rotated_retry", True)

    result = detector.analyze(path, options)

    [face] = result.frames[0].faces
    assert result.verdict != "no_face" and result.faces_count == 1
    box = face.box  # in the frame, as the result page draws it
    assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 512 and box.y + box.h <= 512
    assert face.crop_angle in {angle for step in ROTATIONS for angle in step}  # the page turns the frame by it


def test_the_region_a_tilted_faces_crop_shows_is_where_the_frame_turned_about_it_shows_it(astronaut):
    image = tilted(astronaut, angle=-30)[0]
    [found] = confirmed_turned(image)
    cut = crop_face(image, found, size=128, shift=0.1)

    region = turned_crop_region(found, shift=0.1)  # what the result reports, and the page shows
    cx, cy = region.x + region.w / 2, region.y + region.h / 2
    matrix = cv2.getRotationMatrix2D((cx, cy), found.angle, 1.0)  # as the page's SVG turns it
    turned = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    shown = resize_square(turned[region.y : region.y + region.h, region.x : region.x + region.w], 128)

    assert (region.w, region.h) == (round(found.face_w * 1.3), round(found.face_h * 1.3))
    assert difference(shown, cut) < 6
    as_its_box = crop_face(image, Box(found.x, found.y, found.w, found.h), size=128, shift=0.1)
    assert difference(as_its_box, cut) > 20  # (the comparison can tell a wrong region)


def test_only_a_photo_in_which_no_face_was_found_is_searched_turned(tmp_path, astronaut, detector, monkeypatch):
    calls = searches(monkeypatch, "find_faces_rotated")
    upright = tmp_path / "astronaut.png"
    cv2.imwrite(str(upright), astronaut)
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 400, 3), 128, np.uint8))

    assert detector.analyze(upright, DetectorOptions(heatmaps=0)).faces_count == 1
    assert calls == []  # a face found: no retry
    assert detector.analyze(wall, DetectorOptions(heatmaps=0)).verdict == "no_face"  # and no false face
    assert len(calls) == len(ROTATIONS)  # every step, one after the other


def test_a_tilted_head_in_a_video_is_found_in_every_sampled_frame(tmp_path, astronaut, detector, monkeypatch):
    image = tilted(astronaut)[0]
    frames = [np.roll(image, 4 * step, axis=1) for step in range(8)]  # a little motion
    path = write_video(tmp_path / "tilted.mp4", frames, fps=8)
    options = DetectorOptions(heatmaps=0, full_search_every=4)
    monkeypatch.setattr(detector, "rotated_retry", False)
    before = detector.analyze(path, options)
    monkeypatch.setattr(detector, "rotated_retry", True)

    after = detector.analyze(path, options)

    assert before.verdict == "no_face"
    assert [len(f.faces) for f in after.frames] == [1] * 8
    assert len(after.tracks) == 1 and after.verdict != "no_face"


def logged_searches(monkeypatch) -> list[str]:
    """The detector's whole-frame searches from here on, in order: "whole" (upright), "fine"
    (upright, FINE_SEARCH: a video's second reading) or "turned"."""
    searched: list[str] = []
    real_find, real_turned = ml.detector.find_faces, ml.detector.find_faces_rotated

    def find(image, **kwargs):
        searched.append("fine" if kwargs.get("search") == FINE_SEARCH else "whole")
        return real_find(image, **kwargs)

    def turned(image, angles, **kwargs):
        searched.append("turned")
        return real_turned(image, angles, **kwargs)

    monkeypatch.setattr(ml.detector, "find_faces", find)
    monkeypatch.setattr(ml.detector, "find_faces_rotated", turned)
    return searched


def test_a_face_free_videos_finer_second_reading_is_not_searched_turned_again(tmp_path, detector, monkeypatch):
    searched = logged_searches(monkeypatch)
    rng = np.random.default_rng(2)
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3) for _ in range(8)]
    path = write_video(tmp_path / "noise.mp4", frames, fps=8)

    result = detector.analyze(path, DetectorOptions(heatmaps=0, full_search_every=4))

    assert result.verdict == "no_face"
    first, second = searched[: searched.index("fine")], searched[searched.index("fine") :]
    assert first.count("turned") == len(ROTATIONS) * first.count("whole") > 0  # every whole search, each step
    assert "turned" not in second


def test_the_frames_between_two_whole_searches_find_a_tilted_head_near_where_it_was_still_turned(
    tmp_path, astronaut, detector, monkeypatch
):
    image = tilted(astronaut)[0]
    frames = [np.roll(image, 4 * step, axis=1) for step in range(9)]  # a little motion
    path = write_video(tmp_path / "tilted.mp4", frames, fps=9)
    searched = logged_searches(monkeypatch)

    result = detector.analyze(path, DetectorOptions(heatmaps=0, full_search_every=4))

    faces = [face for frame in result.frames for face in frame.faces]
    assert len(faces) == 9 and all(face.crop_angle != 0 for face in faces)  # each cut upright
    assert searched.count("whole") == 3  # frames 0, 4 and 8: those between are searched near the head
