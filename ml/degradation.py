"""What the detector says of a file once it has been shared around: scaled down and compressed
again, as a news clip is by every site that re-posts it. A real clip called fake only because
it was re-encoded is the product's worst answer, so `check-degradation` re-encodes labelled
files at a few qualities and counts how the verdicts move.

Videos are re-encoded as H.264 (libx264, through PyAV) at a lower height and a constant-quality
factor (CRF: 23 is x264's default, 28 a typical web upload, 35 and up visibly blocky); photos are
scaled and saved as JPEG at a lower quality. One more copy of each video is written by OpenCV's
own MPEG-4 part 2 writer (`cv2.VideoWriter`, mp4v) at 480p, as a script that saves frames back
makes it (photos have no such copy). "480p" means at most 480 px high, whatever the
frame's shape, so a portrait clip is scaled further than a site's 480p (which counts the shorter
side) would. A re-encoding never makes a file larger than it was.

`EDITED` is a second set: the changes a re-post makes to the picture itself (a blurred fill
around a clip turned vertical or landscape, a mirror image, a caption, a colour filter:
ml/edits.py), each re-encoded at x264's default quality, beside a copy only re-encoded so, to
tell the edit's effect from the encoder's. A blurred fill's canvas is 720p whatever the clip's
size (a 256 px clip is scaled up, a 1080p one down), as an app's is, so those two rows mix the
fill with that scaling; a landscape 1080p clip on a landscape canvas gets no fill at all, only
the scaling, and so does a 720x1280 clip on a vertical one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .datasets import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .edits import EDITS


@dataclass(frozen=True)
class Degradation:
    """A re-encoding: to at most `height` px high (None: the file's own), with x264's `crf` for
    a video and JPEG `quality` for a photo. `codec` "mp4v": the video written by OpenCV's own
    MPEG-4 part 2 writer instead (its defaults, as a script that saves frames with
    cv2.VideoWriter does), scaled with area averaging. `edit`: one of ml.edits.EDITS, made to
    every frame (upright) before it is scaled and encoded; x264 only."""

    name: str
    height: int | None
    crf: int
    quality: int
    codec: str = "libx264"
    edit: str = ""

    def __post_init__(self):
        if self.edit and (self.edit not in EDITS or self.codec != "libx264"):
            raise ValueError(f"{self.name}: an edit is one of {', '.join(EDITS)}, re-encoded with libx264")


DEGRADATIONS = (
    Degradation("as uploaded", None, 0, 0),  # the file itself
    Degradation("480p, CRF 28", 480, 28, 75),
    Degradation("360p, CRF 33", 360, 33, 50),
    Degradation("240p, CRF 38", 240, 38, 30),
    Degradation("own size, CRF 40", None, 40, 20),
    Degradation("480p, OpenCV mp4v", 480, 0, 75, codec="mp4v"),
)

EDITED = (
    DEGRADATIONS[0],
    Degradation("own size, CRF 23", None, 23, 90),  # the encoder alone, for the edits below
    Degradation("vertical, blurred fill", None, 23, 90, edit="vertical_blurred_fill"),
    Degradation("landscape, blurred fill", None, 23, 90, edit="landscape_blurred_fill"),
    Degradation("mirrored", None, 23, 90, edit="mirrored"),
    Degradation("caption burnt in", None, 23, 90, edit="captioned"),
    Degradation("colour graded", None, 23, 90, edit="graded"),
)


def _scaled(width: int, height: int, most: int | None) -> tuple[int, int]:
    """(width, height) scaled to at most `most` px high (never up), at least 1 px each."""
    if most is None or height <= most:
        return width, height
    return max(1, round(width * most / height)), most


def degrade_video(src: Path, dst: Path, degradation: Degradation) -> Path:
    """`src` re-encoded as `degradation` says, written to `dst` (an .mp4), at the same frame
    rate. Frames are turned upright first (a phone video's display rotation, as the detector
    reads it), so the copy needs no rotation of its own; both sides are made even, as H.264's
    4:2:0 needs."""
    import av

    if degradation.codec == "mp4v":
        return _opencv_mp4v(src, dst, degradation)
    with av.open(str(src)) as source:
        video = source.streams.video[0]
        rate = video.average_rate or 25
        with av.open(str(dst), "w") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(degradation.crf), "preset": "veryfast"}
            # Frames numbered at the frame rate (left unnumbered, the muxer refused a clip's
            # 270th packet: the encoder's guesses went out of order).
            stream.codec_context.time_base = 1 / Fraction(rate)
            for index, frame in enumerate(source.decode(video)):
                turns = (frame.rotation // 90) % 4  # PyAV: degrees counter-clockwise to show it upright
                if turns or degradation.edit:
                    image = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="bgr24"), turns))
                    if degradation.edit:
                        image = EDITS[degradation.edit](image, index)
                    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                if index == 0:
                    width, height = _scaled(frame.width, frame.height, degradation.height)
                    stream.width, stream.height = max(2, width - width % 2), max(2, height - height % 2)
                scaled = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                scaled.pts, scaled.time_base = index, stream.codec_context.time_base
                for packet in stream.encode(scaled):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return dst


def _opencv_mp4v(src: Path, dst: Path, degradation: Degradation) -> Path:
    """`src` upright, scaled with area averaging and written by cv2.VideoWriter's mp4v."""
    import av

    with av.open(str(src)) as source:
        video = source.streams.video[0]
        rate = float(video.average_rate or 25)
        writer = None
        for frame in source.decode(video):
            turns = (frame.rotation // 90) % 4
            image = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="bgr24"), turns))
            if writer is None:
                width, height = _scaled(image.shape[1], image.shape[0], degradation.height)
                size = (max(2, width - width % 2), max(2, height - height % 2))
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), rate, size)
                if not writer.isOpened():
                    raise ValueError(f"{src}: OpenCV could not open an mp4v writer for {dst.name}")
            writer.write(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        if writer is None:
            raise ValueError(f"{src}: no frames to write")
        writer.release()
    return dst


def degrade_image(src: Path, dst: Path, degradation: Degradation) -> Path:
    """`src` edited, scaled and saved as a JPEG (`dst`) at the degradation's quality."""
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{src}: OpenCV cannot read it")
    if degradation.edit:
        image = EDITS[degradation.edit](image, 0)
    height, width = image.shape[:2]
    size = _scaled(width, height, degradation.height)
    if size != (width, height):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, degradation.quality])
    if not ok:
        raise ValueError(f"{src}: could not encode it as JPEG")
    dst.write_bytes(encoded.tobytes())
    return dst


