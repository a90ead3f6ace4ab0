"""`python -m ml bench` (`make bench`): how fast the engine is, stage by stage, against a naive
pipeline run in the same process on the same files.

What it measures, on media it makes itself (or files given on the command line):
- each stage of `Detector.analyze` (decode, Haar face search, BlazeFace verification, the
  face-swap classifier, the synthetic-face detector, heatmaps and thumbnail, crops and frame
  JPEGs) over
  repeated runs with the model loaded and warm: median, min and max. Where the two models run
  side by side (torch, a photo: `ml.detector.side_by_side_pool`; ONNX, always: `onnx_lanes_pool`)
  their time together is `classify`'s
  and `synthetic` shows 0;
- the naive baseline (`NaivePipeline`) on the same files: every frame decoded with `read()`,
  Haar on the full-resolution frame, an fp32 ResNet18 (ml/nets.py) with random weights at batch 1.
  It is a speed baseline only (its verdicts mean nothing), the "seed" pipeline of issue 13;
- cold start (process start to the first verdict) and the peak resident memory (`VmHWM`) of a
  process that analyses every file once, both in fresh subprocesses, as a worker would (the
  median of `--cold-runs`, the highest peak);
- optionally (`--api`), upload-to-verdict through the API: gunicorn and one django-q2 worker on a
  temporary SQLite database, p50 and p95 over repeated uploads with `?wait=30`.

Measured for issue 13 and not kept (numbers in the issue's note; noisy, a busy 2-core AMD EPYC):
- bf16 autocast (+ channels_last): 2-3x faster on both MobileNetV2 models, but fake
  probabilities moved by up to 0.043 on real DFDC faces (synthetic: 0.021), past the 0.01 allowed;
- fp16 autocast (this CPU has AVX512-FP16): probabilities within 0.012 of fp32 on 128 DFDC
  faces, but no faster (156 against 168 faces/s at batch 4, MobileNetV2; bf16 again: 206, with
  probabilities moved by up to 0.089);
- (adopted later) ONNX Runtime: first measured here for the face-swap MobileNetV2 (1.3x at
  batch 4, 1.7x at batch 8) and not adopted while the worker would have loaded torch anyway;
  now the CPU worker's runtime, without torch (ml/onnx_runtime.py). Within it, measured and not
  kept (2026-11-26): batches of 8, 16 or 32 crops (32 DFDC crops: 151 ms at 4, 156 at 8, 159 at
  16, 181 at 32); threads that spin while idle, ONNX Runtime's default (they took the cores from
  the Haar search between batches: a photo's `faces` 66 ms instead of 45);
- OpenCV's other frontal-face Haar cascades on the labelled frames of ml/checks/face_boxes.csv
  (2026-11-26, same search): `alt2` 43.5 ms a frame against `default`'s 32.9 and 445 of its 466
  labelled faces; `alt` 51.0 ms and 438;
- encoding a video's frame JPEGs on a second thread while the next frames decode: 11-29 ms less
  on the 720p clip, -25 to +35 ms on the DFDC clip over three alternating runs of 6 (about 2 %);
- OpenCV's `OPENCV_FFMPEG_CAPTURE_OPTIONS="skip_frame;nonref"` does not reach the decoder (300 of
  300 frames still decoded): skipping needs PyAV (ml/video_skipping.py);
- `torch.compile` (inductor): minutes to compile on a busy machine, and no faster than eager
  with folded BatchNorm here; `torch.jit.optimize_for_inference`: about what folding gives;
- on a CUDA GPU (an H200): fp16 autocast moved probabilities by up to 0.019 and cuDNN's
  default TF32 by up to 0.005, for 4-21 % more faces/s through `classify` (1,400-1,700, bound
  by preprocessing on the CPU): the GPU scores in true fp32 (`ml.model.scoring_precision`,
  `python -m ml precision-check`);
- batches of 8 or 16 crops (4 kept: 180 ms against 245 ms for 32 crops at 16);
- BlazeFace's full-range model on the whole frame as a photo's face proposer (Haar then searching
  only around what it finds): 6-7 ms a frame against Haar's 37, but it finds 420 of the 466
  labelled faces of ml/checks/face_boxes.csv at any confidence from 0.1 to 0.5 (centre inside
  the labelled box), missing faces of 90-360 px, 13 of them in the DFDC fake clip
  `abofeumbvv` (2026-11-26);
- Haar's minimum face 8 % -> 10 % of the short side (20 % less Haar time, no labelled face lost):
  the labelled set holds no face that small in a large frame, so it cannot tell what is lost;
  a larger scale step (1.2) lost 17 of 466 labelled faces;
- a larger scale step with fewer neighbours, as BlazeFace confirms every box anyway
  (2026-11-26, an AMD EPYC; `python -m ml check-faces ml/checks/face_boxes.csv --verifier
  blazeface --search 1.2:2 ...`): 1.2 with 2 neighbours finds 461 of the 466 labelled faces
  (shipped 1.1 with 5: 465) at 13.4 ms a frame against 22.9; 1.15:3 457 at 16.9; 1.25:2 455 at
  10.0. The photo then takes 40 ms against 53 (same process, 30 runs each), still over 35, and
  every face's box moves (IoU with the shipped search's box: median 0.96, 5th percentile 0.87),
  which moves the fake probability of one face in twenty by 0.14 or more (at most 0.48; see
  `make framing-check`): not worth 4 more lost faces for a target it still misses.

Timings on a shared machine are noisy: compare numbers from one invocation. The generated media
are an astronaut photo (`skimage.data.astronaut()`, public domain) placed on a 1080p canvas and
two mp4v clips of it panning (OpenCV's writer: a keyframe every 12 frames).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .options import DetectorOptions
from .video import DEFAULT_FRAMES, sample_indices

# name -> (kind, width, height, frames at 30 fps)
MEDIA_PROFILES = {
    "default": {
        "photo-1080p": ("photo", 1920, 1080, 1),
        "clip-720p-10s": ("video", 1280, 720, 300),
        "clip-1080p-60s": ("video", 1920, 1080, 1800),
    },
    "tiny": {
        "photo-tiny": ("photo", 480, 270, 1),
        "clip-tiny": ("video", 320, 180, 24),
    },
}
FPS = 30.0

# Issue 13's targets: seconds (median, model loaded) per generated file, and the rest.
TARGETS_S = {"photo-1080p": 0.035, "clip-720p-10s": 0.8, "clip-1080p-60s": 4.0, "real-1080p-10s": 1.2}
TARGET_SPEEDUP_720P = 5.0
TARGET_PEAK_MB = 1024
TARGET_API_P50_S = 0.4


# ---------------------------------------------------------------------------- media


def _astronaut() -> np.ndarray:
    try:
        import skimage.data
    except ImportError as exc:
        raise RuntimeError("the bench draws its media from scikit-image (`make install` installs it)") from exc
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def _scene(width: int, height: int) -> np.ndarray:
    """The astronaut, `height` px tall, on a blurred copy of herself, wider than the frame by a
    third so a clip can pan across it."""
    photo = _astronaut()
    wide = width + width // 3
    scene = cv2.GaussianBlur(cv2.resize(photo, (wide, height), interpolation=cv2.INTER_AREA), (0, 0), max(2, height // 40))
    face = cv2.resize(photo, (height, height), interpolation=cv2.INTER_AREA)
    x = (wide - height) // 2
    scene[:, x : x + height] = face
    return scene


def make_media(folder: Path, profile: str = "default") -> dict[str, Path]:
    """The profile's photo and clips in `folder`, written once and reused afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, (kind, width, height, frames) in MEDIA_PROFILES[profile].items():
        path = folder / (f"{name}.jpg" if kind == "photo" else f"{name}.mp4")
        if not path.is_file():
            scene = _scene(width, height)
            spare = scene.shape[1] - width
            if kind == "photo":
                cv2.imwrite(str(path), scene[:, spare // 2 : spare // 2 + width], [cv2.IMWRITE_JPEG_QUALITY, 90])
            else:
                tmp = path.with_suffix(".tmp.mp4")
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
                if not writer.isOpened():
                    raise RuntimeError("OpenCV cannot write mp4v video here")
                for i in range(frames):  # a slow pan there and back, every few seconds
                    x = round(spare / 2 + spare / 2 * np.sin(i / (FPS * 1.5)))
                    writer.write(np.ascontiguousarray(scene[:, x : x + width]))
                writer.release()
                tmp.replace(path)
        made[name] = path
    return made


# ---------------------------------------------------------------------------- the naive baseline


class NaivePipeline:
    """A seed-style pipeline, for speed comparisons only: every frame decoded with `read()`, Haar
    on the full-resolution frame, the largest face cropped and scored by an fp32 ResNet18 (random
    weights) at batch 1. Same frames sampled as the engine."""

    def __init__(self):
        import torch

        from .nets import ResNet18

        self.torch = torch
        self.model = ResNet18(num_classes=2).eval()
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def _frames(self, path: Path) -> list[np.ndarray]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            return [image]
        cap = cv2.VideoCapture(str(path))
        wanted = set(sample_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), DEFAULT_FRAMES))
        frames = []
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index in wanted:
                frames.append(frame)
            index += 1
        cap.release()
        return frames

    def analyze(self, path: Path) -> dict:
        timings = {}
        started = time.perf_counter()
        frames = self._frames(path)
        timings["decode"] = time.perf_counter() - started
        started = time.perf_counter()
        crops = []
        for frame in frames:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5)
            if len(found):
                x, y, w, h = max(found, key=lambda b: b[2] * b[3])
                cx, cy, side = x + w / 2, y + h / 2, 1.3 * max(w, h)
                x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
                crops.append(cv2.resize(frame[y0 : int(cy + side / 2), x0 : int(cx + side / 2)], (224, 224)))
        timings["faces"] = time.perf_counter() - started
        started = time.perf_counter()
        mean = self.torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = self.torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with self.torch.no_grad():
            for crop in crops:
                x = self.torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
                self.torch.softmax(self.model((x - mean) / std), dim=1)
        timings["classify"] = time.perf_counter() - started
        return {"timings": timings, "faces": len(crops), "frames": len(frames)}


