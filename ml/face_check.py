"""A hand-labelled check set of Haar boxes, and how well a verifier separates faces from the rest.

The set is a CSV (`file,frame,x,y,w,h,label`): `file` relative to a data root, `frame` the
frame index (0 for a photo), the Haar box in that frame's pixels, and `label` `face` or
`not_face`, set by a person looking at each box. `collect_boxes` proposes the boxes (every Haar
box, no verification, 8 evenly spaced frames per video) and `contact_sheets` draws numbered
crops for labelling; `measure` reports, per verifier, the precision of the boxes it keeps (the
share of scored boxes that are faces) and the recall of true faces. `search_recall` runs a face
search (`FaceSearch`: its scale step, its neighbours) over the labelled frames and counts the
labelled faces it finds, what a change to the search costs in recall. `framing_sensitivity`
measures how far the face-swap model's probability moves when a labelled face's box moves a
little, as it does between two searches of one face.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .datasets import IMAGE_SUFFIXES
from .faces import FaceSearch, find_faces
from .media import load_image_bgr
from .results import Box
from .tracks import iou
from .verify import VERIFIERS, confirm_faces
from .video import read_frames

FIELDS = ("file", "frame", "x", "y", "w", "h", "label")
LABELS = ("face", "not_face")


@dataclass(frozen=True)
class LabelledBox:
    file: str
    frame: int
    box: Box
    label: str = ""


def collect_boxes(root: Path, files: list[Path], *, frames_per_video: int = 8, max_faces: int = 8) -> list[LabelledBox]:
    """Every Haar box in the given files (unlabelled)."""
    found = []
    for path in files:
        for index, image in read_frames(path, frames_per_video):
            for box in find_faces(image, max_faces=max_faces):
                found.append(LabelledBox(str(path.relative_to(root)), index, box))
    return found


def write_boxes(boxes: list[LabelledBox], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for b in boxes:
            writer.writerow([b.file, b.frame, b.box.x, b.box.y, b.box.w, b.box.h, b.label])


def read_boxes(path: Path) -> list[LabelledBox]:
    with path.open(newline="") as fh:
        return [
            LabelledBox(row["file"], int(row["frame"]), Box(*(int(row[k]) for k in "xywh")), row["label"])
            for row in csv.DictReader(fh)
        ]


def _images_by_frame(root: Path, boxes: list[LabelledBox]) -> dict[tuple[str, int], np.ndarray]:
    """The frames the boxes were found in, decoded once per file."""
    wanted: dict[str, set[int]] = {}
    for b in boxes:
        wanted.setdefault(b.file, set()).add(b.frame)
    images = {}
    for file, frames in wanted.items():
        path = root / file
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images[(file, 0)] = load_image_bgr(path)
            continue
        cap = cv2.VideoCapture(str(path))
        for index in sorted(frames):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = cap.read()
            if ok:
                images[(file, index)] = image
        cap.release()
    return images


def contact_sheets(root: Path, boxes: list[LabelledBox], out: Path, *, per_sheet: int = 80, cell: int = 110) -> list[Path]:
    """PNG sheets of numbered box crops (with some context) for labelling by eye."""
    out.mkdir(parents=True, exist_ok=True)
    images = _images_by_frame(root, boxes)
    sheets = []
    columns = 10
    for start in range(0, len(boxes), per_sheet):
        chunk = boxes[start : start + per_sheet]
        rows = (len(chunk) + columns - 1) // columns
        sheet = np.full((rows * (cell + 18), columns * cell, 3), 255, np.uint8)
        for k, b in enumerate(chunk):
            image = images[(b.file, b.frame)]
            h, w = image.shape[:2]
            pad = b.box.w // 4
            x0, y0 = max(0, b.box.x - pad), max(0, b.box.y - pad)
            x1, y1 = min(w, b.box.x + b.box.w + pad), min(h, b.box.y + b.box.h + pad)
            crop = image[y0:y1, x0:x1].copy()
            cv2.rectangle(crop, (b.box.x - x0, b.box.y - y0), (b.box.x - x0 + b.box.w - 1, b.box.y - y0 + b.box.h - 1), (0, 255, 0), max(1, b.box.w // 60))
            crop = cv2.resize(crop, (cell - 4, cell - 4), interpolation=cv2.INTER_AREA)
            r, c = divmod(k, columns)
            sheet[r * (cell + 18) + 18 : r * (cell + 18) + 18 + cell - 4, c * cell : c * cell + cell - 4] = crop
            cv2.putText(sheet, str(start + k), (c * cell + 2, r * (cell + 18) + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 200), 1)
        path = out / f"sheet-{start // per_sheet:02d}.png"
        cv2.imwrite(str(path), sheet)
        sheets.append(path)
    return sheets


def measure(root: Path, boxes: list[LabelledBox], verifiers: tuple[str, ...] = VERIFIERS) -> dict[str, dict]:
    """Per verifier: kept boxes, precision of the kept boxes, recall of faces, seconds per box."""
    images = _images_by_frame(root, boxes)
    truth = np.array([b.label == "face" for b in boxes])
    report = {}
    for verifier in verifiers:
        started = time.perf_counter()
        kept = np.array([confirm_faces(images[(b.file, b.frame)], [b.box], verifier=verifier)[0] for b in boxes])
        seconds = time.perf_counter() - started
        tp = int((kept & truth).sum())
        report[verifier] = {
            "boxes": len(boxes),
            "faces": int(truth.sum()),
            "kept": int(kept.sum()),
            "kept_faces": tp,
            "kept_not_faces": int((kept & ~truth).sum()),
            "precision": tp / max(1, int(kept.sum())),
            "recall": tp / max(1, int(truth.sum())),
            "ms_per_box": round(1000 * seconds / max(1, len(boxes)), 2),
        }
    return report


def compare_search(detector, files: list[Path], *, every: int, frames: int | None = None) -> list[dict]:
    """Per video: what a full search of every `every`-th sampled frame, with the frames between
    searched only near known faces (ml/detector.py), keeps of the confirmed faces a full search
    of every frame finds, the seconds each spends finding and confirming faces, and the
    face-swap file score and verdict each leads to."""
    from .detector import verdict_for
    from .options import DetectorOptions
    from .tracks import face_look, file_score, link_tracks, summarize_tracks
    from .video import DEFAULT_FRAMES, sample_frames

    rows = []
    for path in files:
        _, sampled = sample_frames(path, frames or DEFAULT_FRAMES)
        images = [f.image for f in sampled]
        runs = {}
        for name, n in (("full", 1), ("sparse", every)):
            timings: dict[str, float] = {}
            boxes, _, _ = detector.find_faces_in_frames(
                images, DetectorOptions(full_search_every=n), timings, times=[f.time for f in sampled]
            )
            located = [(p, j) for p, frame_boxes in enumerate(boxes) for j in range(len(frame_boxes))]
            crops = [detector.crop(images[p], boxes[p][j]) for p, j in located]
            flat = detector.classify(crops)
            scores: list[list[float]] = [[] for _ in images]
            looks: list[list] = [[] for _ in images]
            for (p, _), score, crop in zip(located, flat, crops):
                scores[p].append(float(score))
                looks[p].append(face_look(crop))
            tracks = summarize_tracks(link_tracks(boxes, looks=looks), scores, [f.time for f in sampled])
            score = file_score(tracks)
            verdict = verdict_for(score, threshold=detector.threshold, threshold_real=detector.threshold_real)
            runs[name] = (boxes, timings["faces"] + timings["verify"], score, verdict)
        full, sparse = runs["full"][0], runs["sparse"][0]
        found = sum(len(b) for b in full)
        kept = sum(any(iou(a, b) >= 0.5 for b in s) for f, s in zip(full, sparse) for a in f)
        extra = sum(not any(iou(b, a) >= 0.5 for a in f) for f, s in zip(full, sparse) for b in s)
        rows.append({
            "file": path.name,
            "frames": len(images),
            "faces_full": found,
            "faces_kept": kept,
            "faces_extra": extra,
            "seconds_full": round(runs["full"][1], 3),
            "seconds_sparse": round(runs["sparse"][1], 3),
            "score_full": runs["full"][2],
            "score_sparse": runs["sparse"][2],
            "verdict_full": runs["full"][3],
            "verdict_sparse": runs["sparse"][3],
        })
    return rows


def search_recall(root: Path, boxes: list[LabelledBox], search: FaceSearch, *, verifier: str = "blazeface") -> dict:
    """The labelled faces a face search finds, its boxes confirmed by `verifier`: a labelled face
    is found when a confirmed box overlaps it (IoU 0.4 or more, as two searches of one face do);
    a confirmed box on no labelled face is counted as `extra` (a face nobody labelled, or not a
    face). Milliseconds per frame for the search and for the verification."""
    images = _images_by_frame(root, boxes)
    faces: dict[tuple[str, int], list[Box]] = {key: [] for key in images}
    for b in boxes:
        if b.label == "face" and (b.file, b.frame) in images:
            faces[(b.file, b.frame)].append(b.box)
    found = extra = proposed = 0
    missed: list[LabelledBox] = []
    searching = verifying = 0.0
    for (file, frame), image in sorted(images.items()):
        started = time.perf_counter()
        proposals = find_faces(image, max_faces=12, search=search)
        searched = time.perf_counter()
        kept = [box for box, ok in zip(proposals, confirm_faces(image, proposals, verifier=verifier)) if ok]
        searching += searched - started
        verifying += time.perf_counter() - searched
        proposed += len(proposals)
        truth = faces[(file, frame)]
        for face in truth:
            if any(iou(face, box) >= 0.4 for box in kept):
                found += 1
            else:
                missed.append(LabelledBox(file, frame, face, "face"))
        extra += sum(not any(iou(face, box) >= 0.4 for face in truth) for box in kept)
    frames = max(1, len(images))
    return {
        "scale_factor": search.scale_factor,
        "min_neighbors": search.min_neighbors,
        "frames": len(images),
        "faces": sum(len(v) for v in faces.values()),
        "found": found,
        "extra": extra,
        "proposed": proposed,
        "missed": missed,
        "search_ms_per_frame": round(1000 * searching / frames, 1),
        "verify_ms_per_frame": round(1000 * verifying / frames, 1),
    }


# Box moves of the size two Haar searches of one face differ by (their boxes overlap by IoU
# 0.87-0.97): (right, down) in box widths and heights, and a scale around the box's centre.
FRAMING_MOVES: tuple[tuple[float, float, float], ...] = (
    (0.04, 0.0, 1.0),
    (-0.04, 0.0, 1.0),
    (0.0, 0.04, 1.0),
    (0.0, -0.04, 1.0),
    (0.0, 0.0, 1.06),
    (0.0, 0.0, 0.94),
)


def moved_box(box: Box, right: float = 0.0, down: float = 0.0, scale: float = 1.0) -> Box:
    """`box` moved `right` box widths and `down` box heights, then scaled around its centre."""
    w, h = box.w * scale, box.h * scale
    cx, cy = box.x + box.w / 2 + right * box.w, box.y + box.h / 2 + down * box.h
    return Box(round(cx - w / 2), round(cy - h / 2), round(w), round(h))


def holds_fakes(file: str) -> bool:
    """Whether a file of ../shared/data shows manipulated faces: it lies in a folder named fake,
    or it is one of the FaceForensics++ example frames of a manipulation (`ml.cross.FFPP_FAKE`;
    they share a folder with the originals)."""
    from .cross import FFPP_FAKE

    path = Path(file)
    return "fake" in path.parts or path.name in FFPP_FAKE


def framing_sensitivity(detector, root: Path, boxes: list[LabelledBox], moves=FRAMING_MOVES) -> dict[str, dict]:
    """Per group of labelled faces (`fake` where the file `holds_fakes`, else `real`): how far
    a face's fake probability moves when its box makes each of `moves`, and how often its verdict
    band (real / uncertain / fake at the detector's thresholds) changes. The face box is the
    labelled one; each move's crop is cut the detector's way (`detector.crop`)."""
    from .detector import verdict_for

    images = _images_by_frame(root, boxes)
    changes: dict[str, list[float]] = {}
    flips: dict[str, int] = {}
    bands: dict[str, dict[str, int]] = {}
    for b in boxes:
        if b.label != "face" or (b.file, b.frame) not in images:
            continue
        image = images[(b.file, b.frame)]
        group = "fake" if holds_fakes(b.file) else "real"
        crops = [detector.crop(image, b.box)] + [detector.crop(image, moved_box(b.box, *move)) for move in moves]
        scores = [float(p) for p in detector.classify(crops)]
        verdicts = [verdict_for(p, threshold=detector.threshold, threshold_real=detector.threshold_real) for p in scores]
        changes.setdefault(group, []).append(max((abs(p - scores[0]) for p in scores[1:]), default=0.0))
        flips[group] = flips.get(group, 0) + (len(set(verdicts)) > 1)
        bands.setdefault(group, {"real": 0, "uncertain": 0, "fake": 0})[verdicts[0]] += 1
    report = {}
    for group, values in sorted(changes.items()):
        ordered = sorted(values)
        report[group] = {
            "faces": len(values),
            "median_change": round(statistics.median(ordered), 4),
            "p90_change": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 4),
            "max_change": round(ordered[-1], 4),
            "band_changed": flips[group],
            "verdicts_at_box": bands[group],
        }
    return report