def degraded(src: Path, folder: Path, degradation: Degradation) -> Path:
    """The file to analyse for `degradation`: `src` itself for "as uploaded", else a copy
    re-encoded into `folder`."""
    if degradation.height is None and not degradation.crf and not degradation.edit:
        return src
    suffix = src.suffix.lower()
    codec = "" if degradation.codec == "libx264" else f"-{degradation.codec}"
    edit = f"-{degradation.edit}" if degradation.edit else ""
    stem = f"{src.stem}-{degradation.height or 'own'}-{degradation.crf}{codec}{edit}"
    if suffix in VIDEO_SUFFIXES:
        return degrade_video(src, folder / f"{stem}.mp4", degradation)
    if suffix in IMAGE_SUFFIXES:
        return degrade_image(src, folder / f"{stem}.jpg", degradation)
    raise ValueError(f"{src}: neither a photo nor a video by its name")


def group_of(path: Path) -> str:
    """`fake` for a file under a folder named fake, else `real`."""
    return "fake" if "fake" in path.parts else "real"


def degradation_report(detector, files: list[Path], folder: Path, degradations=DEGRADATIONS, options=None) -> dict:
    """Each file's verdict and fake probability at each degradation, and per degradation and
    group (real / fake files) the verdicts counted and how far the probabilities moved from the
    file's own."""
    from .detector import DetectorOptions

    options = options or DetectorOptions()
    rows = []
    for src in files:
        own = None
        for degradation in degradations:
            if degradation.codec != "libx264" and src.suffix.lower() in IMAGE_SUFFIXES:
                continue  # a video writer's copy: a photo has none
            result = detector.analyze(degraded(src, folder, degradation), options)
            row = {
                "file": str(src),
                "group": group_of(src),
                "degradation": degradation.name,
                "verdict": result.verdict,
                "fake_probability": result.fake_probability,
                "faces": result.faces_count,
                "face_side": deciding_face_side(result),
            }
            if own is None:
                own = row
            row["moved"] = (
                None if row["fake_probability"] is None or own["fake_probability"] is None
                else row["fake_probability"] - own["fake_probability"]
            )
            rows.append(row)
    summary = []
    for degradation in degradations:
        for group in ("real", "fake"):
            chosen = [r for r in rows if r["degradation"] == degradation.name and r["group"] == group]
            if not chosen:
                continue
            moved = [r["moved"] for r in chosen if r["moved"] is not None]
            summary.append({
                "degradation": degradation.name,
                "group": group,
                "files": len(chosen),
                **{v: sum(r["verdict"] == v for r in chosen) for v in ("real", "uncertain", "fake", "no_face")},
                "median_moved": round(statistics.median(moved), 4) if moved else None,
                "largest_rise": round(max(moved), 4) if moved else None,
            })
    by_size = []
    for group in ("real", "fake"):
        for low, high in FACE_SIDE_BANDS:
            chosen = [r for r in rows if r["group"] == group and r["face_side"] is not None and low <= r["face_side"] < high]
            if chosen:
                by_size.append({
                    "group": group,
                    "face_side": [low, high],
                    "files": len(chosen),
                    **{v: sum(r["verdict"] == v for r in chosen) for v in ("real", "uncertain", "fake")},
                    "median_probability": round(statistics.median(r["fake_probability"] for r in chosen), 4),
                })
    return {"rows": rows, "summary": summary, "by_face_size": by_size}


