"""What the result page and the report show, worked out from a stored analysis: the verdict in
words, the faces on the picture, the timeline's geometry and the heatmaps with their captions.

Read-only and free of HTTP: views pass the result to templates, which only lay it out. Box
coordinates stay in the analysed frame's pixels; the SVG over the picture uses the same
coordinate system (its viewBox), so the boxes scale with the image.
"""

from __future__ import annotations

import math
import statistics

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from .models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack

# Timeline drawing area, in SVG user units (the SVG scales to the page's width).
TIMELINE_WIDTH = 720
TIMELINE_HEIGHT = 220
# The right margin holds the bands' names, outside the plot, so no person's line runs over them.
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 46, 84, 10, 34
TRACK_COLOURS = 6  # CSS classes track-1 .. track-6, reused in turn beyond that

# The detector's progress values at the end of each stage (ml/detector.py reports them).
STAGES = (
    (0.3, "decoding", "Decoding the file"),
    (0.7, "faces", "Finding faces"),
    (0.85, "classifying", "Scoring the faces"),
    (0.95, "explaining", "Drawing the heatmaps"),
    (1.01, "saving", "Saving the result"),
)


def band_for(score: float, *, threshold: float, threshold_real: float) -> str:
    """"fake", "uncertain" or "real": where a score falls between the analysis' thresholds."""
    if score >= threshold:
        return "fake"
    if score < threshold_real:
        return "real"
    return "uncertain"


def stage_steps() -> list[tuple[str, str]]:
    """Every stage in order, for the progress list on the page."""
    return [("queued", "Queued")] + [(key, words) for _, key, words in STAGES]


def stage_for(analysis: Analysis) -> tuple[str, str]:
    """(key, words) for what the analysis is doing now."""
    if analysis.status != Analysis.Status.RUNNING:
        return analysis.status, analysis.get_status_display()
    for end, key, words in STAGES:
        if analysis.progress < end:
            return key, words
    return STAGES[-1][1], STAGES[-1][2]


def percent_text(value: float) -> str:
    """0.8734 -> "87.3%". A probability a hair from 0 or 1 is written "<0.1%" or ">99.9%", not
    "0.0%" or "100.0%": a model's estimate is never that certain, and the page must not look it."""
    if value < 0.0005:
        return "<0.1%"
    if value >= 0.9995:
        return ">99.9%"
    return f"{value * 100:.1f}%"


@dataclass
class Box:
    face_id: int
    x: int
    y: int
    w: int
    h: int
    score: float
    band: str
    track: int
    label: str
    label_x: float
    label_y: float
    label_w: float
    label_h: float
    text_x: float
    text_y: float
    ai_generated: float | None = None  # its person's AI-generated probability, when judged AI-generated


@dataclass
class Frame:
    index: int
    time: float
    score: float | None
    band: str | None
    image_url: str | None
    boxes: list[Box]
    faces_left_out: int
    boxes_rejected: int
    x: float = 0.0  # on the timeline
    hit_x: float = 0.0
    hit_w: float = 0.0


@dataclass
class TrackLine:
    number: int
    colour: int
    segments: list[str]  # SVG polyline points, one string per run of consecutive frames
    # x, y, frame index, score, and the SVG path of the person's marker there ("" for a circle)
    points: list[tuple[float, float, int, float, str]]
    score: float | None
    counted: bool
    first_time: float | None
    last_time: float | None
    marker: str = ""  # the marker's path around (0, 0), for the legend ("" for a circle)


@dataclass
class Timeline:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bands: list[dict]
    y_ticks: list[dict]
    x_ticks: list[dict]
    tracks: list[TrackLine]
    frames: list[Frame]
    summary: list[str] = field(default_factory=list)  # the chart in words, a line per person


@dataclass
class Heatmap:
    face_id: int
    url: str
    image_url: str | None
    crop_view_box: str
    caption: str
    crop_label: str  # the face beside the heatmap, for screen readers
    # SVG transform of the frame for a tilted face's crop (AnalysisFace.crop_angle): the frame
    # turned about the crop's centre as the model saw it, so the face stands as in the heatmap
    crop_transform: str
    alt: str  # the heatmap, for screen readers: where it is brightest, when that was recorded


