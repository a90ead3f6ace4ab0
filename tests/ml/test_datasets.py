"""Folder and FaceForensics++ datasets, group splits and the face-crop cache, on trees the tests write."""

import csv
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml import datasets
from ml.datasets import (
    LABELS,
    Sample,
    dfd_samples,
    ffpp_samples,
    folder_samples,
    group_split,
    is_ffpp_root,
    prepare_crops,
    read_ffpp_split,
    read_manifest,
    require_both_classes,
    require_data_root,
)
from ml.faces import crop_face, find_faces

from tests.media import astronaut_bgr, write_video

FRAME_SIZE = 192  # the cascade finds the astronaut's face at this size
SPLITS = {
    "train": [["000", "001"]],
    "val": [["002", "003"]],
    "test": [["004", "005"], ["006", "007"]],
}


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    """A miniature FF++ c23 download: originals 000-006 (007 missing), Deepfakes for every pair,
    Face2Face for the first test pair only, and the split files in splits/."""
    root = tmp_path_factory.mktemp("ffpp")
    frame = astronaut_bgr(FRAME_SIZE)
    video = write_video(root / "template.mp4", [np.roll(frame, i, axis=1) for i in range(6)])  # a slow pan
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    for vid in ("000", "001", "002", "003", "004", "005", "006"):
        originals.mkdir(parents=True, exist_ok=True)
        shutil.copy(video, originals / f"{vid}.mp4")
    for method, pairs in (("Deepfakes", [p for ps in SPLITS.values() for p in ps]), ("Face2Face", [["004", "005"]])):
        folder = root / "manipulated_sequences" / method / "c23" / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        for t, s in pairs:
            shutil.copy(video, folder / f"{t}_{s}.mp4")
            shutil.copy(video, folder / f"{s}_{t}.mp4")
    video.unlink()
    (root / "splits").mkdir()
    for name, pairs in SPLITS.items():
        (root / "splits" / f"{name}.json").write_text(json.dumps(pairs))
    return root


def as_rows(samples: list[Sample], root: Path) -> set[tuple[str, int, str]]:
    return {(s.path.relative_to(root).as_posix(), s.label, s.group) for s in samples}


ORIG = "original_sequences/youtube/c23/videos"
DF = "manipulated_sequences/Deepfakes/c23/videos"
F2F = "manipulated_sequences/Face2Face/c23/videos"