# Bands of the deciding face's size (its box's longer side, in px of the analysed frame). The
# shipped model looks at a 224 px crop of 0.9 times the box: under 112 px, a face is blown up more
# than twice.
FACE_SIDE_BANDS = ((0, 112), (112, 160), (160, 100_000))


def deciding_face_side(result) -> int | None:
    """The median box side (longer side, px) of the faces of the person the verdict rests on:
    the counted person with the highest fake probability (a file called AI-generated rests on
    the person the second model scored highest, whom the site's page measures instead). None
    when no person was counted."""
    counted = [track for track in result.tracks if track.counted]
    if not counted:
        return None
    person = max(counted, key=lambda track: track.fake_probability).id
    sides = [max(face.box.w, face.box.h) for frame in result.frames for face in frame.faces if face.track == person]
    return round(statistics.median(sides)) if sides else None


def format_summary(report: dict) -> str:
    width = max([18, *(len(s["degradation"]) for s in report["summary"])])
    lines = [f"{'copy':<{width}} {'files':<10} {'real':>5} {'uncert.':>8} {'fake':>5} {'no face':>8} {'median move':>12} {'largest rise':>13}"]
    for s in report["summary"]:
        median = "-" if s["median_moved"] is None else f"{s['median_moved']:+.3f}"
        rise = "-" if s["largest_rise"] is None else f"{s['largest_rise']:+.3f}"
        lines.append(
            f"{s['degradation']:<{width}} {s['files']:>3} {s['group']:<6} {s['real']:>5} {s['uncertain']:>8} {s['fake']:>5} "
            f"{s['no_face']:>8} {median:>12} {rise:>13}"
        )
    lines.append("(verdicts of the real and of the fake files in each copy; moves of the file's fake probability from its own)")
    lines.append("")
    lines.append(f"{'deciding face':<18} {'copies':<10} {'real':>5} {'uncert.':>8} {'fake':>5} {'median probability':>19}")
    for s in report.get("by_face_size", []):
        low, high = s["face_side"]
        band = f"under {high} px" if low == 0 else f"{low} px and up" if high >= 100_000 else f"{low}-{high} px"
        lines.append(f"{band:<18} {s['files']:>3} {s['group']:<6} {s['real']:>5} {s['uncertain']:>8} {s['fake']:>5} {s['median_probability']:>19.3f}")
    lines.append("(every copy, the file itself included, by the size of the face its verdict rests on)")
    return "\n".join(lines)


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame of a video as BGR arrays (for tests and checks by hand)."""
    import av

    with av.open(str(path)) as source:
        return [frame.to_ndarray(format="bgr24") for frame in source.decode(source.streams.video[0])]
