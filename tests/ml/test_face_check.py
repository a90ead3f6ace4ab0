import cv2

from ml.face_check import LabelledBox, collect_boxes, measure, read_boxes, write_boxes

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