@dataclass
class PersonCard:
    """A person (face track), shown at the sampled frame where their face scored highest."""

    number: int
    colour: int
    score: float
    band: str
    marker: str  # the person's timeline marker around (0, 0), "" for a circle
    ai_generated: float | None  # their AI-generated probability, when judged AI-generated
    frames: int
    first_time: float
    last_time: float
    counted: bool
    deciding: bool
    image_url: str | None
    crop_view_box: str
    best_time: float
    best_score: float


@dataclass
class ResultView:
    analysis: Analysis
    threshold: float
    threshold_real: float
    sentence: str
    deciding_track: int | None
    frames: list[Frame]
    selected: Frame | None
    font_size: float
    timeline: Timeline | None
    heatmaps: list[Heatmap]
    faces_left_out: int
    boxes_rejected: int
    frames_with_images: int = 0
    orientation: str = "landscape"
    bands_present: list[str] = field(default_factory=list)
    ai_generated_people: bool = False  # some box is drawn for a person judged AI-generated
    people: int = 0  # face tracks (people) found
    # people the second model called AI-generated, when that is not the verdict: (person,
    # probability, counted for the verdict)
    ai_flagged_too: list[tuple[int, float, bool]] = field(default_factory=list)
    person_cards: list[PersonCard] = field(default_factory=list)  # when there are two or more
    # A video's faces the AI-generated model checked, and how many of them reached its threshold,
    # when some did but no person's lowest did (a person's probability is the lowest of theirs):
    # (reached, checked), else None
    ai_faces_reached: tuple[int, int] | None = None
    # the person whose probability the headline shows (None: no one person's, or not known)
    headline_track: int | None = None
    # The most faces scored in one frame when others were left out: the cap this analysis ran
    # under (a setting that may have changed since), as its frames with left-out faces show it.
    max_faces: int = 0


# The shipped model looks at a 224 px crop of 0.9 times a face's box (its spec's face_margin),
# so a face under 112 px is blown up more than twice (from about 124 px, more so the smaller). `make degradation-check` (2026-11-27, the shipped model; the model card's known limits)
# sorts the project's 31 videos (29 real, 2 DFDC fakes) and their re-encoded copies by the size of the face each
# verdict rests on. Real clips on faces under 112 px: 6 of 10 copies uncertain, median 0.489
# (the one real clip ever called fake at 240p rested on faces of about 90 px); 160 px and up: 5
# of 138 uncertain and 1 fake, median 0.067. The fakes on faces under 112 px: 5 of 7 uncertain.
SMALL_FACE_PX = 112


