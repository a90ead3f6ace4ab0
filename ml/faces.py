"""Face finding with OpenCV's Haar cascade, and face crops for the classifier.

Policy: the cascade searches a grey, histogram-equalised copy of the frame (the fine search
the plain grey one too, see FINE_SEARCH) scaled down so its longer side is at most
`search_size` px (full-resolution Haar on 1080p costs 300-500 ms here).
The smallest face searched for follows the frame size (a fraction of the shorter side, never
under the cascade's 24 px window), so small faces in large frames are not lost to the
downscale. Boxes come back in the original frame's coordinates, largest first, at most
`max_faces` of them. 512 px rather than 640 (measured 2026-11-26): Haar plus verification 22 %
faster on the 192 sampled frames of the HD videos of ../shared/data/videos, which kept 190 of
the 191 faces the 640 px search confirmed (and found 2 it did not); on the labelled boxes
(ml/checks/face_boxes.csv) 465 of 466 faces. 480 px lost 3 of the 191.

Between full searches (a video's sampled frames, see ml/detector.py) faces are looked for only
near the faces found in the frames around it (`find_faces_near`): in a square twice each known
box's size, scaled so the box is `NEAR_FACE_PX` wide, for faces 0.6 to 1.6 times as wide. A few
small searches instead of one over the whole frame: 2-4 ms against about 35 ms on 720p. 56 px
rather than 80 (measured 2026-11-26 with `make search-check`, 31 videos): the same 937 of 947
faces kept and no verdict changed, 2.5 ms a search instead of 4.1 on the DFDC clip; 48 px lost
3 faces.
Boxes of one person on either side (`_same_person`: up to 2.5 widths apart) are searched as one
region spanning both, so a face that moved fast between two full searches is still found there:
on the bench's panning clip the face moves 1.8 widths between full searches 6 frames apart, and
5 of its 25 frames fell back to a full search before.

A whole frame in which no face is confirmed (a photo after its fine search, a video's frame
searched whole) is searched once more on a copy with its edge pixels repeated beyond every side
(`find_faces_padded`, PAD_BORDER): a face that fills the frame (a profile picture, a cropped
screenshot, a face-aligned clip) leaves the cascade no room around it; 44 % of the UTKFace crops
showed no face before, 3 % with this search. Its boxes are mapped back into the frame and
clamped to it, confirmed like any other and cropped like any box at the frame's edge (`crop_box`
clamps). A frame with a face never pays for it.

A whole frame in which neither search confirms a face is then searched on grey copies turned 15
degrees each way, and where that confirms nothing 30 degrees each way (`find_faces_rotated`,
ROTATIONS): the frontal cascade misses a head tilted more than about 15-20 degrees (a vlogger
leaning into the camera: 3 of the 32 sampled frames of `styletalk_furious_talk1_clip2` showed a
face, 32 with this search). A box found on a turned copy comes back as the bounding box of the
turned box, clamped to the frame (`TurnedBox`): that is what is confirmed (BlazeFace must find
the whole face in it, and be surer of it, ml/verify.py), tracked and shown. Its crops are cut
upright, from the frame turned about the face: the classifier saw upright faces only.

A crop is the face box enlarged `margin` times around its centre (1.3, as FaceForensics++ does),
clamped to the frame, resized to the model's square input; a tilted face's is cut upright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from functools import lru_cache

import cv2
import numpy as np

from .results import Box
from .tracks import iou

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DEFAULT_MARGIN = 1.3
DEFAULT_MAX_FACES = 4
# A photo's faces are scored up to 8: a photo has one frame, so each face costs one crop, where a
# video's cost 32. Measured 2026-11-27 (/tmp/s18cap, not committed) on made-up group photos of
# 5-8 faces at 9-26 % of the shorter side, on plain, noisy and photo backgrounds: 20 of DFDC
# crops with one fake face placed fifth or later, the fake face scored in 10 against 5 at 4,
# 4 verdicts moved to fake (one from real: its fake face was left out at 4), none from fake;
# 30 of real FFHQ faces, 147 faces scored against 106, 3 verdicts moved from real to
# uncertain, none to fake (two on small pasted faces whose crops hold the paste's edges, one
# on a dark background box BlazeFace let through).
DEFAULT_MAX_PHOTO_FACES = 8
NEAR_FACE_PX = 56  # a known face's width in the scaled-down region searched around it
NEAR_REGION = 2.0  # that region's side, in widths of the known face
NEAR_SIZES = (0.6, 1.6)  # faces looked for there, in widths of the known face


@dataclass(frozen=True)
class FaceSearch:
    """How faces are searched for. Defaults measured on this project's media."""

    search_size: int = 512  # longer side of the downscaled copy
    min_face_fraction: float = 0.08  # of the shorter side of the downscaled copy
    scale_factor: float = 1.1
    min_neighbors: int = 5
    unequalised_too: bool = False  # also search the grey frame as it is (see FINE_SEARCH)