class TestFaceForensics:
    def test_it_reads_an_official_split_file_as_target_source_pairs(self, ffpp_root):
        assert read_ffpp_split(ffpp_root / "splits" / "test.json") == [("004", "005"), ("006", "007")]

    def test_the_train_split_has_both_originals_and_both_fakes_of_its_pair(self, ffpp_root):
        samples = ffpp_samples(ffpp_root, split="train", methods=("Deepfakes",))
        assert as_rows(samples, ffpp_root) == {
            (f"{ORIG}/000.mp4", 0, "000_001"),
            (f"{ORIG}/001.mp4", 0, "000_001"),
            (f"{DF}/000_001.mp4", 1, "000_001"),
            (f"{DF}/001_000.mp4", 1, "000_001"),
        }

    def test_the_test_split_skips_missing_videos_and_says_how_many(self, ffpp_root, caplog):
        with caplog.at_level(logging.WARNING, logger="ml.datasets"):
            samples = ffpp_samples(ffpp_root, split="test", methods=("Deepfakes", "Face2Face"))
        assert as_rows(samples, ffpp_root) == {
            (f"{ORIG}/004.mp4", 0, "004_005"),
            (f"{ORIG}/005.mp4", 0, "004_005"),
            (f"{ORIG}/006.mp4", 0, "006_007"),
            (f"{DF}/004_005.mp4", 1, "004_005"),
            (f"{DF}/005_004.mp4", 1, "004_005"),
            (f"{DF}/006_007.mp4", 1, "006_007"),
            (f"{DF}/007_006.mp4", 1, "006_007"),
            (f"{F2F}/004_005.mp4", 1, "004_005"),
            (f"{F2F}/005_004.mp4", 1, "004_005"),
        }
        # 4 originals + 4 Deepfakes + 4 Face2Face listed; 007.mp4 and Face2Face 006_007 / 007_006 missing.
        assert "3 of 12 listed videos not found" in caplog.text

    def test_the_group_of_a_pair_is_the_same_whichever_id_comes_first(self, tmp_path, ffpp_root):
        reversed_split = tmp_path / "reversed.json"
        reversed_split.write_text(json.dumps([["005", "004"]]))
        samples = ffpp_samples(ffpp_root, split_file=reversed_split, methods=("Deepfakes",))
        assert {s.group for s in samples} == {"004_005"}
        assert len(samples) == 4

    def test_split_files_are_also_found_in_the_root(self, tmp_path, ffpp_root):
        root = tmp_path / "ffpp"
        shutil.copytree(ffpp_root / "original_sequences", root / "original_sequences")
        (root / "val.json").write_text(json.dumps(SPLITS["val"]))
        samples = ffpp_samples(root, split="val", methods=())
        assert as_rows(samples, root) == {(f"{ORIG}/002.mp4", 0, "002_003"), (f"{ORIG}/003.mp4", 0, "002_003")}

    def test_a_split_with_no_existing_video_raises(self, ffpp_root):
        with pytest.raises(ValueError, match="none of the"):
            ffpp_samples(ffpp_root, split="test", compression="c40")

    def test_a_missing_split_file_or_bad_option_raises_a_clear_error(self, ffpp_root, tmp_path):
        with pytest.raises(ValueError, match="no split file"):
            ffpp_samples(ffpp_root, split="holdout")
        with pytest.raises(ValueError, match="compression"):
            ffpp_samples(ffpp_root, compression="c99")
        with pytest.raises(ValueError, match="unknown FF"):
            ffpp_samples(ffpp_root, methods=("Deepfakes", "Nope"))
        with pytest.raises(ValueError, match="dfd_samples"):
            ffpp_samples(ffpp_root, methods=("DeepFakeDetection",))
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"pairs": []}))
        with pytest.raises(ValueError, match="pairs"):
            read_ffpp_split(bad)

    def test_it_recognises_an_ffpp_root(self, ffpp_root, tmp_path):
        assert is_ffpp_root(ffpp_root)
        (tmp_path / "real").mkdir()
        assert not is_ffpp_root(tmp_path)

    def test_deepfakedetection_videos_are_grouped_by_actor(self, tmp_path):
        actors = tmp_path / "original_sequences" / "actors" / "c23" / "videos"
        dfd = tmp_path / "manipulated_sequences" / "DeepFakeDetection" / "c23" / "videos"
        actors.mkdir(parents=True)
        dfd.mkdir(parents=True)
        for path in (actors / "01__walking.mp4", actors / "02__kitchen_pan.mp4", dfd / "01_02__walking__ABCD1234.mp4"):
            path.write_bytes(b"")
        rows = {(s.path.name, s.label, s.group) for s in dfd_samples(tmp_path)}
        assert rows == {("01__walking.mp4", 0, "01"), ("02__kitchen_pan.mp4", 0, "02"), ("01_02__walking__ABCD1234.mp4", 1, "01")}


def many_groups() -> list[Sample]:
    return [Sample(Path(f"g{g:03d}_{i}.jpg"), i % 2, f"g{g:03d}") for g in range(200) for i in range(1 + g % 4)]


class TestGroupSplit:
    def test_it_never_puts_a_group_on_both_sides(self):
        train, val = group_split(many_groups(), val_fraction=0.2, seed=3)
        assert not {s.group for s in train} & {s.group for s in val}
        assert len(train) + len(val) == len(many_groups())

    def test_it_holds_out_the_asked_fraction_of_groups(self):
        _, val = group_split(many_groups(), val_fraction=0.1)
        assert len({s.group for s in val}) == 20

    def test_it_is_deterministic_and_the_seed_changes_it(self):
        assert group_split(many_groups(), seed=1) == group_split(many_groups(), seed=1)
        assert group_split(many_groups(), seed=1)[1] != group_split(many_groups(), seed=2)[1]

    def test_a_validation_split_of_one_class_gets_the_next_group_of_the_other(self):
        samples = [Sample(Path(f"r{g}.jpg"), 0, f"r{g}") for g in range(10)] + [
            Sample(Path(f"f{g}.jpg"), 1, f"f{g}") for g in range(2)
        ]
        # seed 0 ranks r9 first: asked for one group, validation would hold real files alone
        train, val = group_split(samples, val_fraction=0.1, seed=0)
        assert {s.label for s in val} == {0, 1} and {s.label for s in train} == {0, 1}
        assert len({s.group for s in val}) == 2 and "r9" in {s.group for s in val}
        assert not {s.group for s in train} & {s.group for s in val}

    def test_it_refuses_a_split_that_cannot_hold_both_classes_on_both_sides(self):
        samples = [Sample(Path(f"r{g}.jpg"), 0, f"r{g}") for g in range(5)] + [Sample(Path("f.jpg"), 1, "f")]
        with pytest.raises(ValueError, match="only 1 group holds fake files"):
            group_split(samples, val_fraction=0.2, seed=0)

    def test_a_source_of_one_class_is_split_as_before(self):
        reals = [Sample(Path(f"r{g}.jpg"), 0, f"r{g}") for g in range(10)]
        train, val = group_split(reals, val_fraction=0.2, seed=0)
        assert len(val) == 2 and len(train) == 8

    def test_it_needs_two_groups_and_a_sensible_fraction(self):
        with pytest.raises(ValueError, match="two"):
            group_split([Sample(Path("a.jpg"), 0, "a"), Sample(Path("b.jpg"), 1, "a")])
        with pytest.raises(ValueError, match="val_fraction"):
            group_split(many_groups(), val_fraction=1.0)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


