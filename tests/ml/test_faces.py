import cv2
import numpy as np

import ml.faces as faces_module
from ml.faces import FINE_SEARCH, PHOTO_SEARCH, crop_box, crop_face, find_faces, find_faces_near, find_faces_padded
from ml.tracks import iou
from ml.training_data import measure_crop_framing
from ml.results import Box


def test_it_finds_the_astronauts_face_with_a_box_around_it(astronaut):
    boxes = find_faces(astronaut)
    assert len(boxes) == 1
    box = boxes[0]
    # Her face spans roughly x 180-270, y 70-165 in the 512x512 photo.
    assert 190 <= box.x + box.w / 2 <= 250
    assert 90 <= box.y + box.h / 2 <= 145
    assert 70 <= box.w <= 130


def test_it_returns_boxes_in_the_original_coordinates_of_a_large_frame(astronaut):
    small = find_faces(astronaut)[0]
    big = cv2.resize(astronaut, (1536, 1536))  # searched on a 640 px copy
    box = find_faces(big)[0]
    assert abs(box.x - 3 * small.x) < 25 and abs(box.y - 3 * small.y) < 25
    assert abs(box.w - 3 * small.w) < 30


def test_it_finds_nothing_in_a_frame_without_a_face():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (0, 0), 3)
    assert find_faces(frame) == []


def test_it_finds_several_faces_largest_first_and_keeps_the_n_largest(astronaut):
    face = astronaut[40:220, 150:300]
    canvas = np.full((400, 700, 3), 120, np.uint8)
    canvas[20:200, 20:170] = face
    canvas[120:400, 350:583] = cv2.resize(face, (233, 280))
    boxes = find_faces(canvas)
    assert len(boxes) == 2
    assert boxes[0].x > 300 and boxes[1].x < 200  # the bigger face first
    assert find_faces(canvas, max_faces=1) == boxes[:1]


def test_near_a_known_face_it_finds_the_face_that_moved_and_nothing_far_from_it(astronaut):
    big = cv2.resize(astronaut, (1536, 1536))
    face = find_faces(big)[0]
    moved_a_little = Box(face.x + face.w // 5, face.y - face.h // 6, face.w, face.h)

    found = find_faces_near(big, [moved_a_little, moved_a_little])

    assert len(found) == 1 and iou(found[0], face) > 0.6
    assert find_faces_near(big, [Box(1200, 1200, face.w, face.h)]) == []
    assert find_faces_near(big, []) == []


def test_a_face_that_moved_fast_between_its_two_sightings_is_found_on_the_way(astronaut):
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[104:616, 384:896] = astronaut  # the face near the middle of a wide frame
    face = find_faces(canvas)[0]
    step = face.w * 6 // 5  # 1.2 widths to the left, then to the right: neither search region
    before = Box(face.x - step, face.y, face.w, face.h)  # (twice a box, around it) holds more
    after = Box(face.x + step, face.y, face.w, face.h)  # than a quarter of the face

    found = find_faces_near(canvas, [before, after])

    assert len(found) == 1 and iou(found[0], face) > 0.6


def tight_crop(astronaut, side=256):
    """The astronaut's face cut to her brows and chin, as a profile picture is, `side` px square."""
    return cv2.resize(astronaut[75:175, 180:270], (side, side), interpolation=cv2.INTER_CUBIC)


def test_a_face_that_fills_the_frame_is_missed_by_every_plain_search_but_found_padded(astronaut):
    tight = tight_crop(astronaut)
    assert find_faces(tight) == find_faces(tight, search=PHOTO_SEARCH) == find_faces(tight, search=FINE_SEARCH) == []

    [box] = find_faces_padded(tight)

    assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 256 and box.y + box.h <= 256  # clamped to the frame
    assert box.w >= 0.8 * 256 and box.h >= 0.8 * 256  # the face, not a part of it
    assert box.x <= 128 <= box.x + box.w and box.y <= 128 <= box.y + box.h


def test_padded_boxes_of_a_large_frame_are_in_its_own_coordinates(astronaut):
    small = find_faces_padded(tight_crop(astronaut))[0]
    big = cv2.resize(tight_crop(astronaut), (1536, 1536), interpolation=cv2.INTER_CUBIC)  # searched scaled down

    [box] = find_faces_padded(big)

    assert abs(box.x - 6 * small.x) <= 30 and abs(box.y - 6 * small.y) <= 30
    assert abs(box.w - 6 * small.w) <= 60 and box.x + box.w <= 1536 and box.y + box.h <= 1536


def test_a_close_up_running_off_a_wide_frame_is_found_padded(astronaut):
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    frame[:, 420:1500] = cv2.resize(tight_crop(astronaut), (1080, 1080))  # the face runs off the top and bottom
    assert find_faces(frame) == []

    [box] = find_faces_padded(frame)

    assert 420 <= box.x + box.w / 2 <= 1500 and box.w >= 540 and box.y >= 0 and box.y + box.h <= 1080


def test_the_padded_search_finds_nothing_in_a_frame_without_a_face():
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (0, 0), 3)
    assert find_faces_padded(noise) == []
    assert find_faces_padded(np.full((200, 200, 3), 128, np.uint8)) == []