# A video whose sampled frames show no face in the search above is read again with this search,
# at twice the size, for faces down to about 7 % of the shorter side, and so is a photo in which
# PHOTO_SEARCH (below) confirms no face (measured 2026-11-26: the astronaut's face pasted
# at random places on 1920x1080 and 3840x2160 frames, 8 places per size, confirmed by
# BlazeFace; tests/ml/test_detector.py). Found: the default search, 0 of 8 at 100 px on
# 1080p, 2 at 120, 3 at 140, 8 at 160; this one 8 of 8 from 80 px (on 2160p from 160 px). It
# costs about 250 ms against 75, so only a photo without a face pays it, and a video without a
# face in any sampled frame, which is read again with its whole-frame searches made this fine
# (ml/detector.py; the searches near known faces keep their sizes: they scale each region to
# the face's size).
#
# That search also looks at the grey frame without histogram equalisation (so do the near
# searches of such a second reading) and adds the faces found there only (measured 2026-11-27;
# find_faces on a 1080p frame 103-152 ms equalised, 144-275 ms with both looks): where a flat or plain background fills most of the
# frame, equalisation spends the grey levels on it and leaves the face nearly black and white.
# The astronaut's face pasted 8 times each at 60-160 px on 1920x1080 grey, white, two noisy
# plain backgrounds and a photo: equalised alone 66 of 200 found, both 200 of 200, no box off
# a face. Not in the default search: without equalisation a dark DFDC fake had no face at all,
# and equalised-only keeps 465 of the 466 labelled faces (ml/checks/face_boxes.csv); adding the
# plain look everywhere cost 1.5x the Haar time and moved one real clip to uncertain.
FINE_SEARCH = FaceSearch(search_size=1024, min_face_fraction=0.04, unequalised_too=True)

# A photo is searched once, at 1024 px, for faces from 5 % of the shorter side up, where a video's
# sampled frames are searched at 512 px from 8 %: a small face beside a large one (a group photo,
# people behind a speaker) is judged too, where the verdict once spoke for the large face alone.
# Measured 2026-11-27 (runs/smallfaces, not committed), when this was a second search for faces
# of 5-20 % beside the default one: frames of the two DFDC fake videos of ../shared/data shrunk
# so the fake face is 60-80 px wide, beside a 560 px real face on 1920x1080: found in 1 of 40
# scenes by the default search alone, 35 of 40 with it; as photos, 7 of 10 such scenes came out
# `real` before and 10 of 10 `fake` with it. FFHQ faces pasted at 120-180 px beside a large one:
# 47 of 72 found before, 69 of 72 with it. No verdict changed on 1,071 photos of the real and
# fake sets (Celeb-DF, UTKFace, FFHQ, inswapper, StyleGAN2, frames of the videos), but those hold
# one face each; on 80 made-up group photos of real faces (FFHQ and Celeb-DF faces pasted at
# 100-260 px beside a large one, JPEG quality 75) 62 more faces were judged and 2 photos moved
# from real to uncertain, none to fake (pasting alone made 6 of them fake before). 0.04 instead
# of 0.05 found no more and cost 14 ms more, scale step 1.2 or 768-896 px lost 4-14 of the 40.
# Videos keep the default search: every sampled frame would pay for it.
#
# One search rather than those two (measured 2026-11-27, /tmp/photoexp, not committed): the
# 512 px search found again at 512 px the faces of 8-20 % the 1024 px one had searched already,
# and its small scales are its dear ones. On 299 photos over 512 px (8 frames of each of the 31
# videos, the 8 FaceForensics++ example frames, the astronaut pasted at 300-1080 px on 720p,
# 1080p and 4K, 30 made-up group photos of FFHQ faces at 160-900 px): Haar 139 -> 92 ms (median,
# 2-core EPYC), 332 faces found by both (box side: median ratio 1.000, 90 % within 0.93-1.04), 5
# lost, 3 gained. Of the 5 lost, 2 were boxes off a face or a second box on one, and 2 half-hidden
# faces of the made-up photos; 1 was a face (a girl looking down, behind a pasted face), while a
# half-hidden face another search missed was gained. 5 verdicts changed: 3 DFDC frames (fake
# files: uncertain to fake, fake to uncertain, real to uncertain), a FaceForensics++
# NeuralTextures frame (fake: uncertain to fake) and a made-up group photo of real faces (an off-
# face box at 0.526 gone: uncertain to real). Smaller photos (up to 512 px: the data sets' crops)
# are searched exactly as before, unscaled.
PHOTO_SEARCH = FaceSearch(search_size=1024, min_face_fraction=0.05)

