"""The detector: from a file on disk to a verdict with per-face, per-person and per-file scores.

Policy (tested in tests/ml/test_detector.py and tests/ml/test_tracks.py):
- frames: an image is one frame; a video is sampled at `max_frames` evenly spaced frames
  (ml/video.py);
- faces: Haar's cascade proposes boxes (ml/faces.py). In a video it searches the whole of
  every `full_search_every`-th sampled frame (6), never more than 2 s of video apart (so every
  frame of a long video), the last, and the frame halfway between two full searches that found
  nobody; the frames between are searched around the faces found on either side, and whole
  when that finds fewer faces than both sides had (someone moved away). A face that appears
  and leaves between two full searches is missed (measured against a full search of every
  frame by `python -m ml check-search`, numbers in ml/weights/MODEL_CARD.md).
  A whole frame (a photo, a video's frame searched whole) in which no face is confirmed is
  searched once more on a copy padded with its own edge pixels, for a face that fills the frame
  (a profile picture, a face-aligned clip; `find_faces_padded`): its boxes are clamped to the
  frame and confirmed and cropped like any other; a frame with a face never pays for it.
  Where that confirms nothing either, the frame is searched turned 15 degrees each way, then
  30, for a tilted head (`find_faces_rotated`, stopping at the first step that confirms a
  face): a box comes back as the bounding box of the turned box, clamped to the frame, is
  confirmed more strictly (the whole face inside it, ml/verify.py) and its crops are cut
  upright (`TurnedBox`). Measured 2026-11-27 (runs/rotated, not committed; numbers in
  ml/faces.py): faces in 51 of the 52 sampled frames of the 31 videos of ../shared/data/videos
  that the other searches left without one, no box on 527 face-free pictures, no face it found
  called fake, no video verdict worse. A video's second, finer reading runs neither retry again.
  Between two whole searches, a tilted face is looked for near where it was on a copy of its
  region turned by its angle (`find_faces_near`), and found there as a tilted face again.
  Each box is confirmed by a second
  detector (ml/verify.py) and a box that is not confirmed is never scored or shown as a face.
  A box found by the search around known faces that overlaps one of them by at least half
  (IoU >= 0.5) is that face, moved, and keeps its confirmation: on the 31 videos of
  ../shared/data/videos the verifier confirmed all 639 such boxes (measured 2026-11-26), and
  checking them was a tenth of a video's analysis. Boxes found elsewhere are always checked.
  A face whose crop is too blurred to judge (a re-post's blurred fill, a face out of focus:
  `too_blurred`, ml/verify.py; checked where the verifier is, a carried box keeping its
  answer) is not scored either and counts with the boxes rejected; at
  most `max_faces` confirmed faces per frame of a video are scored, `max_photo_faces` of a
  photo, largest first (the others are counted as left out);
- a face's score is the model's calibrated fake probability for its crop (logits divided by the
  checkpoint's temperature);
- faces are linked across frames into tracks, one per person (ml/tracks.py); a track scores the
  mean of its faces, and the file scores as its most suspicious track that spans enough frames,
  so one swapped person among real ones makes the file fake and a one-frame box cannot;
- a frame's score (for the timeline) is its most suspicious face;
- the verdict: "fake" at or above the checkpoint's threshold, "real" below its lower threshold,
  "uncertain" between the two, and "no_face" when no confirmed face was found in any sampled
  frame. A file in which no face was examined is never called "real".

Two detectors, one verdict. Beside the face-swap model above, a second model (ml/synthetic.py,
its own checkpoint and thresholds) scores confirmed faces for being wholly generated (a person
who never existed). Whether a person exists does not change from frame to frame, so it scores
at most `SYNTHETIC_FACES_PER_TRACK` (4) faces of each person, evenly spaced along the track (the
others carry no synthetic probability); scoring every face of a 32-frame video cost as much as
the face-swap model. A photo's face is scored on three framings of it (its crop, a tighter and
a looser one: `SyntheticDetector.views`) and its probability is the lowest: one frame's score
is unsteady, and a photo has no other frames. A
person's probability is the mean of their scored faces, the file's the highest among the
counted people. Combination rule:
- a face-swap verdict of "fake" stands first, with kind "face_swap", whatever the synthetic
  score: the face-swap model is the stronger and the calibrated one, and in a video of two
  people, one swapped and one real, a real face's false AI-generated alarm would otherwise take
  the headline and name the wrong person (seen 2026-11-27 on a clip made of a DFDC fake beside
  a re-encoded real clip);
- otherwise the synthetic probability at or above the synthetic checkpoint's threshold makes
  the verdict "fake" with kind "ai_generated";
- otherwise the face-swap verdict stands (real or uncertain); the synthetic
  model's own "uncertain" band does not change the verdict (it covers most real photos), but its
  probability is always reported;
- no face: "no_face" for both.
A verdict is then held at "uncertain", with its reason, in four cases (ml/caution.py): in a
video, "real" from a person seen in too few frames to count, "real" on average with several
faces in the fake band, and "Fake: AI-generated face" by the second model alone; in any file,
"real" while the second model gives at least half its threshold. The score is unchanged.
Runtimes: on a CPU the models' ONNX exports score the faces (ml/onnx_runtime.py), so a worker
never loads torch; torch scores them on a GPU, for a checkpoint without a matching export (one
just trained), or when asked (`load_detector(runtime=...)`). Both give the same probabilities
within 1e-5 and the same heatmaps (tests/ml/test_onnx_runtime.py).

One number for ranking files (the ROC AUC of `evaluate`): the platform score, the face-swap
probability or the synthetic probability mapped onto the face-swap scale, whichever is higher.
The map sends the synthetic threshold to the face-swap threshold and everything below it under
the face-swap "real" threshold, so the platform score read with the face-swap thresholds gives
exactly the combined verdict (before a verdict is held at "uncertain": ml/caution.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from .errors import CheckpointError
from .faces import (
    FINE_SEARCH,
    PHOTO_SEARCH,
    ROTATIONS,
    FaceSearch,
    TurnedBox,
    crop_box,
    crop_face,
    find_faces,
    find_faces_near,
    find_faces_padded,
    find_faces_rotated,
    turned_crop_region,
)
from .heatmaps import heat_focus, heatmap_of, overlay_png
from .media import drafted_size, load_image_bgr, media_kind
from .onnx_runtime import OnnxFaceSwap, OnnxSyntheticModel, export_path_for, file_sha256, load_export
from .onnx_runtime import threads_set as onnx_threads_set
from .spec import CPU_BATCH_SIZE, real_threshold
from .results import (
    KIND_AI_GENERATED,
    KIND_FACE_SWAP,
    MEDIA_IMAGE,
    VERDICT_FAKE,
    VERDICT_NO_FACE,
    VERDICT_REAL,
    VERDICT_UNCERTAIN,
    AnalysisResult,
    Box,
    FaceResult,
    FrameResult,
)
from .options import DetectorOptions
from .caution import uncertain_reason
from .tracks import (
    SYNTHETIC_FACES_PER_TRACK,
    evenly_spaced_faces,
    face_look,
    faces_to_explain,
    file_score,
    iou,
    link_tracks,
    summarize_tracks,
    synthetic_score,
)
from .verify import confirm_faces, too_blurred
from .frames import FULL_SEARCH_MAX_GAP_S, FrameDigest, FrameDigester
from .video import sample_frames

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "detector.pt"
HAAR_MAX_BOXES = 12  # Haar proposals examined per frame before verification
CARRY_CONFIRMED_IOU = 0.5  # a near-search box overlapping a confirmed neighbour this much is confirmed

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}  # name -> (the process that made it, the pool)
_pools_lock = threading.Lock()


def _process_pool(name: str, make: Callable[[], ThreadPoolExecutor]) -> ThreadPoolExecutor:
    """This process's pool called `name`, made on first use. A process forked after a pool was
    made (a queue worker) makes its own: threads do not survive a fork."""
    with _pools_lock:
        made = _pools.get(name)
        if made is None or made[0] != os.getpid():
            made = _pools[name] = (os.getpid(), make())
        return made[1]


def side_by_side_pool() -> ThreadPoolExecutor:
    """Two threads that run the two models at once, each on half of torch's threads.

    One batch of crops (a photo's faces) does not use two cores well: a MobileNetV2 at batch 1
    took about as long on one thread as on two. Scoring a photo's face with both models side by
    side, one core each, took the two models from 42 to 28 ms and the whole photo from 120 to
    112 ms (median of 50 alternating runs, an AMD EPYC with 2 cores). A video's batches of 4 do
    use both cores (32 crops: 271 ms on two threads, 486 on one), so they go one model after the
    other. Torch's thread count is per thread (OpenMP), so these threads leave the caller's
    alone."""
    import torch

    def make() -> ThreadPoolExecutor:
        each = max(1, torch.get_num_threads() // 2)
        return ThreadPoolExecutor(2, thread_name_prefix="models", initializer=torch.set_num_threads, initargs=(each,))

    return _process_pool("torch side by side", make)


def onnx_lanes_pool() -> ThreadPoolExecutor:
    """The threads that run the ONNX exports (`onnx_runtime.lanes()` of them): every batch of
    crops and the synthetic model's job go to whichever is free, each on its own cores.

    Two lanes of one thread each beat one lane of two threads on a 2-core CPU (measured
    2026-11-26, a Xeon): a photo's two models 9.1 ms against 13.6 (right after a Haar search,
    as in an analysis), 32 DFDC faces and a person's 4 synthetic crops 155 ms against 178: a
    batch of 4 crops does not keep two cores busy, and two batches at once do."""
    from .onnx_runtime import lanes

    return _process_pool("onnx lanes", lambda: ThreadPoolExecutor(lanes(), thread_name_prefix="models"))


_threads: int | None = None  # what `threads_set` asked for, applied to torch when it is loaded


def threads_set(threads: int) -> None:
    """The threads OpenCV, ONNX Runtime and torch (if this process loads it) each use, for a
    worker process: call once, before any work and before `load_detector`."""
    global _threads
    _threads = threads
    cv2.setNumThreads(threads)
    onnx_threads_set(threads)
    if "torch" in sys.modules:
        _torch_threads_set(threads)


def _torch_threads_set(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op work already ran in this process
        pass


Progress = Callable[[float], None]


def _in_frame_pixels(box: Box | None, searched: tuple[int, int] | None, frame: tuple[int, int]) -> Box | None:
    """A box found on a frame scaled down for the search (a 4K video's frames are read at
    1080p, see MediaLimits.frame_pixels; a JPEG over the pixel budget is decoded at 1/2 to 1/8)
    in the pixels of the frame the result reports."""
    if box is None:
        return None
    if searched is None or searched == frame:
        return Box(box.x, box.y, box.w, box.h)  # (a tilted face's TurnedBox: its rectangle only)
    sx, sy = frame[0] / searched[0], frame[1] / searched[1]
    return Box(round(box.x * sx), round(box.y * sy), round(box.w * sx), round(box.h * sy))


NESTED_SHARE = 0.7  # of a smaller face's box inside a larger one: the same face found twice


def without_nested(faces: list[Box]) -> list[Box]:
    """The faces (largest first) without those whose box lies mostly inside a larger face's: two
    boxes Haar's grouping left on one face, both confirmed (on StyleTalk's close-ups, a 132 px box
    inside a 188 px one), would otherwise make one person two. Nor a part of a larger face's
    head (`_part_of`)."""
    kept: list[Box] = []
    for box in sorted(faces, key=lambda b: b.w * b.h, reverse=True):
        if all(_inside_share(box, larger) < NESTED_SHARE and not _part_of(box, larger) for larger in kept):
            kept.append(box)
    return kept


# A confirmed box at most 0.35 of a larger face's size whose centre lies within that face's box
# enlarged 1.45 times is an ear or a lock of hair of the same head, not a second face. Measured
# 2026-11-27 on the results of 2,543 photos (UTKFace, Celeb-DF, FFHQ, inswapper, StyleGAN2,
# DFDC crops) and 31 videos: it drops 3 boxes, all of real photos and all an ear or hair beside
# the face (one had made a real Celeb-DF photo "Fake: face swap, 87.2 %", two uncertain at 0.60
# and 0.72; their faces score 0.02 or less), and none in the videos or the fakes. Those three
# lie at 1.31-1.42 times the face's box and 0.16-0.35 its size. On 50 made-up group photos (ml/
# faces.py, DEFAULT_MAX_PHOTO_FACES) a rule of 1.5 and 0.5 also dropped 4 of 237 pasted faces
# (one of them a fake, whose photo went from fake to uncertain), at 1.10-1.48 and 0.34-0.48:
# these limits keep them all. Few points: a face of someone behind, a third of the size and
# right beside a face's edge, would be taken for part of that face.
PART_REACH = 1.45
PART_MOST = 0.35


def _part_of(box: Box, larger: Box) -> bool:
    if max(box.w, box.h) > PART_MOST * max(larger.w, larger.h):
        return False
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    ex, ey = larger.w * (PART_REACH - 1) / 2, larger.h * (PART_REACH - 1) / 2
    return larger.x - ex <= cx <= larger.x + larger.w + ex and larger.y - ey <= cy <= larger.y + larger.h + ey


def _inside_share(box: Box, other: Box) -> float:
    """How much of `box`'s area lies inside `other`."""
    x0, y0 = max(box.x, other.x), max(box.y, other.y)
    x1, y1 = min(box.x + box.w, other.x + other.w), min(box.y + box.h, other.y + other.h)
    return max(0, x1 - x0) * max(0, y1 - y0) / max(1, box.w * box.h)