def test_the_crop_is_the_box_enlarged_by_the_margin_around_its_centre():
    assert crop_box(Box(100, 100, 60, 60), 1000, 1000, margin=1.5) == Box(85, 85, 90, 90)
    assert crop_box(Box(100, 100, 60, 60), 1000, 1000, margin=1.0, shift=0.5) == Box(100, 130, 60, 60)


def test_the_crop_is_clamped_at_the_frame_borders():
    assert crop_box(Box(0, 0, 40, 40), 100, 100, margin=2.0) == Box(0, 0, 60, 60)
    assert crop_box(Box(70, 80, 30, 20), 100, 100, margin=2.0) == Box(55, 70, 45, 30)


def test_a_face_crop_has_the_model_input_size(astronaut):
    box = find_faces(astronaut)[0]
    crop = crop_face(astronaut, box, size=224)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    corner = crop_face(astronaut, Box(0, 0, 50, 50), size=64, margin=1.3)
    assert corner.shape == (64, 64, 3)


def test_it_measures_how_tightly_precut_crops_are_framed(astronaut):
    box = find_faces(astronaut)[0]
    tight = crop_face(astronaut, box, size=224, margin=0.9, shift=0.1)
    loose = crop_face(astronaut, box, size=224, margin=1.3)
    margin, shift, found = measure_crop_framing([tight])
    assert found == 1 and abs(margin - 0.9) < 0.1 and abs(shift - 0.1) < 0.08
    assert abs(measure_crop_framing([loose])[0] - 1.3) < 0.12


class _CascadeHandingBack:
    """Stands in for Haar's cascade: hands back the same boxes in the order given, as OpenCV's
    threads do in whatever order they finish."""

    def __init__(self, hits):
        self.hits = np.array(hits, dtype=np.int32)

    def detectMultiScale(self, image, **options):
        return self.hits


def test_the_faces_found_do_not_hang_on_the_order_opencvs_threads_hand_the_boxes_back(monkeypatch):
    frame = np.full((256, 256, 3), 128, np.uint8)
    # on the turned copy they overlap by 0.42 and both come back; turned back into the frame, by
    # 0.55: one face, of which the search keeps the box it met first
    two_boxes_on_one_face = [(94, 104, 143, 143), (19, 81, 196, 196)]
    found = {}
    for order in ("as found", "reversed"):
        hits = two_boxes_on_one_face if order == "as found" else two_boxes_on_one_face[::-1]
        monkeypatch.setattr(faces_module, "_cascade", lambda: _CascadeHandingBack(hits))
        found[order] = faces_module.find_faces_rotated(frame, (15,))

    assert found["as found"] == found["reversed"]
    assert len(found["as found"]) == 1 and found["as found"][0].face_w == 196  # the larger of the two, both times