# A face that fills the frame (a profile picture, a cropped screenshot, a face-aligned clip)
# leaves the cascade no room around it; where a whole-frame search confirms nothing, the frame is
# searched again with its edges repeated beyond it (`find_faces_padded`). Measured 2026-11-27
# (runs/padded, not committed) on the crops the photo searches above left without a confirmed
# face, faces confirmed by BlazeFace in the frame (of 270 seeded UTKFace crops of 600, 239 and
# 233 DFDC real and fake of 300 each), a border of 25 / 35 / 50 %:
#   edges repeated  UTKFace 249 / 251 / 248, DFDC real 197 / 200 / 199, fake 195 / 202 / 199;
#   mirrored        UTKFace 246 / 252 / 251, DFDC real 192 / 194 / 194, fake 198 / 198 / 196,
#                   but with 15-53 boxes BlazeFace rejected (mirrored half faces) against 0-2,
#                   and 33 ms against 24 (median, UTKFace, 35 %);
#   grey (128)      UTKFace 225 / 215 / 199, DFDC real 149 / 125 / 105, fake 152 / 134 / 99.
# Faces from 8 % instead of 30 % found the same 251 on UTKFace at 52 ms against 24; every face
# found was at least 0.86 of the frame's width. On 320 face-free pictures (scikit-image's
# samples, whole and cut into 200 px squares) it confirmed one box, on a head struck on a coin.
# Verdicts with the shipped models (runs/padded/measure_photos.py): UTKFace, no face 1,323 ->
# 101 of 3,000; of the 1,222 faces only this search found 10 fake (0.8 %) and 26 uncertain,
# against 11 (0.7 %) and 22 of the 1,677 the others found (held out from training: 0 and 4 of
# 112, against 1 and 1 of 163). DFDC's validation split (never trained on): no face 761 -> 119
# of 992 reals and 785 -> 121 of 1,010 fakes; of the faces only this search found, 41 of 642
# reals called fake (6.4 %, against 22 of 231: 9.5 %) and 467 of 664 fakes (70 %, against 141
# of 225: 63 %). Celeb-DF: its 5 of 484 crops without a face stay so. No verdict of the 31
# videos of ../shared/data/videos changed; two StyleTalk clips gain frames with a face (2 -> 3
# and 9 -> 14 of 32): their other frames hold a tilted or turned face, not a tight one.
# What it costs where it runs (runs/padded/timing.py, analyze(), median of 7, 2-core EPYC):
# 12 ms on a DFDC crop that still shows no face, 32 ms on a face-free 1080p photo, 0.38 s on a
# face-free 32-frame 1080p clip (6.0 s before), 0.1-0.23 s on the two StyleTalk clips it helps.
PAD_BORDER = 0.35  # added beyond each side, in frame widths (left, right) and heights (top, bottom)
PAD_MIN_FACE = 0.3  # the smallest face looked for there, in the frame's shorter side