# ---------------------------------------------------------------------------- timing


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of some seconds (rounded to 0.1 ms)."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "runs": len(values),
    }


@dataclass
class FileReport:
    name: str
    path: str
    kind: str
    width: int = 0
    height: int = 0
    duration: float = 0.0
    engine: dict = field(default_factory=dict)  # stage -> spread, plus "total"
    naive: dict = field(default_factory=dict)
    frames: int = 0
    faces: int = 0
    verdict: str = ""
    fake_probability: float | None = None
    speedup: float | None = None
    target_s: float | None = None


def time_engine(detector, path: Path, options: DetectorOptions, repeat: int) -> tuple[dict, object]:
    detector.analyze(path, options)  # warm-up: first-call costs are the cold start's business
    return _timed(lambda: detector.analyze(path, options), lambda result: result.timings, repeat)


def time_naive(naive: NaivePipeline, path: Path, repeat: int) -> tuple[dict, dict]:
    return _timed(lambda: naive.analyze(path), lambda out: out["timings"], repeat)


def _timed(run, timings_of, repeat: int) -> tuple[dict, object]:
    """Stage spreads, "total" (wall seconds) and "cpu" (CPU seconds of every thread of this
    process: less disturbed than wall time by other work on the machine) over `repeat` runs."""
    walls, cpus, stages = [], [], {}
    out = None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        out = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
        for stage, seconds in timings_of(out).items():
            stages.setdefault(stage, []).append(seconds)
    report = {stage: spread(values) for stage, values in stages.items()}
    report["total"] = spread(walls)
    report["cpu"] = spread(cpus)
    return report, out