def verdict_for(score: float | None, *, threshold: float, threshold_real: float) -> str:
    """The verdict for a file score under the two thresholds (see the module's policy)."""
    if score is None:
        return VERDICT_NO_FACE
    if score >= threshold:
        return VERDICT_FAKE
    if score < threshold_real:
        return VERDICT_REAL
    return VERDICT_UNCERTAIN


def combined_verdict(
    face_swap_verdict: str, synthetic_probability: float | None, synthetic_threshold: float | None
) -> tuple[str, str]:
    """(verdict, fake kind) under the combination rule of the module's docstring."""
    if face_swap_verdict == VERDICT_FAKE:
        return VERDICT_FAKE, KIND_FACE_SWAP
    if synthetic_threshold is not None and synthetic_probability is not None:
        if synthetic_probability >= synthetic_threshold:
            return VERDICT_FAKE, KIND_AI_GENERATED
    return face_swap_verdict, ""  # real, uncertain or no face: no kind of fake


def platform_score(
    fake_probability: float | None,
    synthetic_probability: float | None,
    *,
    threshold: float,
    threshold_real: float,
    synthetic_threshold: float | None,
) -> float | None:
    """The file's single score under the combination rule (see the module's docstring):
    `verdict_for(platform_score(...))` equals the combined verdict."""
    if fake_probability is None or synthetic_probability is None or synthetic_threshold is None:
        return fake_probability
    if synthetic_probability >= synthetic_threshold:  # [t_syn, 1] onto [threshold, 1]
        lifted = threshold + (1 - threshold) * (synthetic_probability - synthetic_threshold) / max(1e-9, 1 - synthetic_threshold)
    else:  # [0, t_syn) onto [0, threshold_real): never moves a verdict off "real"
        lifted = threshold_real * synthetic_probability / synthetic_threshold
    return max(fake_probability, lifted)