# A head tilted more than about 15-20 degrees is missed by the frontal cascade; where the padded
# search confirms nothing either, the frame is turned both ways and searched again
# (`find_faces_rotated`), a step at a time, stopping at the first step with a confirmed face.
# Measured 2026-11-27 (runs/rotated, not committed; faces confirmed as ml/verify.py confirms a
# turned box), three designs: one step of 25 degrees each way, 15 then 30, one step of 20:
#   frames_found.py: of the 992 sampled frames of the 31 videos of ../shared/data/videos, 52 show
#     no face after the upright and padded searches (51 a tilted head in StyleTalk close-ups);
#     faces found in 51 / 51 / 48 (15 alone finds 40, the 30 step the other 11; the one left,
#     a LivePortrait frame, gives no box at any angle from 15 to 35).
#   face_free.py: 535 face-free pictures (scikit-image's 21 face-free data images, whole, turned
#     20, -20 and 35 degrees, scaled to 1080p and cut into 160 and 256 px squares; the three
#     FaceForensics++ masks of ../shared/data, whole and turned), 527 of them with no face after
#     the other searches: 0 / 0 / 0 turned boxes confirmed, of 101 / 230 / 98 Haar boxes examined
#     (the rule for upright boxes would have confirmed 0 / 1 / 1).
#   verdicts_photos.py, the shipped models: 240 real photos (120 Celeb-DF, 120 FFHQ) with half
#     their size of repeated edge added round them, turned 25 or 30 degrees either way: 149 show
#     no face without this search; it finds 131 / 136 / 125 of them, called fake 0 / 0 / 0 and
#     uncertain 5 / 1 / 1 (of these, 3 / 1 / 1 were real upright). 1,878 real photos (800
#     UTKFace, 484 Celeb-DF, 594 FFHQ) with 44 showing no face: 6 / 9 / 7 found, 0 fake, 0 / 1 / 1
#     uncertain. verdicts_videos.py: no verdict of the 31 videos worse, one
#     better (`styletalk_furious_talk1_clip2` uncertain, 3 of 32 frames, two people -> real, 32
#     frames, one person), the DFDC fakes fake as before; faces_videos.py: of the 55 faces only
#     this search finds in six StyleTalk clips 0 are called fake, 10 (25) and 9 uncertain (of the
#     137 found either way: 0 fake, 4 uncertain; the vlogger pulling faces in talk1_clip2).
#   astronaut_angles.py: the astronaut's photo turned -45 to 45 degrees in steps of 5 is found
#     at every angle (upright searches: -15 to 20); one step of 25 misses -45, of 20 -45, -40, 45.
# 15 then 30: as many frames as 25, more photos and fewer uncertain, at twice its cost where no
# face is found (timing.py, analyze(), median of 7, 2-core EPYC, ONNX): a face-free 1080p photo
# 0.52 s + 0.14 s (25: + 0.07), a face-free 1080p clip (32 frames sampled, read twice as no face
# was found) 3.57 s + 1.28 s (25: + 0.58).
# Later the same day, the frames of a video between two whole searches learnt to look for a
# tilted head near where it was, turned by its angle (`find_faces_near`), instead of failing
# upright there and searching each such frame whole with every retry (near_check.py, the 31
# videos with the retry off and on): the same verdicts, 991 of 992 frames with a face (936
# off), 66 faces cut upright in five StyleTalk clips, 0 fake and 11 uncertain (all talk1_clip2's
# vlogger), talk1_clip2 1.8 s instead of 4.2 s (off: 0.9-1.5 s; a busy machine).
# A frame with a face never pays for it. ROTATED_SEARCH was not varied: the frame scaled to 384
# px, faces from 15 % of its shorter side.
ROTATIONS = ((15, -15), (30, -30))  # degrees, counter-clockwise: the steps, each searched both ways
ROTATED_SEARCH = FaceSearch(search_size=384, min_face_fraction=0.15)


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load {CASCADE_FILE}; is opencv-python-headless 4.x installed?")
    return cascade