def _target_for(name: str, kind: str, width: int, height: int, duration: float) -> float | None:
    if name in TARGETS_S:
        return TARGETS_S[name]
    if kind == "video" and min(width, height) >= 1080 and 8 <= duration <= 12:
        return TARGETS_S["real-1080p-10s"]
    return None


# ---------------------------------------------------------------------------- cold start, memory


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program, in MB.

    Not `getrusage(...).ru_maxrss`: Linux carries a parent's high-water mark into a child
    through fork and exec, so a child of the bench (1.3 GB by then) reported at least 1.3 GB
    whatever it did itself. `VmHWM` belongs to the process's own address space, which exec
    replaces."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


_CUDA_LIBRARY = re.compile(r"/site-packages/(nvidia|cuda)/|/torch/lib/lib\w*(cuda|nvrtc|nvshmem)")


def resident_mb() -> dict[str, float]:
    """What this process holds in memory now, in MB, split by where the pages come from (Linux
    only; an empty dict elsewhere):
    - `private`: its own pages (heap, tensors, copies of library data it wrote to);
    - `mapped_files`: pages of files mapped read-only, mostly shared libraries, counted by
      every process that maps them but held once by the machine and dropped under pressure;
    - `cuda_libraries`: of those, the CUDA libraries torch's CUDA build loads even where there
      is no GPU (measured 2026-11-26 on a CPU-only machine: 147-293 MB of a worker).
    `VmHWM` (`peak_rss_mb`) counts all of them, and how many library pages stay resident depends
    on the kernel and its page cache: the same worker measured 801 and 1,109 MB an hour apart on
    one machine, its own pages 490-495 MB both times."""
    private = mapped = cuda = 0
    name = ""
    try:
        with open("/proc/self/smaps") as fh:
            for line in fh:
                field, _, value = line.partition(":")
                if " " in field:  # a mapping's header: address range, perms, offset, dev, inode, path
                    parts = line.split(maxsplit=5)
                    name = parts[5].strip() if len(parts) > 5 else ""
                elif field == "Rss":
                    rss = int(value.split()[0])
                    mapped += rss
                    if _CUDA_LIBRARY.search(name):
                        cuda += rss
                elif field == "Anonymous":
                    anonymous = int(value.split()[0])
                    private += anonymous
                    mapped -= anonymous
                    if _CUDA_LIBRARY.search(name):
                        cuda -= anonymous
    except OSError:
        return {}
    return {"private": round(private / 1024, 1), "mapped_files": round(mapped / 1024, 1), "cuda_libraries": round(cuda / 1024, 1)}


