import cv2
import numpy as np

from ml.face_check import (
    LabelledBox,
    collect_boxes,
    framing_sensitivity,
    holds_fakes,
    measure,
    moved_box,
    read_boxes,
    search_recall,
    write_boxes,
)
from ml.faces import FaceSearch
from ml.results import Box

from .test_verify import haar_fooling_texture


def test_the_check_set_measures_precision_and_recall_per_verifier(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut)
    cv2.imwrite(str(tmp_path / "texture.png"), haar_fooling_texture())
    proposed = collect_boxes(tmp_path, [tmp_path / "astronaut.png", tmp_path / "texture.png"])
    labelled = [LabelledBox(b.file, b.frame, b.box, "face" if b.file == "astronaut.png" else "not_face") for b in proposed]
    write_boxes(labelled, tmp_path / "boxes.csv")

    boxes = read_boxes(tmp_path / "boxes.csv")
    report = measure(tmp_path, boxes, ("blazeface", "none"))

    assert boxes == labelled
    assert report["blazeface"]["precision"] == 1.0 and report["blazeface"]["recall"] == 1.0
    assert report["none"]["kept_not_faces"] >= 1 and report["none"]["precision"] < 1.0


def test_a_search_counts_the_labelled_faces_it_finds_and_names_those_it_misses(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut)
    cv2.imwrite(str(tmp_path / "texture.png"), haar_fooling_texture())
    proposed = collect_boxes(tmp_path, [tmp_path / "astronaut.png", tmp_path / "texture.png"])
    labelled = [LabelledBox(b.file, b.frame, b.box, "face" if b.file == "astronaut.png" else "not_face") for b in proposed]
    [face] = [b for b in labelled if b.label == "face"]

    shipped = search_recall(tmp_path, labelled, FaceSearch())
    too_strict = search_recall(tmp_path, labelled, FaceSearch(min_neighbors=500))

    assert (shipped["faces"], shipped["found"], shipped["missed"], shipped["extra"]) == (1, 1, [], 0)
    assert (too_strict["found"], too_strict["missed"]) == (0, [face])


class _BrightnessModel:
    """A stand-in for the face-swap model whose 'fake probability' is a crop's mean brightness,
    so that how much a box move changes it is known exactly."""

    threshold, threshold_real = 0.52, 0.48

    def crop(self, image, box):
        return image[box.y : box.y + box.h, box.x : box.x + box.w]

    def classify(self, crops):
        return np.array([crop.mean() / 255 for crop in crops])


def test_the_framing_check_reports_how_far_a_box_move_moves_a_probability_and_its_verdict(tmp_path):
    half_bright = np.zeros((400, 400, 3), np.uint8)
    half_bright[:, 200:] = 255
    (tmp_path / "fake").mkdir()
    cv2.imwrite(str(tmp_path / "fake" / "edge.png"), half_bright)
    cv2.imwrite(str(tmp_path / "flat.png"), np.full((400, 400, 3), 90, np.uint8))
    box = Box(100, 100, 200, 200)  # half dark, half bright: 0.5
    labelled = [LabelledBox("fake/edge.png", 0, box, "face"), LabelledBox("flat.png", 0, box, "face")]

    report = framing_sensitivity(_BrightnessModel(), tmp_path, labelled)
    unmoved = framing_sensitivity(_BrightnessModel(), tmp_path, labelled, moves=((0.0, 0.0, 1.0),))

    assert moved_box(box, 0.04) == Box(108, 100, 200, 200)
    assert report["fake"]["max_change"] == 0.04  # 8 px more of the bright half in a 200 px box
    assert report["fake"]["band_changed"] == 1 and report["fake"]["verdicts_at_box"]["uncertain"] == 1
    assert report["real"]["max_change"] == 0.0 and report["real"]["band_changed"] == 0
    assert unmoved["fake"]["max_change"] == 0.0 and unmoved["fake"]["band_changed"] == 0


def test_the_framing_check_counts_faceforensics_manipulated_frames_as_fakes():
    assert holds_fakes("frames/faceforensics_examples/ex_neuraltextures.png")
    assert holds_fakes("videos/fake/dfdc_abofeumbvv.mp4")
    assert not holds_fakes("frames/faceforensics_examples/ex_original.png")
    assert not holds_fakes("videos/real/liveportrait_driving_d12.mp4")
