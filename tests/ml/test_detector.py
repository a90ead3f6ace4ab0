import dataclasses
import json
import threading

import cv2
import numpy as np
import pytest
import torch

from ml import load_detector
from ml.detector import Detector, verdict_for, without_nested
from ml.errors import CheckpointError, MediaError
from ml.explain import gradcam, gradcams, heatmap_of
from ml.faces import crop_box, find_faces
from ml.options import DetectorOptions
from ml.results import Box, FaceResult, FrameResult
from ml.tracks import iou

from tests.media import faces_of_the_astronaut, moving_face_frames, write_video


def write_photo(path, image):
    cv2.imwrite(str(path), image)
    return path


def frame(*scores):
    return FrameResult(0, 0.0, tuple(FaceResult(Box(0, 0, 1, 1), s) for s in scores))


def test_a_frame_scores_as_its_most_suspicious_face():
    assert frame(0.1, 0.9, 0.3).fake_probability == 0.9
    assert frame().fake_probability is None


def test_the_verdict_has_an_uncertain_band_and_is_never_real_without_a_face():
    assert verdict_for(0.8, threshold=0.8, threshold_real=0.3) == "fake"
    assert verdict_for(0.79, threshold=0.8, threshold_real=0.3) == "uncertain"
    assert verdict_for(0.3, threshold=0.8, threshold_real=0.3) == "uncertain"
    assert verdict_for(0.29, threshold=0.8, threshold_real=0.3) == "real"
    assert verdict_for(None, threshold=0.8, threshold_real=0.3) == "no_face"
    assert verdict_for(0.59, threshold=0.6, threshold_real=0.6) == "real"  # no band: two verdicts


def test_the_checkpoint_decides_the_two_thresholds(tmp_path):
    from ml.model import build_model, save_checkpoint

    path = save_checkpoint(build_model(arch="resnet18"), tmp_path / "m.pt", threshold=0.7, threshold_real=0.2)
    detector = load_detector(path, device="cpu")
    assert (detector.threshold_real, detector.threshold) == (0.2, 0.7)
    old_style = save_checkpoint(build_model(arch="resnet18"), tmp_path / "old.pt", threshold=0.6)
    assert load_detector(old_style, device="cpu").threshold_real == 0.6


def test_the_temperature_divides_the_logits(tmp_path, astronaut):
    import torch

    from ml.model import build_model, preprocess, save_checkpoint

    crop = cv2.resize(astronaut[60:170, 170:280], (224, 224))
    hot = load_detector(save_checkpoint(build_model(arch="resnet18"), tmp_path / "t.pt", temperature=3.0), device="cpu")
    with torch.inference_mode():
        logits = hot.model(preprocess([crop], hot.spec)).float()[0]
    expected = 1 / (1 + np.exp(-(float(logits[1]) - float(logits[0])) / 3.0))
    assert hot.classify([crop])[0] == pytest.approx(expected, abs=1e-6)