def _child(paths: list[str], started: float, checkpoint: str | None = None, runtime: str = "auto") -> None:
    """Run in a fresh process: import, load, first verdict (cold start), then every file once;
    prints one JSON line."""
    from . import load_detector

    imported = time.time()
    detector = load_detector(checkpoint, runtime=runtime)
    loaded = time.time()
    detector.analyze(paths[0])
    first = time.time()
    for path in paths[1:]:
        detector.analyze(path)
    print(json.dumps({
        "model": detector.version,
        "runtime": detector.runtimes,
        "torch_loaded": "torch" in sys.modules,
        "import_s": round(imported - started, 3),
        "load_s": round(loaded - imported, 3),
        "first_analysis_s": round(first - loaded, 3),
        "first_verdict_s": round(first - started, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "resident_at_end_mb": resident_mb(),
    }))


def cold_start(paths: list[Path], checkpoint: str | None = None, *, runs: int = 3, runtime: str = "auto") -> dict:
    """Process start to first verdict (on the first file), and the peak memory of a process
    that then analyses the other files too, each measured in `runs` fresh interpreters with the
    same checkpoint: the run with the median first verdict, its peak memory replaced by the
    highest of all runs (both vary from run to run by 10 % and more)."""
    measured = sorted((_cold_start_once(paths, checkpoint, runtime) for _ in range(max(1, runs))), key=lambda r: r["first_verdict_s"])
    report = dict(measured[len(measured) // 2])
    highest = max(measured, key=lambda r: r["peak_rss_mb"])
    report["peak_rss_mb"] = highest["peak_rss_mb"]
    report["resident_at_end_mb"] = highest.get("resident_at_end_mb", {})
    report["runs"] = measured
    return report


def _cold_start_once(paths: list[Path], checkpoint: str | None, runtime: str = "auto") -> dict:
    started = time.time()
    model = ["--checkpoint", str(Path(checkpoint).resolve())] if checkpoint else []
    done = subprocess.run(
        [sys.executable, "-m", "ml.bench", "--child", str(started), "--runtime", runtime, *model, *map(str, paths)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the cold-start subprocess failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the API (optional)


def api_latency(photo: Path, video: Path | None, *, uploads: int, port: int, runtime: str = "auto") -> dict:
    """Upload-to-verdict through the API with one worker: see `ml.bench_api`."""
    from .bench_api import measure_api

    return measure_api(photo, video, uploads=uploads, port=port, runtime=runtime)


# ---------------------------------------------------------------------------- the report


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


STAGES = ("decode", "faces", "verify", "classify", "synthetic", "explain", "images")


def format_report(report: dict) -> str:
    lines = [f"machine: {report['machine']}", f"faces scored by: {report.get('runtime', 'torch')}", ""]
    header = f"{'file':<18} {'engine':>9} {'spread':>17} {'naive':>9} {'ratio':>6} {'target':>8} {'cpu':>9} {'naive':>9}  " + " ".join(
        f"{s:>9}" for s in STAGES
    )
    lines += [header, "-" * len(header)]
    for f in report["files"]:
        total = f["engine"]["total"]
        naive = f["naive"].get("total", {}).get("median")
        ratio = f"{f['speedup']:.1f}x" if f["speedup"] else "-"
        target = "-"
        if f["target_s"] is not None:
            target = ("ok " if total["median"] <= f["target_s"] else "NO ") + _ms(f["target_s"]).replace(" ", "")
        spread_text = f"{_ms(total['min'])}-{_ms(total['max'])}"
        stages = " ".join(f"{_ms(f['engine'].get(s, {}).get('median')):>9}" for s in STAGES)
        cpu, naive_cpu = f["engine"]["cpu"]["median"], f["naive"].get("cpu", {}).get("median")
        lines.append(
            f"{f['name']:<18} {_ms(total['median']):>9} {spread_text:>17} {_ms(naive):>9} {ratio:>6} {target:>8} "
            f"{_ms(cpu):>9} {_ms(naive_cpu):>9}  {stages}"
        )
    lines.append("(engine, naive: median wall time; ratio: naive / engine; cpu: median CPU time of all threads)")
    lines.append("")
    for f in report["files"]:
        classify = f["engine"].get("classify", {}).get("median")
        per_s = f["faces"] / classify if classify else 0
        lines.append(
            f"{f['name']}: {f['width']}x{f['height']}, {f['frames']} frames, {f['faces']} faces "
            f"({per_s:.0f} faces/s in the classifier, {f['faces'] / f['engine']['total']['median']:.1f} faces/s in all), "
            f"verdict {f['verdict']}; naive: decode {_ms(f['naive'].get('decode', {}).get('median'))}, "
            f"faces {_ms(f['naive'].get('faces', {}).get('median'))}, classify {_ms(f['naive'].get('classify', {}).get('median'))}"
        )
    cold = report.get("cold")
    if cold:
        peak_ok = "ok" if cold["peak_rss_mb"] <= TARGET_PEAK_MB else "NO"
        lines.append(
            f"cold start ({len(cold.get('runs', [cold]))} runs, the median): first verdict {cold['first_verdict_s']:.2f} s after process start (imports "
            f"{cold['import_s']:.2f} s, models {cold['load_s']:.2f} s, first analysis {cold['first_analysis_s']:.2f} s); "
            f"peak memory {cold['peak_rss_mb']:.0f} MB, the highest run [{peak_ok} <= {TARGET_PEAK_MB} MB]; "
            f"scored by {cold.get('runtime', '?')}, torch {'loaded' if cold.get('torch_loaded', True) else 'never loaded'}"
        )
        split = cold.get("resident_at_end_mb") or {}
        if split:
            lines.append(
                f"  of it at the end: {split['private']:.0f} MB the process's own, {split['mapped_files']:.0f} MB "
                f"mapped from files (shared libraries; CUDA's among them: {split['cuda_libraries']:.0f} MB)"
            )
    api = report.get("api")
    if api:
        for kind, numbers in api.items():
            if isinstance(numbers, dict) and "p50" in numbers:
                lines.append(
                    f"API {kind}: upload-to-verdict p50 {_ms(numbers['p50'])}, p95 {_ms(numbers['p95'])} "
                    f"over {numbers['uploads']} uploads" + (f" [target p50 <= {_ms(TARGET_API_P50_S)}]" if kind == "photo" else "")
                )
        if "worker_first_verdict_s" in api:
            lines.append(f"API worker: first verdict {api['worker_first_verdict_s']:.1f} s after the worker started (models loaded on the way)")
    return "\n".join(lines)


def run_bench(
    *,
    files: list[Path],
    media_dir: Path,
    profile: str = "default",
    repeat: int = 5,
    naive_repeat: int = 2,
    naive: bool = True,
    cold: bool = True,
    cold_runs: int = 3,
    api: bool = False,
    api_uploads: int = 20,
    api_port: int = 8300,
    out: Path | None = None,
    checkpoint: str | None = None,
    threads: int = 0,
    runtime: str = "auto",
    echo=print,
) -> dict:
    """Run the bench, print the table through `echo`, write the JSON to `out`; return the report."""
    import torch

    from . import load_detector
    from .detector import threads_set

    if threads:
        threads_set(threads)
    media = make_media(media_dir, profile) if profile else {}
    named = list(media.items()) + [(Path(p).stem, Path(p)) for p in files]
    detector = load_detector(checkpoint, device="cpu", runtime=runtime)
    baseline = NaivePipeline() if naive else None
    options = DetectorOptions()
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), OpenCV {cv2.__version__}",
        "model": detector.version,
        "runtime": detector.runtimes,
        "options": {"max_frames": options.max_frames, "heatmaps": options.heatmaps},
        "targets": {**TARGETS_S, "speedup_720p": TARGET_SPEEDUP_720P, "peak_mb": TARGET_PEAK_MB, "api_p50_s": TARGET_API_P50_S},
        "files": [],
    }
    for name, path in named:
        echo(f"timing {name} ...")
        engine, result = time_engine(detector, path, options, repeat)
        entry = FileReport(
            name=name, path=str(path), kind=result.media_type, width=result.width, height=result.height,
            duration=result.duration, engine=engine, frames=len(result.frames), faces=result.faces_count,
            verdict=result.verdict, fake_probability=result.fake_probability,
        )
        if baseline is not None:
            entry.naive, _ = time_naive(baseline, path, max(1, naive_repeat))
            entry.speedup = round(entry.naive["total"]["median"] / engine["total"]["median"], 2)
        entry.target_s = _target_for(name, entry.kind, entry.width, entry.height, entry.duration)
        report["files"].append(entry.__dict__)
    if cold:
        echo("cold start and peak memory (a fresh process) ...")
        report["cold"] = cold_start([path for _, path in named], checkpoint, runs=cold_runs, runtime=runtime)
    if api:
        photo = next((p for _, p in named if p.suffix.lower() in (".jpg", ".jpeg", ".png")), None)
        video = next((p for _, p in named if p.suffix.lower() == ".mp4"), None)
        if photo is None:
            raise ValueError("the API section needs a photo among the files")
        echo(f"API: {api_uploads} uploads each on port {api_port} ...")
        report["api"] = api_latency(photo, video, uploads=api_uploads, port=api_port, runtime=runtime)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    echo(format_report(report))
    if out is not None:
        echo(f"written to {out}")
    return report


if __name__ == "__main__":  # the cold-start child: python -m ml.bench --child STARTED [--runtime R] [--checkpoint CKPT] FILE...
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        rest = sys.argv[3:]
        chosen, runtime = None, "auto"
        if rest[0] == "--runtime":
            runtime, rest = rest[1], rest[2:]
        if rest[0] == "--checkpoint":
            chosen, rest = rest[1], rest[2:]
        _child(rest, float(sys.argv[2]), chosen, runtime)
    else:
        sys.exit("use `python -m ml bench`")