def find_faces(image: np.ndarray, *, max_faces: int = DEFAULT_MAX_FACES, search: FaceSearch = FaceSearch()) -> list[Box]:
    """Face boxes in a BGR (or grey) frame, largest first, in the frame's own coordinates."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes = _search_boxes(grey, search)
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    return boxes[:max_faces]


def _search_boxes(grey: np.ndarray, search: FaceSearch) -> list[Box]:
    height, width = grey.shape[:2]
    scale = min(1.0, search.search_size / max(height, width))
    if scale < 1.0:
        grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(24, round(min(grey.shape[:2]) * search.min_face_fraction))
    found = _cascade_boxes(grey, search, smallest=min_side)
    return [Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale)) for b in found]


def _cascade_boxes(grey: np.ndarray, search: FaceSearch, *, smallest: int, largest: int | None = None) -> list[Box]:
    """Haar's boxes in a grey image, searched histogram-equalised and, when the search says so,
    as it is too; a box overlapping one found already by more than half is that face again.

    Each look's boxes are put in one order, largest first (then top to bottom, left to right):
    OpenCV collects them from threads, in whatever order the threads finish, and the callers
    keep the first of two boxes on one face. Left in OpenCV's order, the same frame searched
    twice on a busy machine gave two different boxes (the turned search of a StyleTalk frame,
    1 time in 20 with both cores taken), and the same video two fake probabilities."""
    looks = [cv2.equalizeHist(grey), grey] if search.unequalised_too else [cv2.equalizeHist(grey)]
    sizes = {"minSize": (smallest, smallest)} | ({"maxSize": (largest, largest)} if largest else {})
    found: list[Box] = []
    for looked_at in looks:
        hits = _cascade().detectMultiScale(
            looked_at, scaleFactor=search.scale_factor, minNeighbors=search.min_neighbors, **sizes
        )
        boxes = sorted(
            (Box(int(x), int(y), int(w), int(h)) for (x, y, w, h) in (hits if len(hits) else [])),
            key=lambda b: (-b.w * b.h, b.y, b.x),
        )
        found += [box for box in boxes if all(iou(box, known) <= 0.5 for known in found)]
    return found


def find_faces_padded(
    image: np.ndarray,
    *,
    max_faces: int = DEFAULT_MAX_FACES,
    search: FaceSearch = FaceSearch(),
    border: float = PAD_BORDER,
    min_face: float = PAD_MIN_FACE,
) -> list[Box]:
    """Faces that fill the frame, largest first: searched on a grey copy with its edge pixels
    repeated `border` of its size beyond every side, for faces from `min_face` of the frame's
    shorter side. Boxes in the frame's coordinates, clamped to it; a box mostly off the frame
    (on the repeated edges alone) is dropped."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape[:2]
    scale = min(1.0, search.search_size / ((1 + 2 * border) * max(height, width)))
    if scale < 1.0:  # scaled down before padding: the padded copy is never made at full size
        grey = cv2.resize(grey, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    top, left = round(grey.shape[0] * border), round(grey.shape[1] * border)
    padded = cv2.copyMakeBorder(grey, top, top, left, left, cv2.BORDER_REPLICATE)
    smallest = max(24, round(min(grey.shape[:2]) * min_face))
    found = _cascade_boxes(padded, search, smallest=smallest)
    in_frame = [Box(round((b.x - left) / scale), round((b.y - top) / scale), round(b.w / scale), round(b.h / scale)) for b in found]
    boxes = [box for box in (_clamped(b, width, height) for b in in_frame) if box is not None]
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    return boxes[:max_faces]


@dataclass(frozen=True)
class TurnedBox(Box):
    """A tilted face found by `find_faces_rotated`. The box itself (x, y, w, h) is the bounding
    box of the tilted face's box in the frame, clamped to it: what is confirmed, tracked and
    shown. The face is `face_w` x `face_h` around (`cx`, `cy`) and upright in the frame turned
    `angle` degrees counter-clockwise about that centre; its crops are cut so (`crop_face`)."""

    angle: float
    cx: float
    cy: float
    face_w: float
    face_h: float


def find_faces_rotated(
    image: np.ndarray,
    angles: tuple[float, ...] = ROTATIONS[0],
    *,
    max_faces: int = DEFAULT_MAX_FACES,
    search: FaceSearch = ROTATED_SEARCH,
) -> list[TurnedBox]:
    """Tilted faces, largest first: a grey copy of the frame turned by each of `angles`
    (degrees, counter-clockwise) on a canvas that holds all of it, its corners filled with its
    edge pixels, searched upright. A box found there is turned back: the box in the frame's
    coordinates is the bounding box of the turned box (so it holds the whole tilted face, and
    some of what surrounds it), clamped to the frame, and it keeps the upright face's geometry
    for its crops (`TurnedBox`); a box mostly off the frame is dropped, and a face found at two
    angles is returned once."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape[:2]
    scale = min(1.0, search.search_size / max(height, width))
    if scale < 1.0:  # scaled down before turning: the turned copy is never made at full size
        grey = cv2.resize(grey, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    smallest = max(24, round(min(grey.shape[:2]) * search.min_face_fraction))
    found: list[Box] = []
    for angle in angles:
        turned, back = _turned(grey, angle)
        for b in _cascade_boxes(turned, search, smallest=smallest):
            box = _turned_back(b, back, scale, angle, (0, 0), (width, height))
            if box is not None and all(iou(box, known) <= 0.5 for known in found):
                found.append(box)
    found.sort(key=lambda b: b.w * b.h, reverse=True)
    return found[:max_faces]


def _turned_back(
    b: Box, back: np.ndarray, scale: float, angle: float, offset: tuple[int, int], frame: tuple[int, int]
) -> TurnedBox | None:
    """A box found on a copy turned `angle` degrees (`back`: the 2x3 matrix from that copy's
    pixels to those of the image turned, which is the frame's region at `offset` scaled by
    `scale`) as a TurnedBox in the frame's (width, height) coordinates; None when it is mostly
    off the frame."""
    corners = np.array([[b.x, b.y], [b.x + b.w, b.y], [b.x, b.y + b.h], [b.x + b.w, b.y + b.h]], np.float64)
    points = (corners @ back[:, :2].T + back[:, 2]) / scale + offset
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    box = _clamped(Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0)), *frame)
    if box is None:
        return None
    cx, cy = points.mean(axis=0)
    return TurnedBox(box.x, box.y, box.w, box.h, angle, float(cx), float(cy), b.w / scale, b.h / scale)


def _turned(grey: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """`grey` turned `angle` degrees counter-clockwise on a canvas that holds all of it, the
    corners filled with its edge pixels; and the 2x3 matrix taking the canvas's pixels back to
    `grey`'s."""
    height, width = grey.shape[:2]
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    canvas = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += (canvas[0] / 2 - width / 2, canvas[1] / 2 - height / 2)
    turned = cv2.warpAffine(grey, matrix, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, cv2.invertAffineTransform(matrix)


def _clamped(box: Box, width: int, height: int) -> Box | None:
    """The part of `box` inside a width x height frame, or None where that is less than half of
    it or under the cascade's 24 px window."""
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.w), min(height, box.y + box.h)
    if x1 - x0 < 24 or y1 - y0 < 24 or (x1 - x0) * (y1 - y0) < box.w * box.h / 2:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def find_faces_near(image: np.ndarray, around: list[Box], *, search: FaceSearch = FaceSearch()) -> list[Box]:
    """Face boxes near the boxes `around` (from neighbouring frames), in the frame's coordinates,
    largest first; where two regions find the same face (boxes overlapping by more than half)
    it is returned once. Around a tilted face (a TurnedBox) the region is searched turned by
    that face's angle, and what is found there is a TurnedBox too: the head is still tilted."""
    height, width = image.shape[:2]
    found: list[Box] = []
    for group in _people(around):
        x0 = y0 = 1 << 30
        x1 = y1 = 0
        for known in group:  # the union of each box's region
            half = max(known.w, known.h) * NEAR_REGION / 2
            cx, cy = known.x + known.w / 2, known.y + known.h / 2
            x0, y0 = min(x0, int(cx - half)), min(y0, int(cy - half))
            x1, y1 = max(x1, int(cx + half)), max(y1, int(cy + half))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 - x0 < 24 or y1 - y0 < 24:
            continue
        tilted = [b for b in group if isinstance(b, TurnedBox)]
        widths = [max(b.face_w, b.face_h) if isinstance(b, TurnedBox) else max(b.w, b.h) for b in group]
        scale = min(1.0, NEAR_FACE_PX / (sum(widths) / len(widths)))
        region = image[y0:y1, x0:x1]
        if region.ndim == 3:  # only the region is made grey
            region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        smallest = max(24, round(min(widths) * scale * NEAR_SIZES[0]))
        largest = max(smallest + 1, round(max(widths) * scale * NEAR_SIZES[1]))
        if tilted:  # searched at the angle the tilted face was found at before
            angle = tilted[0].angle
            turned, back = _turned(region, angle)
            for b in _cascade_boxes(turned, search, smallest=smallest, largest=largest):
                box = _turned_back(b, back, scale, angle, (x0, y0), (width, height))
                if box is not None:
                    found.append(box)
            continue
        for b in _cascade_boxes(region, search, smallest=smallest, largest=largest):
            found.append(Box(x0 + round(b.x / scale), y0 + round(b.y / scale), round(b.w / scale), round(b.h / scale)))
    found.sort(key=lambda b: b.w * b.h, reverse=True)
    unique: list[Box] = []
    for box in found:
        if all(iou(box, kept) <= 0.5 for kept in unique):
            unique.append(box)
    return unique


def _same_person(a: Box, b: Box) -> bool:
    """Whether two boxes from the frames before and after can be one person who moved: they
    overlap, or are of a size (within 1.6x) and at most 2.5 widths apart. The region searched is
    then the union of theirs, so it covers the way between them too."""
    if iou(a, b) >= 0.3:
        return True
    wa, wb = max(a.w, a.h), max(b.w, b.h)
    if max(wa, wb) > 1.6 * min(wa, wb):
        return False
    dx = (a.x + a.w / 2) - (b.x + b.w / 2)
    dy = (a.y + a.h / 2) - (b.y + b.h / 2)
    return (dx * dx + dy * dy) ** 0.5 <= 2.5 * max(wa, wb)


def _people(boxes: list[Box]) -> list[list[Box]]:
    """The boxes grouped so that those of one person in the frames before and after share a
    group, whose region is searched once."""
    groups: list[list[Box]] = []
    for box in boxes:
        for group in groups:
            if any(_same_person(box, other) for other in group):
                group.append(box)
                break
        else:
            groups.append([box])
    return groups


def crop_box(
    box: Box, frame_width: int, frame_height: int, margin: float = DEFAULT_MARGIN, shift: float = 0.0
) -> Box:
    """The box enlarged `margin` times around its centre (moved down by `shift` box heights),
    clamped to the frame."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2 + shift * box.h
    half_w, half_h = box.w * margin / 2, box.h * margin / 2
    x0 = max(0, int(round(cx - half_w)))
    y0 = max(0, int(round(cy - half_h)))
    x1 = min(frame_width, int(round(cx + half_w)))
    y1 = min(frame_height, int(round(cy + half_h)))
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def crop_face(
    image: np.ndarray, box: Box, *, size: int, margin: float = DEFAULT_MARGIN, shift: float = 0.0
) -> np.ndarray:
    """The face crop (BGR uint8, size x size) the classifier sees for this box; a tilted face's
    (`TurnedBox`) is cut upright."""
    if isinstance(box, TurnedBox):
        return resize_square(_upright_region(image, box, margin, shift), size)
    height, width = image.shape[:2]
    c = crop_box(box, width, height, margin, shift)
    return resize_square(image[c.y : c.y + c.h, c.x : c.x + c.w], size)


def turned_crop_region(box: TurnedBox, margin: float = DEFAULT_MARGIN, shift: float = 0.0) -> Box:
    """Where `crop_face` cuts a tilted face, in the frame's coordinates: a region of the crop's
    size centred where the crop's centre lies in the frame, which the crop shows upright once the
    frame is turned `box.angle` degrees counter-clockwise about that centre (the result page
    turns the frame so to set the picture beside its heatmap). Not clamped: beyond the frame the
    crop repeats the frame's edges."""
    width, height = max(1, round(box.face_w * margin)), max(1, round(box.face_h * margin))
    down, angle = shift * box.face_h, np.radians(box.angle)
    # the crop's centre is `down` below the face's centre in the turned frame; turned back:
    cx, cy = box.cx - down * np.sin(angle), box.cy + down * np.cos(angle)
    return Box(round(cx - width / 2), round(cy - height / 2), width, height)


def _upright_region(image: np.ndarray, box: TurnedBox, margin: float, shift: float) -> np.ndarray:
    """The region `crop_box` cuts around an upright face, cut from the frame turned about the
    tilted face's centre so that the face is upright: its box enlarged `margin` times, moved down
    `shift` of its height; pixels beyond the frame repeat its edges."""
    width, height = max(1, round(box.face_w * margin)), max(1, round(box.face_h * margin))
    matrix = cv2.getRotationMatrix2D((box.cx, box.cy), box.angle, 1.0)
    matrix[:, 2] += (width / 2 - box.cx, height / 2 - box.cy - shift * box.face_h)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def read_crop(path: Path) -> np.ndarray:
    """A stored face crop as BGR, read the same way in training and evaluation."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {path}")
    return image


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A crop at the model's square input size (area-averaged when shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