def test_it_analyses_a_photo_down_to_each_face(tmp_path, astronaut, detector):
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut)
    seen = []
    result = detector.analyze(path, progress=seen.append)
    assert (result.media_type, result.width, result.height, result.frame_count) == ("image", 512, 512, 1)
    [only] = result.frames
    [face] = only.faces
    assert 190 <= face.box.x + face.box.w / 2 <= 250
    assert face.track == 1 and [t.id for t in result.tracks] == [1] and result.tracks[0].counted
    assert result.fake_probability == face.fake_probability
    assert 0.0 <= result.fake_probability <= 1.0
    assert result.verdict == verdict_for(
        result.fake_probability, threshold=result.threshold, threshold_real=result.threshold_real
    )
    assert result.model_name == "untrained-test-model"
    assert set(result.timings) == {"decode", "faces", "verify", "classify", "synthetic", "explain", "images"}
    assert seen == sorted(seen) and seen[-1] == 1.0
    heat = cv2.imdecode(np.frombuffer(face.heatmap_png, np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape == (224, 224, 3)
    # the heatmap covers the crop the model saw: the box with the model's margin
    assert face.crop == crop_box(face.box, 512, 512, detector.spec.face_margin, detector.spec.face_shift)
    assert face.crop.w > face.box.w
    picture = cv2.imdecode(np.frombuffer(only.image_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (512, 512, 3)  # never enlarged past the original
    thumbnail = cv2.imdecode(np.frombuffer(result.thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail.shape == (320, 320, 3)
    json.dumps(result.to_json_dict())  # plain values only


def test_a_large_photos_thumbnail_is_the_stored_picture_made_small(tmp_path, astronaut, detector):
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[300:812, 700:1212] = astronaut
    path = tmp_path / "wide.jpg"
    cv2.imwrite(str(path), canvas)
    result = detector.analyze(path)
    picture = cv2.imdecode(np.frombuffer(result.frames[0].image_jpeg, np.uint8), cv2.IMREAD_COLOR)
    thumbnail = cv2.imdecode(np.frombuffer(result.thumbnail_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (540, 960, 3) and thumbnail.shape == (180, 320, 3)
    expected = cv2.resize(picture, (320, 180), interpolation=cv2.INTER_AREA)
    assert np.abs(thumbnail.astype(int) - expected).mean() < 3


def test_a_thumbnail_is_never_cut_smaller_than_asked_when_the_stored_frame_is_smaller_than_stated():
    from ml.detector import decoded_for, jpeg_of

    frame = np.random.default_rng(0).integers(0, 255, (400, 500, 3), np.uint8)
    assert decoded_for(jpeg_of(frame, 960, 85), 320, 960).shape == (400, 500, 3)  # 1/2 would be 250 px
    assert decoded_for(jpeg_of(frame, 960, 85), 120, 500).shape == (100, 125, 3)  # 1/4 of the frame


def test_it_analyses_sampled_frames_of_a_video(tmp_path, astronaut, detector):
    path = write_video(tmp_path / "clip.mp4", moving_face_frames(astronaut, 12), fps=12)
    result = detector.analyze(path, DetectorOptions(max_frames=4, heatmaps=1, frame_image_size=128))
    assert result.media_type == "video"
    assert [f.index for f in result.frames] == [0, 4, 7, 11]
    assert [f.time for f in result.frames] == pytest.approx([0, 4 / 12, 7 / 12, 11 / 12], abs=1e-3)
    assert all(len(f.faces) == 1 for f in result.frames)
    assert result.duration == pytest.approx(1.0)
    assert [face.track for f in result.frames for face in f.faces] == [1, 1, 1, 1]  # one person
    assert result.fake_probability == pytest.approx(np.mean([f.fake_probability for f in result.frames]))
    assert sum(face.heatmap_png is not None for f in result.frames for face in f.faces) == 1
    # where the heatmap is brightest, said in words for those who cannot see it; only with a heatmap
    focus = [face.heatmap_focus for f in result.frames for face in f.faces if face.heatmap_png is not None]
    # (the untrained test model's heatmap may hold no heat at all: then it says so)
    assert len(focus) == 1 and ("brightest at the " in focus[0] or focus[0] == "no part pushed the score towards fake")
    assert all(face.heatmap_focus is None for f in result.frames for face in f.faces if face.heatmap_png is None)
    sizes = {cv2.imdecode(np.frombuffer(f.image_jpeg, np.uint8), cv2.IMREAD_COLOR).shape for f in result.frames}
    assert sizes == {(128, 128, 3)}


def test_a_cut_to_someone_else_in_the_same_place_makes_a_second_person(tmp_path, astronaut, detector):
    # "Someone else" where the astronaut was: her face flipped in place (other light and shade)
    # and the colours turned half-way round the hue circle.
    other = astronaut.copy()
    other[40:300, 100:350] = other[40:300, 100:350][:, ::-1]
    hsv = cv2.cvtColor(other, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 90) % 180
    other = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    path = write_video(tmp_path / "interview.mp4", [astronaut] * 8 + [other] * 8, fps=8)

    result = detector.analyze(path, DetectorOptions(max_frames=16, heatmaps=0))

    people = [face.track for f in result.frames for face in f.faces]
    assert len(people) >= 12
    assert sorted(set(people)) == [1, 2]
    assert people == sorted(people)  # the first half is person 1, the second person 2


def test_one_face_under_changing_coloured_light_stays_one_person(tmp_path, astronaut, detector):
    tints = [(1.0, 1.0, 1.0), (0.5, 0.8, 1.3), (1.3, 0.7, 0.5), (0.6, 1.3, 0.6)]  # B, G, R gains
    frames = [np.clip(astronaut * np.array(tints[i % 4]), 0, 255).astype(np.uint8) for i in range(16)]
    path = write_video(tmp_path / "disco.mp4", frames, fps=8)

    result = detector.analyze(path, DetectorOptions(max_frames=16, heatmaps=0))

    assert {face.track for f in result.frames for face in f.faces} == {1}


def test_boxes_of_frames_read_scaled_down_are_given_in_the_videos_own_pixels(tmp_path, astronaut, detector):
    from ml.media import MediaLimits

    path = write_video(tmp_path / "big.mp4", [astronaut] * 4, fps=4)  # 512 x 512
    as_photo = detector.analyze(write_photo(tmp_path / "frame.png", astronaut), DetectorOptions(heatmaps=0))
    read_at_half = DetectorOptions(heatmaps=0, limits=MediaLimits(frame_pixels=256 * 256))

    result = detector.analyze(path, read_at_half)

    assert (result.width, result.height) == (512, 512)
    expected = as_photo.frames[0].faces[0].box
    for frame in result.frames:
        assert iou(frame.faces[0].box, expected) > 0.6, (frame.faces[0].box, expected)  # not 0.1, as at half scale
        assert frame.faces[0].crop.w > frame.faces[0].box.w > 60  # the crop in the same pixels


def test_the_result_gives_a_variable_rate_videos_frames_their_own_times(tmp_path, astronaut, detector):
    from tests.media import write_variable_rate_video

    shown_at = [i * 0.04 for i in range(20)] + [0.8 + i * 0.2 for i in range(1, 21)]
    path = write_variable_rate_video(tmp_path / "phone.mkv", moving_face_frames(astronaut, 40), shown_at)

    result = detector.analyze(path, DetectorOptions(max_frames=8, heatmaps=0))

    assert [f.time for f in result.frames] == pytest.approx([shown_at[f.index] for f in result.frames], abs=0.002)
    assert result.tracks[0].last_time == pytest.approx(4.8, abs=0.002)


def test_frames_between_full_searches_find_the_person_near_where_they_were(astronaut, detector):
    frames = moving_face_frames(astronaut, 9, size=(320, 320))

    sparse, _, _ = detector.find_faces_in_frames(frames, DetectorOptions(full_search_every=4), {})
    full, _, _ = detector.find_faces_in_frames(frames, DetectorOptions(full_search_every=1), {})

    assert [len(b) for b in full] == [1] * 9
    assert [len(b) for b in sparse] == [1] * 9
    assert all(iou(a[0], b[0]) > 0.5 for a, b in zip(sparse, full))


def test_full_searches_come_every_fourth_frame_and_at_least_every_two_seconds():
    from ml.frames import full_search_positions

    assert full_search_positions([i / 3 for i in range(10)], 4, 2.0) == [0, 4, 8, 9]  # a 3 fps sample
    assert full_search_positions([i * 0.9 for i in range(6)], 4, 2.0) == [0, 2, 4, 5]  # 2 s apart at most
    assert full_search_positions([i * 1.9 for i in range(4)], 4, 2.0) == [0, 1, 2, 3]  # a long video
    assert full_search_positions([0.0], 4, 2.0) == [0]
    assert full_search_positions([], 4, 2.0) == []


def test_between_two_full_searches_that_found_nobody_the_middle_frame_is_searched_too(astronaut, detector):
    wall = np.full((320, 320, 3), 128, np.uint8)
    face = moving_face_frames(astronaut, 1, size=(320, 320))[0]
    sparse = DetectorOptions(full_search_every=4)

    def faces(frames):
        return [len(b) for b in detector.find_faces_in_frames(frames, sparse, {})[0]]

    assert faces([wall, wall, face, wall, wall]) == [0, 0, 1, 0, 0]  # the halfway frame
    assert faces([wall, face, face, face, wall]) == [0, 1, 1, 1, 0]  # and around it
    assert faces([wall, face, wall, wall, wall]) == [0, 0, 0, 0, 0]  # a face in one off-frame: missed


def test_a_video_whose_faces_are_all_too_small_for_the_first_search_is_searched_again_finer(tmp_path, astronaut, detector):
    from skimage.data import chelsea

    background = cv2.GaussianBlur(cv2.resize(chelsea()[..., ::-1], (1920, 1080)), (0, 0), 4)
    head = cv2.resize(astronaut[0:300, 60:390], (351, 319), interpolation=cv2.INTER_AREA)  # face about 100 px
    frames = []
    for step in range(6):
        frame = background.copy()
        frame[100:419, 200 + 8 * step : 551 + 8 * step] = head
        frames.append(frame)
    assert find_faces(frames[0]) == []  # the first search misses it
    path = write_video(tmp_path / "wide-shot.mp4", frames, fps=6)
    progress = []

    result = detector.analyze(path, DetectorOptions(heatmaps=0), progress=progress.append)

    assert [len(f.faces) for f in result.frames] == [1] * 6
    assert result.verdict != "no_face"
    # the second reading moves the bar on, not back to the start or standing still at 70 %
    second = progress[progress.index(0.7) + 1 : progress.index(0.85)]
    assert second and all(0.7 < f < 0.85 for f in second) and second == sorted(second)


def test_a_face_found_twice_one_box_inside_the_other_is_one_face_but_neighbours_stay_two():
    big, inside = Box(10, 40, 188, 188), Box(88, 52, 132, 132)  # as on a StyleTalk close-up
    left, right = Box(0, 0, 100, 100), Box(60, 0, 100, 100)  # two people, heads overlapping
    assert without_nested([inside, big]) == [big]
    assert without_nested([left, right]) == [left, right]


def test_an_ear_beside_a_face_is_not_a_second_face_but_a_child_a_face_away_is():
    face = Box(30, 50, 200, 200)
    ear = Box(235, 100, 45, 45)  # as on a Celeb-DF photo: a 43 px box on the ear scored 0.87
    child = Box(320, 150, 90, 90)  # beside the adult's head, clear of it
    large_neighbour = Box(240, 60, 150, 150)  # a second adult, more than half the size

    assert without_nested([face, ear]) == [face]
    assert without_nested([face, child]) == [face, child]
    assert without_nested([face, large_neighbour]) == [face, large_neighbour]


def test_a_small_face_in_a_large_photo_is_found_where_a_video_frames_search_misses_it(tmp_path, astronaut, detector):
    from skimage.data import chelsea

    background = cv2.GaussianBlur(cv2.resize(chelsea()[..., ::-1], (1920, 1080)), (0, 0), 4)
    head = cv2.resize(astronaut[0:300, 60:390], (351, 319), interpolation=cv2.INTER_AREA)  # face about 100 px
    canvas = background.copy()
    canvas[100:419, 200:551] = head
    assert find_faces(canvas) == []  # a video frame's search misses it
    path = tmp_path / "crowd.jpg"
    cv2.imwrite(str(path), canvas)

    result = detector.analyze(path, DetectorOptions(heatmaps=0))

    [face] = result.frames[0].faces
    assert 80 <= face.box.w <= 140 and 200 <= face.box.x <= 551
    assert result.verdict != "no_face"


def test_a_small_face_beside_a_large_one_in_a_photo_is_judged_too(tmp_path, astronaut, detector):
    from skimage.data import chelsea

    background = cv2.GaussianBlur(cv2.resize(chelsea()[..., ::-1], (1920, 1080)), (0, 0), 4)
    canvas = background.copy()
    canvas[40:1040, 60:1060] = cv2.resize(astronaut[0:400, 40:440], (1000, 1000))  # face about 400 px
    canvas[300:571, 1300:1598] = cv2.resize(astronaut[0:300, 60:390], (298, 271), interpolation=cv2.INTER_AREA)  # about 95 px
    assert [box.x < 1060 for box in find_faces(canvas)] == [True]  # a video frame's search finds the large face alone
    path = tmp_path / "speaker-and-crowd.jpg"
    cv2.imwrite(str(path), canvas)

    result = detector.analyze(path, DetectorOptions(heatmaps=0))

    large, small = result.frames[0].faces
    assert large.box.x < 1060 and large.box.w >= 200
    assert 1300 <= small.box.x <= 1598 and 70 <= small.box.w <= 130
    assert len(result.tracks) == 2


def test_a_group_photo_has_up_to_eight_faces_judged_where_a_video_frame_has_four(tmp_path, astronaut, detector):
    from skimage.data import chelsea

    canvas = cv2.GaussianBlur(cv2.resize(chelsea()[..., ::-1], (1920, 1080)), (0, 0), 4)
    face = cv2.resize(astronaut[0:300, 60:390], (330, 300), interpolation=cv2.INTER_AREA)
    for row in range(2):
        for col in range(3):  # six people, about 120 px faces
            canvas[100 + row * 480: 400 + row * 480, 100 + col * 600: 430 + col * 600] = face
    path = tmp_path / "group.jpg"
    cv2.imwrite(str(path), canvas)

    photo = detector.analyze(path, DetectorOptions(heatmaps=0))
    capped = detector.analyze(path, DetectorOptions(heatmaps=0, max_photo_faces=4))

    assert (len(photo.frames[0].faces), photo.frames[0].faces_left_out) == (6, 0)
    assert (len(capped.frames[0].faces), capped.frames[0].faces_left_out) == (4, 2)
    assert DetectorOptions().max_faces == 4  # a video's frames: every face costs 32 crops


def test_a_face_before_a_plain_white_wall_is_found_by_the_fine_search_without_equalisation(tmp_path, astronaut, detector):
    import dataclasses

    from ml.faces import FINE_SEARCH

    head = cv2.resize(astronaut[30:180, 170:320], (161, 161), interpolation=cv2.INTER_AREA)  # face about 100 px
    canvas = np.full((1080, 1920, 3), 235, np.uint8)
    canvas[600:761, 1200:1361] = head
    equalised_only = dataclasses.replace(FINE_SEARCH, unequalised_too=False)
    assert find_faces(canvas) == [] and find_faces(canvas, search=equalised_only) == []  # the wall takes the grey levels
    path = tmp_path / "press-photo.jpg"
    cv2.imwrite(str(path), canvas)

    result = detector.analyze(path, DetectorOptions(heatmaps=0))

    [face] = result.frames[0].faces
    assert 1200 <= face.box.x <= 1361 and 80 <= face.box.w <= 140
    assert result.verdict != "no_face"


def test_a_photo_decoded_at_a_fraction_of_its_size_reports_its_own_size_and_pixels(tmp_path, astronaut, detector):
    from PIL import Image

    from ml.media import MediaLimits

    small = detector.analyze(write_photo(tmp_path / "small.png", astronaut), DetectorOptions(heatmaps=0))
    path = tmp_path / "phone.jpg"
    upright = cv2.copyMakeBorder(cv2.resize(astronaut, (1024, 1024)), 0, 256, 0, 0, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    photo = Image.fromarray(upright[..., ::-1])
    exif = photo.getexif()
    exif[0x0112] = 6  # stored on its side (1280 x 1024), shown turned a quarter
    photo.rotate(90, expand=True).save(path, exif=exif, quality=95)
    over_budget = DetectorOptions(heatmaps=0, limits=MediaLimits(max_pixels=640 * 512))  # decoded at half

    result = detector.analyze(path, over_budget)

    assert (result.width, result.height) == (1024, 1280)
    [face] = result.frames[0].faces
    expected = small.frames[0].faces[0].box
    assert iou(face.box, Box(expected.x * 2, expected.y * 2, expected.w * 2, expected.h * 2)) > 0.6
    assert face.crop.w > face.box.w


def test_a_photo_without_a_face_is_no_face_not_real(tmp_path, detector):
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((300, 400, 3), 128, np.uint8))
    result = detector.analyze(path)
    assert result.verdict == "no_face"
    assert result.fake_probability is None
    assert result.faces_count == 0 and result.tracks == ()


def test_unreadable_files_raise_media_errors(tmp_path, detector):
    text = tmp_path / "photo.jpg"
    text.write_text("hello")
    with pytest.raises(MediaError):
        detector.analyze(text)


def test_gradcam_gives_a_heatmap_over_the_crop(astronaut, detector):
    crop = cv2.resize(astronaut[60:170, 170:280], (224, 224))
    heat = gradcam(detector.model, detector.spec, crop)
    assert heat.shape == (224, 224) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0


def test_loading_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no model checkpoint"):
        load_detector(tmp_path / "missing.pt")


def test_a_synthetic_face_makes_a_real_or_uncertain_verdict_fake_but_a_face_swap_stands_first():
    from ml.detector import combined_verdict

    assert combined_verdict("real", 0.9, 0.7) == ("fake", "ai_generated")
    assert combined_verdict("uncertain", 0.7, 0.7) == ("fake", "ai_generated")
    # the stronger, calibrated model's finding is the headline; the synthetic score is still kept
    assert combined_verdict("fake", 0.95, 0.7) == ("fake", "face_swap")


def test_below_the_synthetic_threshold_the_face_swap_verdict_stands():
    from ml.detector import combined_verdict

    assert combined_verdict("fake", 0.69, 0.7) == ("fake", "face_swap")
    assert combined_verdict("real", 0.3, 0.7) == ("real", "")
    assert combined_verdict("uncertain", None, None) == ("uncertain", "")
    assert combined_verdict("no_face", None, 0.7) == ("no_face", "")


def test_the_platform_score_read_with_the_face_swap_thresholds_gives_the_combined_verdict():
    from ml.detector import combined_verdict, platform_score, verdict_for

    grid = [i / 20 for i in range(21)]
    for fake in grid:
        for synthetic in grid:
            score = platform_score(fake, synthetic, threshold=0.886, threshold_real=0.384, synthetic_threshold=0.7)
            face_swap = verdict_for(fake, threshold=0.886, threshold_real=0.384)
            assert verdict_for(score, threshold=0.886, threshold_real=0.384) == combined_verdict(face_swap, synthetic, 0.7)[0]


def test_the_platform_score_ranks_a_more_synthetic_face_higher_and_is_the_face_swap_score_alone_without_it():
    from ml.detector import platform_score

    scores = [platform_score(0.1, s, threshold=0.8, threshold_real=0.4, synthetic_threshold=0.6) for s in (0.2, 0.5, 0.7, 0.9)]
    assert scores == sorted(scores) and len(set(scores)) == 4
    assert platform_score(0.3, None, threshold=0.8, threshold_real=0.4, synthetic_threshold=None) == 0.3
    assert platform_score(None, 0.9, threshold=0.8, threshold_real=0.4, synthetic_threshold=0.6) is None


def test_the_result_carries_both_scores_per_face_person_and_file(tmp_path, astronaut, detector):
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut)
    result = detector.analyze(path, DetectorOptions(heatmaps=0))
    [face] = result.frames[0].faces
    assert 0.0 <= face.synthetic_probability <= 1.0
    assert result.tracks[0].synthetic_probability == face.synthetic_probability == result.synthetic_probability
    assert result.synthetic_threshold == detector.synthetic.thresholds[1]
    assert result.fake_kind == ("ai_generated" if face.synthetic_probability >= result.synthetic_threshold else (
        "face_swap" if result.verdict == "fake" else ""))


def test_a_worker_analyses_a_photo_without_the_training_extra_or_torchvision(tmp_path, astronaut, untrained_checkpoint):
    """tqdm is in the `train` extra only: the detector, its verifier and both models run without
    it. Nor do they import torchvision or torch's compiler (ml/nets.py says why)."""
    import subprocess
    import sys

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut)
    code = (
        "import sys; sys.modules['tqdm'] = None\n"
        "from ml import load_detector\n"
        f"result = load_detector({str(untrained_checkpoint)!r}, device='cpu').analyze({str(photo)!r})\n"
        "print(result.media_type, result.faces_count)\n"
        "print(*sorted(m for m in ('torchvision', 'torch._dynamo', 'sympy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["image 1", ""]


def test_heatmaps_of_several_crops_at_once_are_each_crops_own(astronaut, detector):
    face = cv2.resize(astronaut[60:170, 170:280], (224, 224))
    crops = [face, face[:, ::-1].copy(), cv2.resize(astronaut, (224, 224))]
    together = gradcams(detector.model, detector.spec, crops)
    for crop, heat in zip(crops, together):
        assert np.abs(heat - gradcam(detector.model, detector.spec, crop)).max() < 1e-4


@pytest.mark.parametrize("arch", ["installed", "resnet18"])
def test_the_heatmaps_drawn_while_scoring_equal_grad_cam(astronaut, tmp_path, arch):
    if arch == "installed":
        detector = load_detector(device="cpu", synthetic=False, runtime="torch")
    else:
        from ml.model import build_model, save_checkpoint

        torch.manual_seed(0)
        detector = load_detector(save_checkpoint(build_model(arch=arch), tmp_path / "m.pt"), device="cpu", synthetic=False)
    size = detector.spec.input_size
    face = cv2.resize(astronaut[60:170, 170:280], (size, size))
    crops = [face, face[:, ::-1].copy(), cv2.resize(astronaut, (size, size))]

    scores, cams = detector.classify_with_cams(crops)

    assert np.allclose(scores, detector.classify(crops))
    heats = gradcams(detector.model, detector.spec, crops)
    assert any(heat.max() > 0 for heat in heats)
    for crop, cam, heat in zip(crops, cams, heats):
        assert np.abs(heatmap_of(cam, crop.shape[:2]) - heat).max() < 1e-3


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_the_fast_path_agrees_with_the_plain_fp32_models_on_real_faces(tmp_path, astronaut, runtime):
    from ml.detector import DEFAULT_CHECKPOINT, Detector
    from ml.model import load_checkpoint
    from ml.synthetic import load_synthetic_detector

    # the installed models as a worker runs them: their ONNX exports (ml/onnx_runtime.py), or
    # torch with batchnorm folded (ml.model.fold_batchnorm)
    fast = load_detector(device="cpu", runtime=runtime)
    assert fast.runtimes == runtime
    if runtime == "torch":
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.model.modules())
    model, spec = load_checkpoint(DEFAULT_CHECKPOINT, device="cpu")
    plain = Detector(model, spec, version=fast.version, synthetic=load_synthetic_detector(device="cpu"))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    options = DetectorOptions(frame_image_size=0, thumbnail_size=0)
    for name, image in faces_of_the_astronaut(astronaut).items():
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), image)
        a, b = fast.analyze(path, options), plain.analyze(path, options)
        assert a.faces_count == b.faces_count > 0, name
        assert (a.verdict, a.fake_kind) == (b.verdict, b.fake_kind), name
        assert a.fake_probability == pytest.approx(b.fake_probability, abs=0.01), name
        assert a.synthetic_probability == pytest.approx(b.synthetic_probability, abs=0.01), name


def threads_running_the_models(detector) -> tuple[dict[str, set[str]], list]:
    """The threads that ran each model (filled by forward hooks; clear it between analyses),
    and the hooks' handles."""
    seen: dict[str, set[str]] = {"face swap": set(), "synthetic": set()}

    def note(name):
        return lambda *_: seen[name].add(threading.current_thread().name)

    handles = [
        detector.model.register_forward_hook(note("face swap")),
        detector.synthetic.model.backbone[0].register_forward_hook(note("synthetic")),
    ]
    return seen, handles


def test_a_photos_face_is_scored_by_both_models_at_once_with_the_same_result(detector, tmp_path, astronaut, monkeypatch):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), astronaut)
    seen, handles = threads_running_the_models(detector)
    try:
        monkeypatch.setattr(detector, "side_by_side", True)
        together = detector.analyze(path)
        threads_together = {model: set(names) for model, names in seen.items()}
        for names in seen.values():
            names.clear()
        monkeypatch.setattr(detector, "side_by_side", False)
        in_turn = detector.analyze(path)
    finally:
        for handle in handles:
            handle.remove()
    assert together.faces_count == in_turn.faces_count == 1
    (swap_thread,), (synthetic_thread,) = threads_together["face swap"], threads_together["synthetic"]
    assert swap_thread != synthetic_thread
    assert swap_thread.startswith("models") and synthetic_thread.startswith("models")
    assert seen == {"face swap": {"MainThread"}, "synthetic": {"MainThread"}}
    assert together.fake_probability == pytest.approx(in_turn.fake_probability, abs=1e-6)
    assert together.synthetic_probability == pytest.approx(in_turn.synthetic_probability, abs=1e-6)
    assert together.verdict == in_turn.verdict
    assert [f.heatmap_png is not None for f in together.frames[0].faces] == [True]


def test_a_videos_faces_go_through_the_models_one_after_the_other(detector, tmp_path, astronaut):
    path = write_video(tmp_path / "clip.mp4", moving_face_frames(astronaut, 8), fps=8)
    seen, handles = threads_running_the_models(detector)
    try:
        result = detector.analyze(path)
    finally:
        for handle in handles:
            handle.remove()
    assert result.faces_count > 4  # more than one batch of crops
    assert seen == {"face swap": {"MainThread"}, "synthetic": {"MainThread"}}


def test_warming_up_runs_each_model_on_every_thread_that_will_run_it(detector):
    seen, handles = threads_running_the_models(detector)
    try:
        detector.warm_up()
    finally:
        for handle in handles:
            handle.remove()
    for model, names in seen.items():
        assert "MainThread" in names, model
        assert any(name.startswith("models") for name in names), model


def _use_the_model_threads(answers) -> None:
    from ml.detector import side_by_side_pool

    answers.put(side_by_side_pool().submit(threading.current_thread).result(timeout=20).name)


def test_a_process_forked_after_the_model_threads_started_gets_threads_of_its_own():
    import multiprocessing

    from ml.detector import side_by_side_pool

    assert side_by_side_pool().submit(lambda: 1).result(timeout=20) == 1  # the parent's threads exist
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_use_the_model_threads, args=(answers,))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert answers.get(timeout=5).startswith("models")


def test_a_face_found_again_on_a_confirmed_face_is_not_checked_again_but_any_other_box_is(detector, astronaut, monkeypatch):
    import ml.detector

    checked = []
    real_confirm = ml.detector.confirm_faces
    monkeypatch.setattr(ml.detector, "confirm_faces", lambda image, boxes, **kw: checked.append(list(boxes)) or real_confirm(image, boxes, **kw))
    options = DetectorOptions()
    [face], _, _ = detector.find_confirmed_faces(astronaut, options)
    assert checked == [[face]], "a full search checks every box"
    again, _, _ = detector.find_confirmed_faces(astronaut, options, near=[face])
    assert [iou(box, face) for box in again] == [pytest.approx(1.0, abs=0.3)] and checked[-1] == []
    moved = Box(face.x + face.w * 2 // 5, face.y, face.w, face.h)  # 0.4 of a face away: IoU 0.43
    found, _, _ = detector.find_confirmed_faces(astronaut, options, near=[moved])
    assert found and checked[-1] == found, "a box that is not on a confirmed face is checked"


class _OneViewSynthetic:
    """A synthetic-face model that is sure of one crop only (the face's own crop: the view a
    single frame gives) and doubts every other: as the shipped model can be on a real face."""

    def __init__(self, real_model, sure_of: np.ndarray):
        self.spec, self.sure_of, self.sure_times = real_model.spec, sure_of, 0

    def probabilities(self, crops):
        sure = [np.array_equal(crop, self.sure_of) for crop in crops]
        self.sure_times += sum(sure)
        return np.array([0.99 if s else 0.05 for s in sure])


def test_a_photo_is_called_ai_generated_only_when_every_view_of_the_face_agrees(tmp_path, astronaut, detector):
    from ml.synthetic import SyntheticDetector, load_synthetic_detector

    shipped = load_synthetic_detector(device="cpu")
    [box] = find_faces(astronaut, max_faces=1)
    unsteady = SyntheticDetector(_OneViewSynthetic(shipped.model, shipped.crop(astronaut, box)), version="test")
    judge = Detector(detector.model, detector.spec, version=detector.version, synthetic=unsteady)
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut)

    result = judge.analyze(path, DetectorOptions(heatmaps=0))

    assert unsteady.model.sure_times == 1  # the face's own crop was scored, and was sure
    assert result.synthetic_probability == pytest.approx(0.05)
    assert result.fake_kind != "ai_generated"
    sure = SyntheticDetector(_OneViewSynthetic(shipped.model, np.zeros(1)), version="test")
    sure.model.probabilities = lambda crops: np.full(len(crops), 0.99)
    never_swapped = dataclasses.replace(detector.spec, threshold=2.0)  # a face-swap "fake" would stand first
    result = Detector(detector.model, never_swapped, version=detector.version, synthetic=sure).analyze(path, DetectorOptions(heatmaps=0))
    assert result.verdict == "fake" and result.fake_kind == "ai_generated"


def test_a_video_called_ai_generated_by_the_second_model_alone_is_held_at_uncertain(tmp_path, astronaut, detector):
    """The second model learned still photos and was never tested on generated video
    (ml/caution.py): its call on a video is shown as a lead, the score kept."""
    from ml.synthetic import SyntheticDetector, load_synthetic_detector

    shipped = load_synthetic_detector(device="cpu")
    sure = SyntheticDetector(_OneViewSynthetic(shipped.model, np.zeros(1)), version="test")
    sure.model.probabilities = lambda crops: np.full(len(crops), 0.99)
    never_swapped = dataclasses.replace(detector.spec, threshold=2.0, threshold_real=1.5)
    judge = Detector(detector.model, never_swapped, version=detector.version, synthetic=sure)
    video = write_video(tmp_path / "clip.mp4", moving_face_frames(astronaut, 12), fps=12)

    result = judge.analyze(video, DetectorOptions(max_frames=4, heatmaps=0))

    assert (result.verdict, result.fake_kind, result.uncertain_reason) == ("uncertain", "", "ai_generated_video")
    assert result.synthetic_probability == pytest.approx(0.99)
    assert result.to_json_dict()["uncertain_reason"] == "ai_generated_video"


def test_a_video_whose_only_face_shows_in_two_of_its_frames_is_not_called_real(tmp_path, astronaut, detector):
    always_real = dataclasses.replace(detector.spec, threshold=3.0, threshold_real=2.0)  # every score "real"
    judge = Detector(detector.model, always_real, version=detector.version)
    faces = moving_face_frames(astronaut, 12)
    blank = np.full_like(faces[0], 90)
    video = write_video(tmp_path / "clip.mp4", [faces[k] if k in (0, 1) else blank for k in range(12)], fps=12)
    everywhere = write_video(tmp_path / "all.mp4", faces, fps=12)

    result = judge.analyze(video, DetectorOptions(max_frames=12, heatmaps=0))
    seen_throughout = judge.analyze(everywhere, DetectorOptions(max_frames=12, heatmaps=0))

    assert sum(1 for frame in result.frames if frame.faces) == 2
    assert (result.verdict, result.uncertain_reason) == ("uncertain", "few_frames")
    assert result.fake_probability < 2.0  # the score is kept as it was
    assert (seen_throughout.verdict, seen_throughout.uncertain_reason) == ("real", "")