class TestFolderDataset:
    def test_it_lists_real_and_fake_media_recursively_with_the_stem_as_group(self, tmp_path):
        touch(tmp_path / "real" / "a.jpg")
        touch(tmp_path / "real" / "clips" / "b.MP4")
        touch(tmp_path / "fake" / "c.png")
        touch(tmp_path / "fake" / "notes.txt")
        touch(tmp_path / "fake" / ".hidden.jpg")
        rows = [(s.path.relative_to(tmp_path).as_posix(), s.label, s.group) for s in folder_samples(tmp_path)]
        assert rows == [("fake/c.png", 1, "c"), ("real/a.jpg", 0, "a"), ("real/clips/b.MP4", 0, "b")]

    def test_an_index_csv_gives_the_groups_and_may_call_them_source_video(self, tmp_path):
        touch(tmp_path / "real" / "aaa.jpg")
        touch(tmp_path / "fake" / "bbb.jpg")
        touch(tmp_path / "fake" / "unlisted.jpg")
        (tmp_path / "index.csv").write_text(
            "file,label,source_video\nreal/aaa.jpg,real,aaa\nfake/bbb.jpg,fake,aaa\n"
        )
        rows = [(s.path.relative_to(tmp_path).as_posix(), s.label, s.group) for s in folder_samples(tmp_path)]
        assert rows == [("fake/bbb.jpg", 1, "aaa"), ("real/aaa.jpg", 0, "aaa")]

    def test_an_index_without_a_group_column_uses_the_stem_and_accepts_numeric_labels(self, tmp_path):
        touch(tmp_path / "x" / "one.png")
        touch(tmp_path / "x" / "two.png")
        (tmp_path / "index.csv").write_text("file,label\nx/one.png,0\nx/two.png,1\n")
        assert [(s.label, s.group) for s in folder_samples(tmp_path)] == [(0, "one"), (1, "two")]

    def test_the_groups_can_come_from_another_column(self, tmp_path):
        touch(tmp_path / "real" / "a.jpg")
        touch(tmp_path / "fake" / "a_swapped.jpg")
        (tmp_path / "index.csv").write_text(
            "file,label,group,made_from\nreal/a.jpg,real,a,a\nfake/a_swapped.jpg,fake,a_swapped,a\n"
        )
        assert [s.group for s in folder_samples(tmp_path)] == ["a_swapped", "a"]
        assert [s.group for s in folder_samples(tmp_path, group_by="made_from")] == ["a", "a"]

    def test_a_group_column_that_is_not_there_is_refused_with_the_columns_that_are(self, tmp_path):
        touch(tmp_path / "a.jpg")
        (tmp_path / "index.csv").write_text("file,label,group\na.jpg,real,a\n")
        with pytest.raises(ValueError, match="no column 'made_from' to group by; its columns are file,label,group"):
            folder_samples(tmp_path, group_by="made_from")
        (tmp_path / "index.csv").unlink()
        touch(tmp_path / "real" / "b.jpg")
        with pytest.raises(ValueError, match="needs an index.csv"):
            folder_samples(tmp_path, group_by="made_from")

    def test_data_of_one_class_is_refused_saying_which_class_it_holds(self):
        reals = [Sample(Path("a.jpg"), 0, "a"), Sample(Path("b.jpg"), 0, "b")]
        with pytest.raises(ValueError, match="^DATA holds only real files \\(2\\): training and validation need both"):
            require_both_classes(reals, where="DATA")
        require_both_classes(reals + [Sample(Path("c.jpg"), 1, "a")], where="DATA")

    def test_a_missing_data_root_is_named_with_the_folder_looked_in(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ValueError) as missing:
            require_data_root("../shared/data", needed_for="to prepare dfdc")
        assert f"looked in {(tmp_path / '../shared/data').resolve()}" in str(missing.value)
        assert "--data-root PATH" in str(missing.value)
        assert require_data_root(tmp_path, needed_for="x") == tmp_path

    def test_an_unknown_label_names_the_line(self, tmp_path):
        touch(tmp_path / "a.jpg")
        (tmp_path / "index.csv").write_text("file,label,group\na.jpg,maybe,a\n")
        with pytest.raises(ValueError, match="line 2.*maybe"):
            folder_samples(tmp_path)

    def test_a_folder_with_neither_layout_is_refused(self, tmp_path):
        touch(tmp_path / "photos" / "a.jpg")
        with pytest.raises(ValueError, match="not a folder dataset"):
            folder_samples(tmp_path)

    def test_labels_are_zero_for_real_and_one_for_fake(self):
        assert LABELS == {"real": 0, "fake": 1}