def verdict_sentence(
    analysis: Analysis,
    *,
    threshold: float,
    threshold_real: float,
    track: int | None,
    seen_in: int | None = None,
    face_side: int | None = None,
) -> str:
    """One plain sentence: what the verdict means and what it does not; for a video whose
    verdict rests on a face seen in few of its sampled frames (`seen_in`), a second one saying so;
    and when that face is small (`face_side`, px), one saying what that does to the model."""
    sentence = _verdict_sentence(analysis, threshold=threshold, threshold_real=threshold_real, track=track, seen_in=seen_in)
    if analysis.verdict != Analysis.Verdict.NO_FACE and face_side is not None and face_side < SMALL_FACE_PX:
        sentence += (
            f" The face it rests on is small, about {face_side} px across (the model looks at 224 px): "
            "in this project's tests, faces this small made real faces look faker and fakes look more "
            "real. Look for a larger, sharper copy."
        )
    examined = analysis.frames_analysed
    if (
        analysis.media_type == Analysis.MediaType.VIDEO
        and analysis.verdict != Analysis.Verdict.NO_FACE
        and analysis.uncertain_reason != "few_frames"  # its own sentence says so
        and seen_in is not None
        and examined >= 8
        and seen_in < max(3, examined // 4)
    ):
        sentence += (
            f" The face it rests on was found in only {seen_in} of the {examined} sampled frames: "
            "there is little to go on. Check that its boxes in the pictures below are on a face."
        )
    return sentence + _near_threshold(analysis)


def _near_threshold(analysis: Analysis) -> str:
    """(Analysis.is_borderline says when, and why the margin.)"""
    if not analysis.is_borderline:
        return ""
    return (
        " This score is close to the threshold: another copy of the same file (re-encoded, "
        "cropped, resized) may fall on the other side of it."
    )


def _verdict_sentence(
    analysis: Analysis, *, threshold: float, threshold_real: float, track: int | None, seen_in: int | None = None
) -> str:
    trained_on = settings.DEEPFAKE_MODEL_TRAINED_ON
    who = f"person {track}" if track and analysis.faces_count > 1 else "the face"
    if analysis.verdict == Analysis.Verdict.NO_FACE:
        where = "in any examined frame" if analysis.media_type == Analysis.MediaType.VIDEO else "on the photo"
        return (
            f"No face was found {where}, so nothing was judged: this is not a "
            "\u201creal\u201d verdict, and the file may still have been manipulated. The face "
            "finder looks for faces seen from the front with some of the head and background "
            "around them: a face cropped tight to its edges, turned away, very small or partly "
            "hidden can be missed, and a face too blurred to judge is left out. A wider, larger "
            "or sharper copy may do."
        )
    score = percent_text(analysis.fake_probability)
    if analysis.verdict == Analysis.Verdict.FAKE and analysis.fake_kind == "ai_generated":
        return (
            f"The second model rates {who} as likely AI-generated, a person who never existed "
            f"({percent_text(analysis.synthetic_probability)}, at or above {percent_text(analysis.synthetic_threshold)}). "
            "It learned StyleGAN2 faces only, never diffusion models; this is a statistical "
            "estimate, not proof, and a person should check it."
        )
    if analysis.verdict == Analysis.Verdict.FAKE:
        return (
            f"The model rates {who} as likely manipulated ({score}, at or above the "
            f"{percent_text(threshold)} threshold). It learned {trained_on}; this is a statistical "
            "estimate, not proof, and a person should check it."
        )
    if analysis.verdict == Analysis.Verdict.UNCERTAIN and analysis.uncertain_reason:
        return _held_sentence(analysis, who=who, threshold=threshold, threshold_real=threshold_real, seen_in=seen_in)
    if analysis.verdict == Analysis.Verdict.UNCERTAIN:
        return (
            f"The model is unsure: {who} scores {score}, between {percent_text(threshold_real)} "
            f"(below: real) and {percent_text(threshold)} (at or above: fake). A person should make "
            "the call."
        ) + _near_ai_generated(analysis)
    return (
        f"The model found no sign of the manipulations it learned ({trained_on}) in the faces it "
        f"examined: it scores them {score}, below {percent_text(threshold_real)}. That is not proof "
        "that the file is authentic: other kinds of manipulation can pass unnoticed."
    ) + _near_ai_generated(analysis)


def _held_sentence(analysis: Analysis, *, who: str, threshold: float, threshold_real: float, seen_in: int | None) -> str:
    """Why a file whose score says "real" (or a video whose second model says "AI-generated") is
    called uncertain (ml/caution.py holds it there)."""
    score = percent_text(analysis.fake_probability)
    reason = analysis.uncertain_reason
    if reason == "few_frames":
        seen = f"in only {seen_in} of the {analysis.frames_analysed} sampled frames" if seen_in else "in too few frames"
        return (
            f"Not called real: {who} scores {score}, below {percent_text(threshold_real)}, but was found "
            f"{seen}, too little of the video to clear it. Check that its boxes in the pictures below "
            "are on a face; a person should make the call."
        )
    if reason == "fake_moments":
        moments = _fake_moments(analysis, threshold=threshold)
        if moments is not None:
            person, times, of, mean = moments
            who = f"person {person}" if analysis.faces_count > 1 else who
            when = _times_text(times)
            return (
                f"Not called real: {who} scores {percent_text(mean)} on average, below {percent_text(threshold_real)}, "
                f"but {len(times)} of their {of} faces, {when}, {'scores' if len(times) == 1 else 'score'} at or "
                f"above the {percent_text(threshold)} fake threshold (the timeline shows them). An average can hide a short manipulated passage: a person "
                "should watch those moments and make the call."
            )
        return (
            f"Not called real: {who} scores {score} on average, below {percent_text(threshold_real)}, but "
            f"some faces score at or above the {percent_text(threshold)} fake threshold (the timeline shows "
            "where). An average can hide a short manipulated passage: a person should watch those moments "
            "and make the call."
        )
    if reason == "ai_generated_hint":
        return (
            f"Not called real: the face-swap model found no sign of a swap ({score}, below "
            f"{percent_text(threshold_real)}), but the second model, which looks for wholly AI-generated faces, "
            f"gives {percent_text(analysis.synthetic_probability)}: under its {percent_text(analysis.synthetic_threshold)} "
            "threshold but above half of it, where about 3 in 100 real photos and 5 in 100 generated faces "
            "landed in this project's tests. A person should make the call."
        )
    return (
        f"Not called fake: the second model rates {who} as likely AI-generated "
        f"({percent_text(analysis.synthetic_probability)}, at or above {percent_text(analysis.synthetic_threshold)}), "
        "but it learned still StyleGAN2 photos and has not been tested on generated videos: on video "
        "its score swings from frame to frame, and it flagged a real clip that had been cropped. Treat "
        "it as a lead, not a finding; a person should make the call."
    )


# ml/caution.py's rule for a "real" held for its fake moments (tests/detection/test_presenters.py
# holds them equal; this module does not import ml): at least 3 of a counted person's faces, and
# a tenth of them, at or above the fake threshold.
FAKE_MOMENTS_FACES = 3
FAKE_MOMENTS_SHARE = 0.10


def _headline_track(analysis: Analysis, deciding: AnalysisTrack | None) -> int | None:
    """The deciding person, where the headline's probability is theirs: a verdict held for one
    person's fake moments rests on them, while the file's score may be another's higher mean."""
    if deciding is None:
        return None
    own = deciding.synthetic_probability if analysis.stands_on_ai_check else deciding.fake_probability
    shown = analysis.verdict_probability
    return deciding.number if own is not None and shown is not None and abs(own - shown) < 1e-9 else None


def _fake_moments(analysis: Analysis, *, threshold: float) -> tuple[int, list[float], int, float] | None:
    """(person, the times of their faces at or above the fake threshold, their faces, their mean
    score) of the counted person the hold rests on: of those with enough such faces (the rule
    above), the one with the most; None when there is none (an analysis stored under another rule)."""
    counted = {track.number: track for track in analysis.tracks.all() if track.counted}
    in_band: dict[int, list[float]] = {}
    for frame in analysis.frames.all():
        for face in frame.faces.all():
            if face.track in counted and face.fake_probability >= threshold:
                in_band.setdefault(face.track, []).append(frame.time)
    enough = {
        number: times for number, times in in_band.items()
        if len(times) >= max(FAKE_MOMENTS_FACES, math.ceil(FAKE_MOMENTS_SHARE * counted[number].frames))
    }
    if not enough:
        return None
    person = max(enough, key=lambda number: (len(enough[number]), -number))
    track = counted[person]
    return person, sorted(enough[person]), track.frames, track.fake_probability


def _times_text(times: list[float]) -> str:
    """"at 1.0 s", "at 1.0, 1.5 and 10.0 s", or for many "at 9 moments from 1.0 to 15.0 s"."""
    if len(times) == 1:
        return f"at {times[0]:.1f} s"
    if len(times) <= 6:
        return f"at {', '.join(f'{t:.1f}' for t in times[:-1])} and {times[-1]:.1f} s"
    return f"at {len(times)} moments from {times[0]:.1f} to {times[-1]:.1f} s"


def _ai_faces_reached(analysis: Analysis, frames: list[AnalysisFrame]) -> tuple[int, int] | None:
    """(faces at or above the AI-generated threshold, faces checked) of a video whose people
    all stayed under it: a face at 100 % is otherwise hidden behind its person's lowest score."""
    threshold, probability = analysis.synthetic_threshold, analysis.synthetic_probability
    if threshold is None or probability is None or probability >= threshold:
        return None
    checked = [face.synthetic_probability for frame in frames for face in frame.faces.all() if face.synthetic_probability is not None]
    reached = sum(1 for value in checked if value >= threshold)
    return (reached, len(checked)) if reached else None


def _near_ai_generated(analysis: Analysis) -> str:
    """A sentence when the AI-generated check reached half of its threshold without reaching it,
    which would otherwise show only as a green "Real". Measured 2026-11-27 through the site's
    own path (the installed models, one photo at a time): 4 of 149 Celeb-DF real photos (a source
    the model never saw) landed there, and 4 of 83 StyleGAN2 faces (its training faces, so an
    optimistic count); 67 of the 83 reached the threshold. A weak hint, said as such."""
    probability, threshold = analysis.synthetic_probability, analysis.synthetic_threshold
    if probability is None or threshold is None or not threshold / 2 <= probability < threshold:
        return ""
    return (
        f" The second model, which looks for wholly AI-generated faces, gives {percent_text(probability)}: "
        f"under its {percent_text(threshold)} threshold but above half of it, where about 3 in 100 real "
        "photos and 5 in 100 generated faces landed in this project's tests. A weak hint either way."
    )


def _frame_view(
    analysis: Analysis,
    frame: AnalysisFrame,
    *,
    threshold: float,
    threshold_real: float,
    font: float,
    ai_generated: dict[int, float],
    ai_band: str = "fake",
) -> Frame:
    """`ai_generated`: the AI-generated probability of each person judged AI-generated, whose
    boxes are drawn in `ai_band` and labelled with it (their face-swap score is usually near 0)."""
    boxes = []
    # by person, so that every frame's caption and row lists P1 before P2 (faces not linked to a
    # person last, in the order they were found)
    for face in sorted(frame.faces.all(), key=lambda face: (not face.track, face.track, face.index)):
        synthetic = ai_generated.get(face.track) if face.track else None
        if synthetic is not None:
            label = f"P{face.track} AI {percent_text(synthetic)}"
        elif face.track:
            label = f"P{face.track} {percent_text(face.fake_probability)}"
        else:
            label = percent_text(face.fake_probability)
        label_h = font * 1.35
        label_w = font * 0.62 * len(label) + font * 0.6
        label_y = round(face.y - label_h if face.y >= label_h else face.y + face.h, 1)
        label_x = round(min(max(face.x, 0), max((analysis.width or 0) - label_w, 0)), 1)
        boxes.append(
            Box(
                face_id=face.pk,
                x=face.x,
                y=face.y,
                w=face.w,
                h=face.h,
                score=face.fake_probability,
                band=ai_band if synthetic is not None else band_for(face.fake_probability, threshold=threshold, threshold_real=threshold_real),
                track=face.track,
                label=label,
                label_x=label_x,
                label_y=label_y,
                label_w=round(label_w, 1),
                label_h=round(label_h, 1),
                text_x=round(label_x + font * 0.3, 1),
                text_y=round(label_y + label_h * 0.75, 1),
                ai_generated=synthetic,
            )
        )
    score = frame.fake_probability
    return Frame(
        index=frame.index,
        time=frame.time,
        score=score,
        band=None if score is None else band_for(score, threshold=threshold, threshold_real=threshold_real),
        image_url=reverse("detection:frame-image", args=[analysis.pk, frame.index]) if frame.image else None,
        boxes=boxes,
        faces_left_out=frame.faces_left_out,
        boxes_rejected=frame.boxes_rejected,
    )


def _timeline(analysis: Analysis, frames: list[Frame], *, threshold: float, threshold_real: float) -> Timeline:
    left, right = PLOT_LEFT, TIMELINE_WIDTH - PLOT_RIGHT
    top, bottom = PLOT_TOP, TIMELINE_HEIGHT - PLOT_BOTTOM
    end = max([analysis.duration or 0.0] + [frame.time for frame in frames]) or 1.0

    def x_of(seconds: float) -> float:
        return round(left + (right - left) * seconds / end, 2)

    def y_of(probability: float) -> float:
        return round(bottom - (bottom - top) * probability, 2)

    for i, frame in enumerate(frames):
        frame.x = x_of(frame.time)
    for i, frame in enumerate(frames):
        start = left if i == 0 else (frames[i - 1].x + frame.x) / 2
        stop = right if i == len(frames) - 1 else (frame.x + frames[i + 1].x) / 2
        frame.hit_x, frame.hit_w = round(start, 2), round(max(stop - start, 1.0), 2)

    bands = [
        {"name": "fake", "label": "Fake", "y": y_of(1.0), "h": round(y_of(threshold) - y_of(1.0), 2)},
        {"name": "uncertain", "label": "Uncertain", "y": y_of(threshold), "h": round(y_of(threshold_real) - y_of(threshold), 2)},
        {"name": "real", "label": "Real", "y": y_of(threshold_real), "h": round(y_of(0.0) - y_of(threshold_real), 2)},
    ]
    bands = [band for band in bands if band["h"] > 0]
    for band in bands:
        band["label_y"] = round(band["y"] + band["h"] / 2, 2)  # the name beside its band's middle
    y_ticks = [{"y": y_of(p), "label": f"{round(p * 100)}%"} for p in (0.0, 0.5, 1.0)]
    step = _tick_step(end)
    x_ticks = []
    tick = 0.0
    while tick <= end + 1e-9:
        x_ticks.append({"x": x_of(tick), "label": f"{tick:g} s"})
        tick = round(tick + step, 6)

    tracks_by_number = {track.number: track for track in analysis.tracks.all()}
    numbers = sorted({box.track for frame in frames for box in frame.boxes})
    lines = []
    for number in numbers:
        points, segments, run = [], [], []
        for frame in frames:
            box = max((b for b in frame.boxes if b.track == number), key=lambda b: b.score, default=None)
            if box is None:
                if run:
                    segments.append(" ".join(run))
                run = []
                continue
            point = (frame.x, y_of(box.score), frame.index, box.score, marker_path(colour_of(number), frame.x, y_of(box.score)))
            points.append(point)
            run.append(f"{point[0]},{point[1]}")
        if run:
            segments.append(" ".join(run))
        track = tracks_by_number.get(number)
        lines.append(
            TrackLine(
                number=number,
                colour=colour_of(number),
                segments=[segment for segment in segments if " " in segment],
                points=points,
                marker=marker_path(colour_of(number), 0, 0),
                score=track.fake_probability if track else None,
                counted=track.counted if track else False,
                first_time=track.first_time if track else None,
                last_time=track.last_time if track else None,
            )
        )
    return Timeline(
        width=TIMELINE_WIDTH,
        height=TIMELINE_HEIGHT,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        bands=bands,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        tracks=lines,
        frames=frames,
        summary=_timeline_summary(frames, numbers, threshold=threshold, threshold_real=threshold_real),
    )


def _timeline_summary(frames: list[Frame], numbers: list[int], *, threshold: float, threshold_real: float) -> list[str]:
    """What the timeline shows, in words (for screen readers and a printed report, which has
    no frames table): for each person, their sampled frames in each band of the fake
    probability (as the chart draws them; a box drawn for the AI-generated model's call has
    another colour) and their highest score, and when."""
    bands = (("fake", "fake"), ("uncertain", "uncertain"), ("real", "real"))
    lines = []
    for number in numbers:
        best = [
            (frame, max((b for b in frame.boxes if b.track == number), key=lambda b: b.score))
            for frame in frames
            if any(b.track == number for b in frame.boxes)
        ]
        if not best:
            continue
        who = f"Person {number}" if number else "Faces not linked to a person"
        in_band = [band_for(box.score, threshold=threshold, threshold_real=threshold_real) for _, box in best]
        counts = ", ".join(f"{in_band.count(band)} {words}" for band, words in bands)
        top_frame, top = max(best, key=lambda pair: pair[1].score)
        frames_words = f"{len(best)} sampled frame{'s' if len(best) != 1 else ''}"
        lines.append(
            f"{who}: {frames_words} ({counts}); highest {percent_text(top.score)} at {top_frame.time:.2f} s."
        )
    return lines


def colour_of(number: int) -> int:
    """A person's colour (CSS classes track-1 .. track-6, reused in turn; 0 for faces not linked
    to a person)."""
    return (number - 1) % TRACK_COLOURS + 1 if number else 0


# Each colour's marker on the timeline, so that people are told apart by shape too, not by colour
# alone (and where one line runs over another): colour -> shape.
MARKERS = {1: "circle", 2: "square", 3: "triangle", 4: "diamond", 5: "triangle-down", 6: "square"}


def marker_path(colour: int, x: float, y: float, size: float = 4.5) -> str:
    """The SVG path of colour's marker centred on (x, y); "" for a circle (drawn as one)."""
    shape = MARKERS.get(colour, "circle")
    s = size
    corners = {
        "square": [(-s, -s), (s, -s), (s, s), (-s, s)],
        "triangle": [(0, -1.25 * s), (1.2 * s, 0.85 * s), (-1.2 * s, 0.85 * s)],
        "triangle-down": [(0, 1.25 * s), (1.2 * s, -0.85 * s), (-1.2 * s, -0.85 * s)],
        "diamond": [(0, -1.35 * s), (1.35 * s, 0), (0, 1.35 * s), (-1.35 * s, 0)],
    }.get(shape)
    if corners is None:
        return ""
    return "M" + " L".join(f"{round(x + dx, 2)} {round(y + dy, 2)}" for dx, dy in corners) + " Z"


def _tick_step(seconds: float) -> float:
    """A round step giving about 4 to 10 ticks over `seconds`."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if seconds / step <= 10:
            return float(step)
    return 3600.0 * max(1, round(seconds / 36000))


def _heatmaps(analysis: Analysis, frames: list[AnalysisFrame], *, video: bool) -> list[Heatmap]:
    heatmaps = []
    faces: list[tuple[AnalysisFrame, AnalysisFace]] = [
        (frame, face) for frame in frames for face in frame.faces.all() if face.heatmap
    ]
    for frame, face in sorted(faces, key=lambda pair: -pair[1].fake_probability):
        who = f"Person {face.track}" if face.track else f"Face {face.index + 1}"
        where = f" at {frame.time:.2f} s (frame {frame.index})" if video else ""
        heatmaps.append(
            Heatmap(
                face_id=face.pk,
                url=reverse("detection:heatmap", args=[analysis.pk, face.pk]),
                image_url=reverse("detection:frame-image", args=[analysis.pk, frame.index]) if frame.image else None,
                # the region the heatmap covers, so that the two pictures line up
                crop_view_box=" ".join(str(v) for v in (face.crop or [face.x, face.y, face.w, face.h])),
                crop_transform=_crop_transform(face),
                caption=f"{who}{where}: fake probability {percent_text(face.fake_probability)}",
                crop_label=f"{who}’s face{where}, as the model saw it" if face.track else f"{who}{where}, as the model saw it",
                alt=f"Heatmap of {who}{where}: {face.heatmap_focus}" if face.heatmap_focus else f"Heatmap of {who}{where}",
            )
        )
    return heatmaps


def _crop_transform(face: AnalysisFace) -> str:
    """'' for an upright crop; for a tilted face's, the frame turned crop_angle degrees
    counter-clockwise about the crop's centre (SVG turns clockwise for a positive angle)."""
    if not face.crop_angle or not face.crop:
        return ""
    x, y, w, h = face.crop
    return f"rotate({-face.crop_angle:g} {x + w / 2:g} {y + h / 2:g})"


def _face_side(frames: list[AnalysisFrame], track: int) -> int | None:
    """The median size (a box's longer side, px) of person `track`'s faces."""
    sides = [max(face.w, face.h) for frame in frames for face in frame.faces.all() if face.track == track]
    return round(statistics.median(sides)) if sides else None


def _person_cards(
    analysis: Analysis,
    frames: list[AnalysisFrame],
    tracks: list[AnalysisTrack],
    *,
    threshold: float,
    threshold_real: float,
    ai_generated: dict[int, float],
    deciding: int | None,
    ai_band: str = "fake",
) -> list[PersonCard]:
    best: dict[int, tuple[AnalysisFrame, AnalysisFace]] = {}
    for frame in frames:
        for face in frame.faces.all():
            if face.track and (face.track not in best or face.fake_probability > best[face.track][1].fake_probability):
                best[face.track] = (frame, face)
    cards = []
    for track in sorted(tracks, key=lambda track: track.number):
        if track.number not in best:
            continue
        frame, face = best[track.number]
        side = max(face.w, face.h) * 1.25  # the face with a little room around it, square
        cards.append(
            PersonCard(
                number=track.number,
                colour=colour_of(track.number),
                marker=marker_path(colour_of(track.number), 0, 0),
                score=track.fake_probability,
                band=ai_band if track.number in ai_generated else band_for(
                    track.fake_probability, threshold=threshold, threshold_real=threshold_real
                ),
                ai_generated=ai_generated.get(track.number),
                frames=track.frames,
                first_time=track.first_time,
                last_time=track.last_time,
                counted=track.counted,
                deciding=track.number == deciding,
                image_url=reverse("detection:frame-image", args=[analysis.pk, frame.index]) if frame.image else None,
                crop_view_box=" ".join(
                    str(round(v, 1))
                    for v in (face.x + face.w / 2 - side / 2, face.y + face.h / 2 - side / 2, side, side)
                ),
                best_time=frame.time,
                best_score=face.fake_probability,
            )
        )
    return cards


def result_view(analysis: Analysis) -> ResultView:
    """Everything the result page and the report show for a finished analysis."""
    threshold = analysis.threshold if analysis.threshold is not None else 0.5
    threshold_real = analysis.threshold_real if analysis.threshold_real is not None else threshold
    stored = list(analysis.frames.all())
    width, height = analysis.width or 1, analysis.height or 1
    orientation = "landscape" if width > height * 1.1 else "portrait" if height > width * 1.1 else "square"
    # Labels about 16 px high on a desktop, whatever the picture's size (see result.css).
    font = round(max(width, height, 100) * (0.024 if orientation == "landscape" else 0.03), 1)
    tracks = list(analysis.tracks.all())
    # held at uncertain by a half-way AI-generated score (ml/caution.py): the people at half way
    flag_from = 0.5 if analysis.uncertain_reason == "ai_generated_hint" else 1.0
    flagged = {
        track.number: track.synthetic_probability
        for track in tracks
        if analysis.synthetic_threshold is not None
        and track.synthetic_probability is not None
        and track.synthetic_probability >= analysis.synthetic_threshold * flag_from
    }
    # Drawn as AI-generated only when that is the verdict: a face-swap "fake" comes first
    # (ml.detector.combined_verdict), and the second model's call on another person is then
    # named in words, not drawn as a finding.
    # Held at uncertain (ml/caution.py: a video's AI-generated call): drawn with its AI label, in
    # the uncertain band's colour, so the box does not say "real" under an AI-generated headline.
    ai_generated = flagged if analysis.stands_on_ai_check else {}
    ai_band = "fake" if analysis.is_ai_generated else "uncertain"
    frames = [
        _frame_view(
            analysis, frame, threshold=threshold, threshold_real=threshold_real, font=font,
            ai_generated=ai_generated, ai_band=ai_band,
        )
        for frame in stored
    ]
    counted = [track for track in tracks if track.counted]
    if analysis.stands_on_ai_check:  # the person the AI-generated call stands on
        deciding = max(
            (track for track in counted if track.synthetic_probability is not None),
            key=lambda track: track.synthetic_probability,
            default=None,
        )
    else:
        deciding = max(counted, key=lambda track: track.fake_probability, default=None)
        if analysis.uncertain_reason == "fake_moments":  # the person whose fake moments held it
            moments = _fake_moments(analysis, threshold=threshold)
            if moments is not None:
                deciding = next(track for track in counted if track.number == moments[0])
    scored = [frame for frame in frames if frame.score is not None]
    selected = max(scored, key=lambda frame: frame.score, default=frames[0] if frames else None)
    video = analysis.media_type == Analysis.MediaType.VIDEO
    timeline = (
        _timeline(analysis, frames, threshold=threshold, threshold_real=threshold_real)
        if video and frames
        else None
    )
    return ResultView(
        analysis=analysis,
        threshold=threshold,
        threshold_real=threshold_real,
        sentence=verdict_sentence(
            analysis,
            threshold=threshold,
            threshold_real=threshold_real,
            track=deciding.number if deciding else None,
            seen_in=deciding.frames if deciding else None,
            face_side=_face_side(stored, deciding.number) if deciding else None,
        ),
        deciding_track=deciding.number if deciding else None,
        headline_track=_headline_track(analysis, deciding),
        frames=frames,
        selected=selected,
        font_size=font,
        timeline=timeline,
        heatmaps=_heatmaps(analysis, stored, video=video),
        faces_left_out=sum(frame.faces_left_out for frame in frames),
        max_faces=max((len(frame.faces.all()) for frame in stored if frame.faces_left_out), default=0),
        ai_faces_reached=_ai_faces_reached(analysis, stored) if video else None,
        boxes_rejected=sum(frame.boxes_rejected for frame in frames),
        frames_with_images=sum(1 for frame in frames if frame.image_url),
        bands_present=sorted({box.band for frame in frames for box in frame.boxes}),
        ai_generated_people=any(box.ai_generated is not None for frame in frames for box in frame.boxes),
        orientation=orientation,
        people=len(tracks),
        ai_flagged_too=[
            (track.number, flagged[track.number], track.counted) for track in tracks if track.number in flagged
        ] if not analysis.stands_on_ai_check else [],
        person_cards=_person_cards(
            analysis, stored, tracks, threshold=threshold, threshold_real=threshold_real,
            ai_generated=ai_generated, ai_band=ai_band, deciding=deciding.number if deciding else None,
        ) if len(tracks) > 1 else [],
    )