def _synthetic_views(digest: FrameDigest, j: int) -> list[np.ndarray]:
    """Face `j`'s crop for the synthetic model, then its other views where the frame has them
    (a photo's: SyntheticDetector.views)."""
    return [digest.synthetic_crops[j], *(digest.synthetic_views[j] if digest.synthetic_views else [])]


def scaled_down(image: np.ndarray, long_side: int) -> np.ndarray:
    """A BGR frame scaled down (never up) so its longer side is at most `long_side`.

    Area averaging where the frame shrinks to half or less; bilinear above that, where it looks
    the same and costs a third (720p to 960 px: 1.8 ms against 5.6 ms a frame here)."""
    height, width = image.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale < 1.0:
        interpolation = cv2.INTER_AREA if scale <= 0.5 else cv2.INTER_LINEAR
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interpolation)
    return image


def jpeg_of(image: np.ndarray, long_side: int, quality: int) -> bytes:
    """A JPEG of a BGR frame `scaled_down` to `long_side`."""
    ok, encoded = cv2.imencode(".jpg", scaled_down(image, long_side), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode a frame as JPEG")
    return encoded.tobytes()


_REDUCED_READS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def decoded_for(jpeg: bytes, long_side: int, stored_long_side: int) -> np.ndarray:
    """A stored frame JPEG (its longer side `stored_long_side`) decoded at the smallest of 1/8,
    1/4 and 1/2 of its size whose longer side is still at least `long_side`, or whole: libjpeg
    scales while it decodes, so the thumbnail of a 960 px frame costs 1.5 ms instead of 3.7.
    Decoded whole again if the frame turns out smaller than stated."""
    data = np.frombuffer(jpeg, np.uint8)
    image = None
    for factor, reduced in _REDUCED_READS:
        if stored_long_side // factor >= long_side:
            image = cv2.imdecode(data, reduced)
            break
    if image is None or max(image.shape[:2]) < long_side:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("could not decode a stored frame JPEG")
    return image


class Detector:
    """A loaded model plus the face search and aggregation around it. Reuse one per process."""

    def __init__(self, model, spec, *, version: str, synthetic=None):
        self.model = model  # a torch module, or its ONNX export (ml/onnx_runtime.py)
        self.spec = spec
        self.version = version
        self.synthetic = synthetic  # a SyntheticDetector (ml/synthetic_spec.py), or None
        self.runtime = "onnx" if isinstance(model, OnnxFaceSwap) else "torch"
        self.device = None if self.runtime == "onnx" else next(model.parameters()).device  # torch's only
        self.side_by_side = True  # off: the models always one after the other (for measuring)
        self.padded_retry = True  # off: no second search for a face that fills the frame (for measuring)
        self.rotated_retry = True  # off: no search of turned copies for a tilted head (for measuring)

    @property
    def runtimes(self) -> str:
        """Which runtime scores each model ("onnx", "torch", "onnx+torch": face swap + synthetic)."""
        second = getattr(self.synthetic.model, "runtime", "torch") if self.synthetic is not None else self.runtime
        return self.runtime if second == self.runtime else f"{self.runtime}+{second}"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    @property
    def threshold_real(self) -> float:
        return real_threshold(self.spec)

    def crop_region(self, box: Box, size: tuple[int, int] | None) -> Box | None:
        """Where `crop` cuts for this box in a frame of `size` (width, height); for a tilted face,
        upright in the frame turned by the box's angle (ml.faces.turned_crop_region)."""
        if size is None:
            return None
        if isinstance(box, TurnedBox):
            return turned_crop_region(box, self.spec.face_margin, self.spec.face_shift)
        return crop_box(box, size[0], size[1], self.spec.face_margin, self.spec.face_shift)

    def crop(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The crop this model expects for a face box (its own framing and input size)."""
        return crop_face(
            image, box, size=self.spec.input_size, margin=self.spec.face_margin, shift=self.spec.face_shift
        )

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated fake probability per face crop (float64 array), computed in batches."""
        if self.runtime == "onnx":
            return self.classify_with_cams(crops)[0]
        import torch

        from .model import fake_probability, inference_batch_size, preprocess, scoring_precision

        scores = []
        size = inference_batch_size(self.device)
        with torch.inference_mode():
            for start in range(0, len(crops), size):
                batch = preprocess(list(crops[start : start + size]), self.spec).to(self.device)
                with scoring_precision(self.device):
                    logits = self.model(batch)
                scores.append(fake_probability(logits, self.spec.temperature))
        return np.concatenate(scores) if scores else np.zeros(0)

    def _side_by_side(self, crops: Sequence[np.ndarray]) -> bool:
        """Whether the two models score these crops at once (`side_by_side_pool`): on a CPU
        that gives torch two threads or more, when the face-swap crops are a single batch."""
        if not self.side_by_side or self.runtime != "torch" or self.device.type != "cpu":
            return False
        import torch

        return torch.get_num_threads() >= 2 and 0 < len(crops) <= CPU_BATCH_SIZE

    def _score_in_lanes(self, crops, synthetic_crops) -> tuple[tuple[np.ndarray, list[np.ndarray]], np.ndarray | None]:
        """(`classify_with_cams(crops)`, `synthetic.score(synthetic_crops)` or None without a
        synthetic model) with the ONNX exports: the synthetic job and the face-swap batches
        share the lanes of `onnx_lanes_pool`."""
        pool = onnx_lanes_pool()
        values = pool.submit(self.synthetic.score, synthetic_crops) if self.synthetic is not None else None
        scored = self.classify_with_cams(crops)
        return scored, (values.result() if values is not None else None)

    def _score_side_by_side(self, crops, synthetic_crops) -> tuple[tuple[np.ndarray, list[np.ndarray]], np.ndarray]:
        """(`classify_with_cams(crops)`, `synthetic.score(synthetic_crops)`), the two models
        running at once on the threads of `side_by_side_pool`, one core each."""
        pool = side_by_side_pool()
        scored = pool.submit(self.classify_with_cams, crops)
        values = pool.submit(self.synthetic.score, synthetic_crops).result()
        return scored.result(), values

    def warm_up(self, options: DetectorOptions = DetectorOptions()) -> None:
        """Run every stage once on a made-up grey frame, so that the first file pays for no
        lazy loading or first call: the Haar cascade and BlazeFace, each model on each thread
        that will run it (a photo's first analysis took 200 ms instead of 120 when the models
        had run on the main thread only), the heatmap overlay and the JPEG codec."""
        frame = np.full((480, 640, 3), 128, np.uint8)
        box = Box(240, 160, 160, 160)
        self.find_confirmed_faces(frame, options)
        confirm_faces(frame, [box], verifier=options.verifier)
        crops = [self.crop(frame, box)]
        _, cams = self.classify_with_cams(crops)  # on this thread, as for a video (torch)
        if self.runtime == "onnx":
            self._score_in_lanes(crops, [self.synthetic.crop(frame, box)] if self.synthetic is not None else [])
        elif self.synthetic is not None:
            synthetic_crops = [self.synthetic.crop(frame, box)]
            self.synthetic.score(synthetic_crops)
            if self._side_by_side(crops):  # as for a photo
                self._score_side_by_side(crops, synthetic_crops)
        overlay_png(crops[0], heatmap_of(cams[0], crops[0].shape[:2]))
        encoded = jpeg_of(frame, options.frame_image_size or 640, options.jpeg_quality)
        decoded_for(encoded, options.thumbnail_size or 320, options.frame_image_size or 640)

    def classify_with_cams(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """`classify`, plus each crop's coarse class activation map from the same forward pass
        (ml/explain.py: equal to Grad-CAM for these models, without a backward pass)."""
        if self.runtime == "onnx":
            return self.model.scores_and_cams(crops, map_batches=onnx_lanes_pool().map)
        from .explain import recording_cams

        with recording_cams(self.model, self.spec) as cams:
            scores = self.classify(crops)
        return scores, cams

    def find_confirmed_faces(
        self,
        image: np.ndarray,
        options: DetectorOptions,
        timings: dict[str, float] | None = None,
        *,
        near: list[Box] | None = None,
        search: FaceSearch = FaceSearch(),
        padded: bool = False,
        turned: tuple[float, ...] = (),
    ) -> tuple[list[Box], int, int]:
        """(confirmed faces to score, confirmed faces left out by the cap, boxes rejected), from
        a search of the whole frame (with `search`; `padded`: of a copy with its edges repeated
        beyond it, for a face that fills the frame; `turned`: of that copy turned by these
        angles, for a tilted head) or, given `near`, of the regions around those boxes.
        Seconds spent are added to `timings["faces"]` (Haar) and `timings["verify"]`."""
        timings = {} if timings is None else timings
        started = time.perf_counter()
        if turned:
            boxes = find_faces_rotated(image, turned, max_faces=HAAR_MAX_BOXES)
        elif padded:
            boxes = find_faces_padded(image, max_faces=HAAR_MAX_BOXES)
        elif near is None:
            boxes = find_faces(image, max_faces=HAAR_MAX_BOXES, search=search)
        else:
            boxes = find_faces_near(image, near, search=search)[:HAAR_MAX_BOXES]
        searched = time.perf_counter()
        # a box on a face confirmed in a neighbouring searched frame is that face, moved: only
        # the others are checked again (see the policy above)
        carried = [near is not None and any(iou(box, known) >= CARRY_CONFIRMED_IOU for known in near) for box in boxes]
        checked = iter(confirm_faces(image, [b for b, c in zip(boxes, carried) if not c], verifier=options.verifier))
        confirmed = [True if c else next(checked) for c in carried]
        # the blur check, before the nesting below (a blurred copy of a face around a sharp one
        # must not hide it); a carried box keeps that check's answer too (1 ms a face)
        confirmed = [ok and (c or not too_blurred(self.crop(image, box))) for box, ok, c in zip(boxes, confirmed, carried)]
        timings["faces"] = timings.get("faces", 0.0) + searched - started
        timings["verify"] = timings.get("verify", 0.0) + time.perf_counter() - searched
        faces = without_nested([box for box, ok in zip(boxes, confirmed) if ok])
        kept = faces[: options.max_faces]
        return kept, len(faces) - len(kept), len(boxes) - len(faces)

    def _digester(
        self,
        options: DetectorOptions,
        timings: dict[str, float],
        *,
        digest,
        progress=None,
        photo: bool = False,
        whole: FaceSearch = FaceSearch(),
        retries: bool = True,
    ) -> FrameDigester:
        """`whole`: how a whole frame of a video is searched; `photo`: the frame is a photo,
        searched with PHOTO_SEARCH (small faces too), and again with FINE_SEARCH when no face is
        found. A whole frame (a photo, a video's frame) in which no face is confirmed is searched
        once more padded, for a face that fills it (`find_faces_padded`), and then turned, a step
        of ROTATIONS at a time, for a tilted head (`find_faces_rotated`), unless `retries` is off
        (a video's second, finer reading: its frames were searched so in the first)."""
        first = PHOTO_SEARCH if photo else whole
        capped = replace(options, max_faces=options.max_photo_faces) if photo else options

        def search(image: np.ndarray, near: list[Box] | None) -> tuple[list[Box], int, int]:
            found = self.find_confirmed_faces(image, capped, timings, near=near, search=first)
            if photo and not found[0]:  # small faces: see FINE_SEARCH
                fine = self.find_confirmed_faces(image, capped, timings, search=FINE_SEARCH)
                found = fine if fine[0] else found
            if retries and near is None and not found[0] and self.padded_retry:  # a face filling the frame
                filling = self.find_confirmed_faces(image, capped, timings, padded=True)
                found = filling if filling[0] else found
            if retries and near is None and not found[0] and self.rotated_retry:  # a tilted head
                for angles in ROTATIONS:  # a step at a time: the first that confirms a face
                    tilted = self.find_confirmed_faces(image, capped, timings, turned=angles)
                    if tilted[0]:
                        return tilted
            return found

        return FrameDigester(
            search=search,
            digest=digest,
            every=options.full_search_every,
            max_gap_s=FULL_SEARCH_MAX_GAP_S,
            progress=progress,
        )

    def _digest_frame(self, options: DetectorOptions, *, photo: bool = False):
        """What `analyze` keeps of a frame once its faces are known (ml/frames.py); of a photo,
        every view of each face for the synthetic model too (ml/synthetic_spec.py)."""

        def digest(index: int, time_s: float, image: np.ndarray, boxes: list[Box], left_out: int, rejected: int) -> FrameDigest:
            own: list[np.ndarray] = []  # the synthetic model's crop of each face
            others: list[list[np.ndarray]] = []  # a photo's: the other views of each face
            if self.synthetic is not None and photo:
                views = [self.synthetic.views(image, box) for box in boxes]
                own, others = [v[0] for v in views], [v[1:] for v in views]
            elif self.synthetic is not None:
                own = [self.synthetic.crop(image, box) for box in boxes]
            return FrameDigest(
                index=index,
                time=time_s,
                boxes=boxes,
                faces_left_out=left_out,
                boxes_rejected=rejected,
                crops=[self.crop(image, box) for box in boxes],
                synthetic_crops=own,
                synthetic_views=others,
                jpeg=jpeg_of(image, options.frame_image_size, options.jpeg_quality) if options.frame_image_size else None,
                # the thumbnail is cut from the stored JPEG; a copy only where there is none
                small=scaled_down(image, options.thumbnail_size) if options.thumbnail_size and not options.frame_image_size else None,
                size=(image.shape[1], image.shape[0]),
            )

        return digest

    def find_faces_in_frames(
        self,
        images: Sequence[np.ndarray],
        options: DetectorOptions,
        timings: dict[str, float],
        *,
        times: Sequence[float] | None = None,
    ) -> tuple[list[list[Box]], list[int], list[int]]:
        """The confirmed faces of a list of frames (`times`: theirs in seconds), searched as
        `analyze` searches a video's frames (the module's policy), as lists over the frames:
        (faces to score, faces left out by the cap, boxes rejected)."""
        digester = self._digester(
            options, timings, digest=lambda index, t, image, boxes, out, rejected: FrameDigest(index, t, boxes, out, rejected)
        )
        digester.begin(list(range(len(images))), list(times) if times is not None else [0.0] * len(images))
        for index, image in enumerate(images):
            digester.add(index, image)
        digests = digester.finish()
        return [d.boxes for d in digests], [d.faces_left_out for d in digests], [d.boxes_rejected for d in digests]

    def analyze(
        self,
        path: str | Path,
        options: DetectorOptions = DetectorOptions(),
        *,
        progress: Progress | None = None,
    ) -> AnalysisResult:
        """Analyse an image or a video file. Raises MediaError for files it cannot read.

        `progress` is called with a fraction in [0, 1] as the stages finish.
        """
        report = progress or (lambda fraction: None)
        timings: dict[str, float] = {"faces": 0.0, "verify": 0.0}
        started = time.perf_counter()
        # Frames go to the digester as they are decoded; it finds their faces and keeps only
        # what the rest needs from their pixels (ml/frames.py): never 32 full frames at once.
        media_type, _ = media_kind(path, options.limits)
        digester = self._digester(
            options,
            timings,
            digest=self._digest_frame(options, photo=media_type == MEDIA_IMAGE),
            progress=lambda done: report(0.7 * done),
            photo=media_type == MEDIA_IMAGE,
        )
        if media_type == MEDIA_IMAGE:
            image = load_image_bgr(path, options.limits)
            height, width = image.shape[:2]
            width, height = drafted_size(path, options.limits) or (width, height)
            frame_count, duration = 1, 0.0
            digester.begin([0], [0.0])
            digester.add(0, image)
            del image
        else:
            info, _ = sample_frames(path, options.max_frames, options.limits, sink=digester)
            width, height, frame_count, duration = info.width, info.height, info.frame_count, info.duration
        digests = digester.finish()
        seconds_digesting = digester.seconds_digesting
        if media_type != MEDIA_IMAGE and digests and not any(d.boxes for d in digests):
            # No face in any frame: the faces may be small (see FINE_SEARCH). The video is read
            # again and its whole-frame searches made finer; only such videos pay for it.
            digester = self._digester(  # the bar goes on from where the first reading left it
                options, timings, digest=self._digest_frame(options), progress=lambda done: report(0.7 + 0.14 * done),
                whole=FINE_SEARCH, retries=False,
            )
            sample_frames(path, options.max_frames, options.limits, sink=digester)
            fine = digester.finish()
            seconds_digesting += digester.seconds_digesting
            if any(d.boxes for d in fine):
                digests = fine
        timings["images"] = seconds_digesting
        # decoding and face search interleave: decode is what the digester did not spend
        timings["decode"] = time.perf_counter() - started - timings["faces"] - timings["verify"] - timings["images"]

        boxes = [d.boxes for d in digests]
        left_out = [d.faces_left_out for d in digests]
        rejected = [d.boxes_rejected for d in digests]
        indices, times = [d.index for d in digests], [d.time for d in digests]
        track_ids = link_tracks(boxes, looks=[[face_look(crop) for crop in d.crops] for d in digests])
        located = [(p, j) for p, frame_boxes in enumerate(boxes) for j in range(len(frame_boxes))]
        crops = [digests[p].crops[j] for p, j in located]
        chosen = evenly_spaced_faces(track_ids, SYNTHETIC_FACES_PER_TRACK) if self.synthetic is not None else []
        groups = [_synthetic_views(digests[p], j) for p, j in chosen]  # a face's probability: its views' lowest
        synthetic_crops = [crop for group in groups for crop in group]
        jpegs = [d.jpeg for d in digests]

        started = time.perf_counter()
        if self.runtime == "onnx":  # both models' work on the same lanes: their time together
            (flat, cams), values = self._score_in_lanes(crops, synthetic_crops)
            timings["classify"], timings["synthetic"] = time.perf_counter() - started, 0.0
        elif self.synthetic is not None and self._side_by_side(crops):
            # one batch: both models at once, their time together the classify stage's
            (flat, cams), values = self._score_side_by_side(crops, synthetic_crops)
            timings["classify"], timings["synthetic"] = time.perf_counter() - started, 0.0
        else:
            flat, cams = self.classify_with_cams(crops)
            timings["classify"] = time.perf_counter() - started
            started = time.perf_counter()
            values = self.synthetic.score(synthetic_crops) if self.synthetic is not None else None
            timings["synthetic"] = time.perf_counter() - started
        scores: list[list[float]] = [[] for _ in indices]
        for (p, _), score in zip(located, flat):
            scores[p].append(float(score))
        synthetic: list[list[float | None]] | None = None
        if values is not None:
            ends = np.cumsum([len(group) for group in groups])
            values = [float(np.min(values[end - len(group) : end])) for group, end in zip(groups, ends)]
            synthetic = [[None] * len(frame_boxes) for frame_boxes in boxes]
            for (p, j), value in zip(chosen, values):
                synthetic[p][j] = float(value)
        tracks = summarize_tracks(track_ids, scores, times, min_frames=options.min_track_frames, synthetic=synthetic)
        score = file_score(tracks)
        synthetic_file = synthetic_score(tracks)
        synthetic_threshold = self.synthetic.thresholds[1] if self.synthetic is not None else None
        verdict, kind = combined_verdict(
            verdict_for(score, threshold=self.threshold, threshold_real=self.threshold_real),
            synthetic_file,
            synthetic_threshold,
        )
        report(0.85)

        started = time.perf_counter()
        explained = faces_to_explain(track_ids, flat, options.heatmaps, people=tracks)
        heats = {located[k]: (crops[k], heatmap_of(cams[k], crops[k].shape[:2])) for k in explained}
        heatmaps = {at: overlay_png(crop, heat) for at, (crop, heat) in heats.items()}
        focus = {at: heat_focus(heat) for at, (_, heat) in heats.items()}
        thumbnail = None
        if options.thumbnail_size and digests:
            remembered = digests[_thumbnail_frame(scores)]
            source = remembered.small
            if source is None:  # cut from the frame's stored JPEG (cheaper than a copy of every frame)
                source = decoded_for(remembered.jpeg, options.thumbnail_size, min(options.frame_image_size, max(width, height)))
            thumbnail = jpeg_of(source, options.thumbnail_size, options.jpeg_quality)
        timings["explain"] = time.perf_counter() - started
        report(0.95)

        frame_results = tuple(
            FrameResult(
                index=index,
                time=time_s,
                faces=tuple(
                    FaceResult(
                        box=_in_frame_pixels(box, digests[p].size, (width, height)),
                        fake_probability=scores[p][j],
                        track=track_ids[p][j],
                        synthetic_probability=synthetic[p][j] if synthetic is not None else None,
                        heatmap_png=heatmaps.get((p, j)),
                        heatmap_focus=focus.get((p, j)),
                        crop=_in_frame_pixels(self.crop_region(box, digests[p].size), digests[p].size, (width, height)),
                        crop_angle=box.angle if isinstance(box, TurnedBox) else 0.0,
                    )
                    for j, box in enumerate(boxes[p])
                ),
                faces_left_out=left_out[p],
                boxes_rejected=rejected[p],
                image_jpeg=jpegs[p],
            )
            for p, (index, time_s) in enumerate(zip(indices, times))
        )
        report(1.0)
        held = uncertain_reason(
            media_type=media_type, verdict=verdict, fake_kind=kind, tracks=tracks, frames=frame_results,
            threshold=self.threshold, min_track_frames=options.min_track_frames,
            synthetic_probability=synthetic_file, synthetic_threshold=synthetic_threshold,
        )
        if held:
            verdict, kind = VERDICT_UNCERTAIN, ""

        return AnalysisResult(
            media_type=media_type,
            verdict=verdict,
            fake_kind=kind,
            uncertain_reason=held,
            fake_probability=score,
            synthetic_probability=synthetic_file,
            synthetic_threshold=synthetic_threshold,
            synthetic_model_version=self.synthetic.version if self.synthetic is not None else "",
            threshold=self.threshold,
            threshold_real=self.threshold_real,
            frames=frame_results,
            tracks=tracks,
            model_name=self.name,
            model_version=self.version,
            timings={k: round(v, 4) for k, v in timings.items()},
            width=int(width),
            height=int(height),
            frame_count=int(frame_count),
            duration=float(duration),
            thumbnail_jpeg=thumbnail,
        )


def _thumbnail_frame(scores: list[list[float]]) -> int:
    """The frame a file is remembered by: the one with the most suspicious face, else the middle."""
    best = max(range(len(scores)), key=lambda p: max(scores[p], default=-1.0))
    return best if scores[best] else len(scores) // 2


RUNTIMES = ("auto", "onnx", "torch")


def _gpu_visible() -> bool:
    """Whether an NVIDIA GPU is there for torch to use, asked without importing torch: the
    driver lists its GPUs under /proc, and CUDA_VISIBLE_DEVICES can hide them all."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def _wants_onnx(runtime: str, device: str | None) -> bool:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    if runtime == "onnx" and device not in (None, "cpu"):
        raise ValueError("the ONNX runtime scores on the CPU; use runtime='torch' for a GPU")
    if runtime == "auto":
        return device == "cpu" or (device is None and not _gpu_visible())
    return runtime == "onnx"


def _checked_path(path: Path, default: Path, installed: str, given: str) -> Path:
    if not path.is_file():
        raise CheckpointError((installed if path == default else given).format(path=path))
    return path


def load_detector(
    path: str | Path | None = None,
    *,
    device: str | None = None,
    synthetic: str | Path | bool | None = None,
    runtime: str = "auto",
) -> Detector:
    """The detector for a checkpoint file; by default the model installed with this package.

    `synthetic`: the AI-generated-face checkpoint to load beside it (None: the installed one,
    which must be there; False: none, the face-swap model alone).

    `runtime`: what scores the faces. "torch" always; "onnx" the checkpoint's ONNX export
    (ml/onnx_runtime.py: the CPU, without torch; CheckpointError when it has none made from this
    very file); "auto" (the default) the export on a CPU, for each model that has a matching one,
    and torch for a model without one (a checkpoint just trained) or where a GPU is there to
    use. `Detector.runtimes` says what was chosen, and the worker logs it."""
    path = _checked_path(
        Path(path) if path else DEFAULT_CHECKPOINT,
        DEFAULT_CHECKPOINT,
        "no trained model is installed at {path}; train one with `python -m ml train` or pass --checkpoint PATH",
        "no model checkpoint at {path}",
    )
    use_onnx = _wants_onnx(runtime, device)
    digest = file_sha256(path)
    model = _export_of(OnnxFaceSwap, path, digest, runtime, "face-swap") if use_onnx else None
    spec = model.spec if model is not None else None
    if model is None:
        from .model import fold_batchnorm, load_checkpoint

        if _threads:
            _torch_threads_set(_threads)
        model, spec = load_checkpoint(path, device=device)
        fold_batchnorm(model)  # inference only from here on (ml/model.py)
    second = None
    if synthetic is not False:
        second = _load_synthetic(None if synthetic in (None, True) else Path(synthetic), device, use_onnx, runtime)
    return Detector(model, spec, version=f"{spec.version}+{digest[:8]}", synthetic=second)


def _export_of(kind, checkpoint: Path, digest: str, runtime: str, what: str):
    """The checkpoint's matching ONNX export loaded as `kind`, or None for torch to score it:
    refused under runtime "onnx"; a stale export is a warning, a missing one (a checkpoint just
    trained) only information."""
    model, why = load_export(kind, checkpoint, digest)
    if model is None:
        if runtime == "onnx":
            raise CheckpointError(why)
        exists = export_path_for(checkpoint).is_file()
        logger.log(logging.WARNING if exists else logging.INFO, "%s: the %s model is scored by torch", why, what)
    return model


def _load_synthetic(path: Path | None, device: str | None, use_onnx: bool, runtime: str):
    from .synthetic_spec import DEFAULT_SYNTHETIC_CHECKPOINT, SyntheticDetector

    path = _checked_path(
        path or DEFAULT_SYNTHETIC_CHECKPOINT,
        DEFAULT_SYNTHETIC_CHECKPOINT,
        "no synthetic-face model is installed at {path}; train one with `python -m ml train-synthetic`",
        "no synthetic-face checkpoint at {path}",
    )
    digest = file_sha256(path)
    model = _export_of(OnnxSyntheticModel, path, digest, runtime, "synthetic-face") if use_onnx else None
    if model is None:
        from .model import fold_batchnorm
        from .synthetic import load_synthetic_model

        model = load_synthetic_model(path, device=device)
        if model.backbone is not None:
            fold_batchnorm(model.backbone)
    return SyntheticDetector(model, version=f"{model.spec.version}+{digest[:8]}")