class TestPrepareCrops:
    @pytest.fixture()
    def inputs(self, ffpp_root, tmp_path) -> list[Sample]:
        cv2.imwrite(str(tmp_path / "face.png"), astronaut_bgr(FRAME_SIZE))
        cv2.imwrite(str(tmp_path / "wall.png"), np.full((96, 96, 3), 128, np.uint8))
        (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        videos = ffpp_samples(ffpp_root, split="train", methods=("Deepfakes",))
        return videos[:2] + [
            Sample(tmp_path / "face.png", 0, "photo"),
            Sample(tmp_path / "wall.png", 0, "wall"),
            Sample(tmp_path / "broken.jpg", 1, "broken"),
        ]

    def test_it_writes_face_crops_with_labels_groups_and_an_index(self, inputs, tmp_path):
        out = tmp_path / "crops"
        crops = prepare_crops(inputs, out, frames_per_video=3, size=64)
        # Two videos x 3 frames + one photo, one face each; the grey wall and the broken file give none.
        assert len(crops) == 7
        assert sorted(folder_samples(out), key=str) == sorted(crops, key=str)
        by_group = {}
        for crop in crops:
            by_group.setdefault(crop.group, set()).add(crop.label)
        source_labels = {s.group: {s.label} for s in inputs[:3]}
        assert by_group == source_labels
        with (out / "index.csv").open() as fh:
            sources = {row["source"] for row in csv.DictReader(fh)}
        assert sources == {str(s.path) for s in inputs[:3]}
        manifest = read_manifest(out)
        assert manifest["no_face"] == [str(inputs[3].path)]
        assert manifest["unreadable"] == [str(inputs[4].path)]

    def test_the_crops_show_the_astronauts_face(self, inputs, tmp_path):
        crops = prepare_crops(inputs[2:3], tmp_path / "crops", size=64)
        frame = astronaut_bgr(FRAME_SIZE)
        expected = crop_face(frame, find_faces(frame, max_faces=1)[0], size=64).astype(np.float32)
        written = cv2.imread(str(crops[0].path)).astype(np.float32)
        assert written.shape == (64, 64, 3)
        assert np.abs(written - expected).mean() < 4  # JPEG noise only

    def test_a_second_call_reuses_the_cache(self, inputs, tmp_path, monkeypatch):
        out = tmp_path / "crops"
        first = prepare_crops(inputs, out, frames_per_video=2, size=48)

        def no_search(*args, **kwargs):
            raise AssertionError("faces were searched again")

        monkeypatch.setattr(datasets, "find_faces", no_search)
        assert prepare_crops(inputs, out, frames_per_video=2, size=48) == first

    def test_new_parameters_rebuild_the_cache_and_drop_the_old_crops(self, inputs, tmp_path):
        out = tmp_path / "crops"
        first = prepare_crops(inputs[:1], out, frames_per_video=2, size=48)
        second = prepare_crops(inputs[:1], out, frames_per_video=3, size=48)
        assert len(first) == 2 and len(second) == 3
        assert sorted(p.name for p in out.rglob("*.jpg")) == sorted(s.path.name for s in second)

    def test_it_refuses_to_overwrite_an_index_it_did_not_write(self, inputs, tmp_path):
        out = tmp_path / "crops"
        touch(out / "index.csv")
        with pytest.raises(ValueError, match="did not write"):
            prepare_crops(inputs[:1], out)


def test_evaluate_reads_an_ffpp_root_by_split_and_scores_each_video(ffpp_root, tmp_path, detector):
    from ml.evaluate import evaluate

    metrics = evaluate(detector, ffpp_root, tmp_path / "eval", split="test")
    # test split: originals 004, 005, 006 (007 is missing); Deepfakes 004_005, 005_004,
    # 006_007, 007_006; Face2Face 004_005, 005_004.
    assert (metrics["n_files"], metrics["n_error"], metrics["split"]) == (9, 0, "test")
    rows = [row.split(",") for row in (tmp_path / "eval" / "predictions.csv").read_text().splitlines()[1:]]
    assert sorted(row[1] for row in rows) == ["fake"] * 6 + ["real"] * 3
    assert metrics["n_real"] + metrics["n_fake"] + metrics["n_no_face"] == 9
