"""Command line: `python -m ml predict|train|evaluate|eval-cross|compare-recipes|train-synthetic|...`
(see `--help`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from .errors import MlError
from .options import DetectorOptions
from .recipes import RECIPES, Budget
from .evaluate import SPLITS
from .model import ARCHS
from .sources import SOURCE_NAMES
from .training_data import FAKES_MODES, FRAMING_ON
from .verify import VERIFIERS

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def _checked_device(name: str | None) -> str | None:
    """`--device` as given, after making sure torch can use it (ValueError otherwise, instead of
    torch's traceback at the first tensor sent there)."""
    if not name or name == "cpu":
        return name
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device torch knows; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ValueError(
                f"--device {name}: torch sees no CUDA GPU here; leave --device out (a GPU is used when there is one) "
                "or pass --device cpu"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: torch sees {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return name


def _detector(args):
    from .detector import load_detector

    return load_detector(
        args.checkpoint, device=_checked_device(args.device), synthetic=False if args.no_synthetic else None,
        runtime=args.runtime,
    )


def _warn_if_uncalibrated(detector, args) -> None:
    from .evaluate import uncalibrated_warning

    line = uncalibrated_warning(detector.spec, args.checkpoint or "the installed model")
    if line:
        print(f"warning: {line}", file=sys.stderr)


def _options(args, **overrides):
    return DetectorOptions(
        max_frames=args.frames,
        max_faces=args.max_faces,
        max_photo_faces=args.max_photo_faces,
        verifier=args.verifier,
        **overrides,
    )


def cmd_predict(args) -> int:
    detector = _detector(args)
    _warn_if_uncalibrated(detector, args)
    options = _options(args, heatmaps=0, frame_image_size=0, thumbnail_size=0)
    status = 0
    for name in args.files:
        try:
            result = detector.analyze(name, options)
        except MlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if args.json:  # one object per file, whatever became of it
                print(json.dumps({"file": name, "error": str(exc)}), flush=True)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json.dumps({"file": name, **result.to_json_dict()}), flush=True)
        else:
            probability = "-" if result.fake_probability is None else f"{result.fake_probability:.3f}"
            held = f" ({result.uncertain_reason})" if result.uncertain_reason else ""
            print(
                f"{name}: {result.verdict}{held}  fake probability {probability}  "
                f"({len(result.frames)} frames, {result.faces_count} faces)",
                flush=True,
            )
    return status


def cmd_benchmark(args) -> int:
    """Median time per stage over repeated analyses, and the process's peak memory."""
    import resource
    import statistics
    import time

    import torch

    detector = _detector(args)
    options = _options(args, heatmaps=args.heatmaps)
    for name in args.files:
        detector.analyze(name, options)  # warm-up
        runs, walls = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = detector.analyze(name, options)
            walls.append(time.perf_counter() - started)
            runs.append(result.timings)
        stages = "  ".join(f"{k} {statistics.median(r[k] for r in runs) * 1000:.0f} ms" for k in runs[0])
        faces_per_s = result.faces_count / statistics.median(r["classify"] for r in runs)
        print(
            f"{name}: {statistics.median(walls):.3f} s median of {args.repeat}  ({stages})  "
            f"{len(result.frames)} frames, {result.faces_count} faces, classify {faces_per_s:.0f} faces/s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak_mb:.0f} MB, torch threads {torch.get_num_threads()}")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    run_bench(
        files=[Path(f) for f in args.files],
        media_dir=Path(args.media_dir),
        profile="" if args.no_media else args.profile,
        repeat=args.repeat,
        naive_repeat=args.naive_repeat,
        naive=not args.no_naive,
        cold=not args.no_cold,
        cold_runs=args.cold_runs,
        api=args.api,
        api_uploads=args.api_uploads,
        api_port=args.api_port,
        out=Path(args.out) if args.out else None,
        checkpoint=args.checkpoint,
        threads=args.threads,
        runtime=args.runtime,
    )
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (`kill`, a job scheduler's stop) taken as Ctrl-C is, so that a training run says
    what it saved either way."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_train(args) -> int:
    from .train import TrainConfig, TrainingInterrupted, run_summary, train

    pretrained: bool | str = args.pretrained
    if pretrained in ("imagenet", "yes"):
        pretrained = True
    elif pretrained in ("none", "no"):
        pretrained = False
    if not args.data and not args.source:
        raise ValueError("give a DATA folder or at least one --source")
    config = TrainConfig(
        data=args.data or "",
        sources=tuple(args.source),
        data_root=args.data_root,
        sources_cache=args.sources_cache,
        group_by=args.group_by or "",
        sbi_landmarks=args.sbi_landmarks,
        init=args.init or "",
        calibrate=not args.no_calibrate,
        framing_consistency=args.framing_consistency,
        framing_on=args.framing_on,
        shared_copies=args.shared_copies,
        out=args.out,
        arch=args.arch,
        pretrained=pretrained,
        fakes=args.fakes,
        extra_real=tuple(args.extra_real),
        cropped=args.cropped,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        input_size=args.input_size,
        val_fraction=args.val_fraction,
        max_train=args.max_train,
        max_extra=args.max_extra,
        seed=args.seed,
        workers=args.workers,
        device=_checked_device(args.device),
    )
    try:
        with _sigterm_as_interrupt():
            best = train(config, restart=args.restart)
    except TrainingInterrupted as exc:
        print(exc, file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in run_summary(best, calibrate=config.calibrate):
        print(line)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import EVALUATE_OPTIONS, evaluate, format_summary, warnings_for

    options = replace(
        EVALUATE_OPTIONS,
        max_frames=args.frames,
        max_faces=args.max_faces,
        max_photo_faces=args.max_photo_faces,
        verifier=args.verifier,
    )
    detector = _detector(args)
    _warn_if_uncalibrated(detector, args)
    metrics = evaluate(
        detector, args.data, args.out, cropped=args.cropped, split=args.split, options=options, group_by=args.group_by
    )
    print(format_summary(metrics))
    print(f"written to {args.out}/ (metrics.json, predictions.csv, confusion_matrix.png, roc.png)")
    for line in warnings_for(metrics):
        print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_check_faces(args) -> int:
    from .datasets import require_data_root
    from .face_check import measure, read_boxes

    require_data_root(args.data_root, needed_for="for the files of the boxes' CSV")
    report = measure(Path(args.data_root), read_boxes(Path(args.boxes)), tuple(args.verifier or VERIFIERS))
    print(f"{'verifier':<10} {'kept':>5} {'not faces kept':>15} {'precision':>9} {'recall':>7} {'ms/box':>7}")
    for name, r in report.items():
        print(f"{name:<10} {r['kept']:>5} {r['kept_not_faces']:>15} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['ms_per_box']:>7.1f}")
    print(f"{report[next(iter(report))]['boxes']} labelled boxes, {report[next(iter(report))]['faces']} of them faces")
    if args.search:
        from .face_check import search_recall
        from .faces import FaceSearch

        boxes = read_boxes(Path(args.boxes))
        print(f"\n{'search':<8} {'faces found':>11} {'extra':>5} {'proposed':>8} {'search ms':>9} {'verify ms':>9}  missed")
        for step, neighbours in args.search:
            r = search_recall(Path(args.data_root), boxes, FaceSearch(scale_factor=step, min_neighbors=neighbours))
            missed = ", ".join(f"{Path(m.file).name}:{m.frame}" for m in r["missed"][:6])
            print(
                f"{step:g}:{neighbours:<4} {r['found']:>5}/{r['faces']:<5} {r['extra']:>5} {r['proposed']:>8} "
                f"{r['search_ms_per_frame']:>9.1f} {r['verify_ms_per_frame']:>9.1f}  {missed}"
            )
        print("(a search of the labelled frames, its boxes confirmed by BlazeFace; ms per frame)")
    return 0


def cmd_check_framing(args) -> int:
    from .datasets import require_data_root
    from .face_check import FRAMING_MOVES, framing_sensitivity, read_boxes

    require_data_root(args.data_root, needed_for="for the files of the boxes' CSV")
    report = framing_sensitivity(_detector(args), Path(args.data_root), read_boxes(Path(args.boxes)))
    print(f"{'faces':<6} {'n':>4} {'median':>7} {'p90':>6} {'max':>6} {'band changed':>13}  verdicts at the box")
    for group, r in report.items():
        print(
            f"{group:<6} {r['faces']:>4} {r['median_change']:>7.3f} {r['p90_change']:>6.3f} {r['max_change']:>6.3f} "
            f"{r['band_changed']:>6} ({r['band_changed'] / max(1, r['faces']):>4.0%})  "
            + ", ".join(f"{k} {v}" for k, v in r["verdicts_at_box"].items())
        )
    print(f"(the largest change of a face's fake probability over {len(FRAMING_MOVES)} moves of its box by 4 % or a 6 % scale)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


def cmd_check_degradation(args) -> int:
    import tempfile

    from .datasets import MEDIA_SUFFIXES
    from .degradation import DEGRADATIONS, EDITED, degradation_report, format_summary

    files = []
    for given in map(Path, args.files):
        files += sorted(p for p in given.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES) if given.is_dir() else [given]
    if not files:
        raise SystemExit("check-degradation: no photo or video among the files given")
    with tempfile.TemporaryDirectory(prefix="degraded-") as folder:
        report = degradation_report(_detector(args), files, Path(folder), EDITED if args.edits else DEGRADATIONS)
    print(format_summary(report))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


def _search_setting(text: str) -> tuple[float, int]:
    """`1.2:3` -> (1.2, 3): a Haar scale step and a minimum of neighbours."""
    try:
        step, neighbours = text.split(":")
        setting = float(step), int(neighbours)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected STEP:NEIGHBOURS, like 1.2:3") from None
    if setting[0] <= 1.0 or setting[1] < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the step must be over 1 and the neighbours 0 or more")
    return setting


def cmd_check_search(args) -> int:
    from .face_check import compare_search

    rows = compare_search(_detector(args), [Path(f) for f in args.files], every=args.every, frames=args.frames)
    print(f"{'file':<36} {'faces':>5} {'kept':>5} {'extra':>5} {'full s':>7} {'sparse s':>8}  {'score full':>10} {'sparse':>7}  verdicts")
    for r in rows:
        scores = [f"{s:.3f}" if s is not None else "-" for s in (r["score_full"], r["score_sparse"])]
        same = "same" if r["verdict_full"] == r["verdict_sparse"] else "DIFFER"
        print(
            f"{r['file'][:36]:<36} {r['faces_full']:>5} {r['faces_kept']:>5} {r['faces_extra']:>5} "
            f"{r['seconds_full']:>7.2f} {r['seconds_sparse']:>8.2f}  {scores[0]:>10} {scores[1]:>7}  "
            f"{r['verdict_full']} / {r['verdict_sparse']} {same}"
        )
    faces = sum(r["faces_full"] for r in rows)
    kept = sum(r["faces_kept"] for r in rows)
    full_s = sum(r["seconds_full"] for r in rows)
    sparse_s = sum(r["seconds_sparse"] for r in rows)
    differ = sum(r["verdict_full"] != r["verdict_sparse"] for r in rows)
    deltas = [abs(r["score_full"] - r["score_sparse"]) for r in rows if None not in (r["score_full"], r["score_sparse"])]
    print(
        f"{len(rows)} videos: {kept}/{faces} faces kept ({kept / max(1, faces):.1%}), "
        f"{sum(r['faces_extra'] for r in rows)} extra; face search {full_s:.1f} s -> {sparse_s:.1f} s "
        f"({full_s / max(1e-9, sparse_s):.1f}x); verdicts differ on {differ}; "
        f"largest file-score change {max(deltas, default=0.0):.3f}"
    )
    return 0


def cmd_precision_faces(args) -> int:
    import numpy as np

    from .detector import load_detector
    from .precision_check import cut_faces

    # the reference is torch in fp32 on the CPU, as the GPU is measured against it
    faces = cut_faces(load_detector(args.checkpoint, device="cpu", runtime="torch"), [Path(f) for f in args.folders], per_source=args.per_source)
    np.savez_compressed(args.out, **faces)
    print(f"{len(faces['sources'])} faces from {len(set(faces['sources']))} folders written to {args.out}")
    return 0


def cmd_precision_check(args) -> int:
    import numpy as np

    from .detector import load_detector
    from .precision_check import compare

    detector = load_detector(args.checkpoint, device=_checked_device(args.device), runtime="torch")
    with np.load(args.faces) as data:
        faces = dict(data)
    report = compare(detector, faces, repeats=args.repeats)
    print(f"{detector.device}: {len(faces['sources'])} faces, each score against the CPU's fp32 score")
    print(f"{'precision':<9} {'swap: largest':>13} {'mean':>9} {'verdicts':>8}  {'synthetic: largest':>18} {'mean':>9} {'verdicts':>8}  "
          f"{'faces/s classify':>16} {'synthetic':>9} {'model alone':>11}")
    for name, row in report.items():
        a, b = row["swap"], row["synthetic"]
        print(f"{name:<9} {a['largest_change']:>13.6f} {a['mean_change']:>9.6f} {a['verdicts_changed']:>8}  "
              f"{b['largest_change']:>18.6f} {b['mean_change']:>9.6f} {b['verdicts_changed']:>8}  "
              f"{row['faces_per_s_classify']:>16,.0f} {row['faces_per_s_synthetic']:>9,.0f} {row['faces_per_s_model_alone']:>11,.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def cmd_calibrate(args) -> int:
    from .train import calibrate_on_sources  # which checks --data-root where a source needs preparing

    report = calibrate_on_sources(
        Path(args.checkpoint), Path(args.out), sources=tuple(args.source),
        data_root=args.data_root, sources_cache=args.sources_cache,
    )
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_cross(args) -> int:
    from .cross import cross_source_report, write_report
    from .datasets import require_data_root

    require_data_root(args.data_root, needed_for="for the sources and videos it scores")
    detector = _detector(args)
    rows = cross_source_report(detector, args.data_root, sources_cache=args.sources_cache, frames=args.frames)
    print(write_report(rows, detector, args.out))
    return 0


def cmd_compare_recipes(args) -> int:
    from .datasets import require_data_root
    from .recipes import compare_recipes

    require_data_root(args.data_root, needed_for="for the sources it trains on and the videos it scores")
    budget = Budget(init=args.init, epochs=args.epochs, lr=args.lr, max_per_source=args.max_per_source)
    names = args.recipe or list(RECIPES)
    print(compare_recipes(names, budget, out=args.out, data_root=args.data_root, sources_cache=args.sources_cache, frames=args.frames))
    return 0


def cmd_export(args) -> int:
    """Copy a checkpoint for shipping: fp16 weights, an optional new threshold or version."""
    from .model import load_checkpoint, save_checkpoint

    model, spec = load_checkpoint(args.source, device="cpu")
    changes = {k: v for k, v in (("threshold", args.threshold), ("version", args.version)) if v is not None}
    path = save_checkpoint(model, args.target, replace(spec, **changes), half=not args.fp32)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB ({'fp32' if args.fp32 else 'fp16'} weights)")
    return 0


def cmd_export_onnx(args) -> int:
    """Write each checkpoint's ONNX export beside it (ml/export.py), for the worker's runtime."""
    from .detector import DEFAULT_CHECKPOINT
    from .export import export_onnx
    from .synthetic_spec import DEFAULT_SYNTHETIC_CHECKPOINT

    for checkpoint in args.checkpoints or [DEFAULT_CHECKPOINT, DEFAULT_SYNTHETIC_CHECKPOINT]:
        path = export_onnx(checkpoint)
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, scores as {Path(checkpoint).name} does")
    return 0


def cmd_prepare(args) -> int:
    from .datasets import MANIFEST_FILE, ffpp_samples, folder_samples, is_ffpp_root, prepare_crops, require_both_classes

    root = Path(args.data)
    if is_ffpp_root(root):
        if args.group_by:
            raise ValueError(f"{root}: --group-by is for folder datasets; FaceForensics++ groups are its split's pairs")
        samples = ffpp_samples(root, split=args.split)
    else:
        samples = folder_samples(root, group_by=args.group_by)
    require_both_classes(samples, where=str(root))
    crops = prepare_crops(samples, args.out, frames_per_video=args.frames, size=args.size, margin=args.margin)
    require_both_classes(crops, where=f"{args.out} (the files without a face are listed in its {MANIFEST_FILE})")
    print(f"{len(crops)} face crops in {args.out}/ (index.csv)")
    return 0


def cmd_train_synthetic(args) -> int:
    import json

    from .synthetic_train import SyntheticTrainConfig, format_comparison, train_synthetic

    config = SyntheticTrainConfig(
        data=args.data,
        out=args.out,
        extra_real=tuple(args.extra_real),
        views=args.views,
        test_fraction=args.test_fraction,
        folds=args.folds,
        seed=args.seed,
        input_size=args.input_size,
        version=args.version or "",
    )
    path = train_synthetic(config)
    report = json.loads((Path(args.out) / "comparison.json").read_text())
    print(format_comparison(report))
    chosen = report["chosen"]
    print(
        f"chosen: {chosen['features']} (augmented: {chosen['augment']}, L2 {chosen['l2']:g}); "
        f"thresholds real < {report['threshold_real']:.4f} <= uncertain < {report['threshold']:.4f} <= synthetic"
    )
    print(f"checkpoint: {path} ({path.stat().st_size / 1e6:.1f} MB); comparison: {args.out}/comparison.json")
    return 0


def cmd_evaluate_synthetic(args) -> int:
    from .synthetic import load_synthetic_detector
    from .synthetic_eval import evaluate_synthetic, format_metrics

    if args.data is None and not args.real:
        raise ValueError("nothing to evaluate: pass --data and/or --real")
    detector = load_synthetic_detector(args.checkpoint, device=_checked_device(args.device))
    metrics = evaluate_synthetic(
        detector, args.out, data=args.data, real_folders=tuple(args.real), max_per_folder=args.max_per_folder
    )
    print(format_metrics(metrics))
    print(f"written to {args.out}/ (metrics.json, predictions.csv)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description="Deepfake detection engine.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = DetectorOptions()

    def with_model(p):
        p.add_argument("--checkpoint", help="model checkpoint (default: the installed model)")
        p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
        p.add_argument(
            "--no-synthetic", action="store_true",
            help="the face-swap model alone, without the AI-generated-face detector (ml/synthetic.py)",
        )
        p.add_argument(
            "--runtime", default="auto", choices=("auto", "onnx", "torch"),
            help="what scores the faces: the checkpoints' ONNX exports on a CPU (auto, the default, where they match), or torch",
        )

    def with_analysis(p):
        p.add_argument("--frames", type=int, default=defaults.max_frames, help="frames sampled per video")
        p.add_argument("--max-faces", type=int, default=defaults.max_faces, help="largest faces scored per frame of a video")
        p.add_argument("--max-photo-faces", type=int, default=defaults.max_photo_faces, help="largest faces scored in a photo")
        p.add_argument("--verifier", default=defaults.verifier, choices=VERIFIERS, help="how Haar boxes are confirmed")

    p = sub.add_parser("predict", help="analyse images and videos")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    with_analysis(p)
    with_model(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("benchmark", help="time each stage of the analysis of some files")
    p.add_argument("files", nargs="+")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--heatmaps", type=int, default=defaults.heatmaps)
    with_analysis(p)
    with_model(p)
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("bench", help="speed of every stage against a naive pipeline, cold start, memory (ml/bench.py)")
    p.add_argument("files", nargs="*", help="more files to time (e.g. a real 1080p clip)")
    p.add_argument("--media-dir", default="var/bench/media", help="where the generated media are kept")
    p.add_argument("--profile", default="default", choices=("default", "tiny"), help="which media to generate")
    p.add_argument("--no-media", action="store_true", help="time only the files given")
    p.add_argument("--repeat", type=int, default=5, help="timed runs of the engine per file")
    p.add_argument("--naive-repeat", type=int, default=2, help="timed runs of the naive baseline per file")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    p.add_argument("--no-cold", action="store_true", help="skip cold start and peak memory")
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes for the cold start (the median is reported)")
    p.add_argument("--api", action="store_true", help="also upload-to-verdict through gunicorn and one worker")
    p.add_argument("--api-uploads", type=int, default=20)
    p.add_argument("--api-port", type=int, default=8300)
    p.add_argument("--out", default="var/bench/bench.json", help="the JSON report ('' for none)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the installed model)")
    p.add_argument("--threads", type=int, default=0, help="threads of the models and OpenCV (default: their own choice)")
    p.add_argument(
        "--runtime", default="auto", choices=("auto", "onnx", "torch"),
        help="what scores the faces, in the engine, the cold start and the API's worker (ml/onnx_runtime.py)",
    )
    p.set_defaults(func=cmd_bench)

    group_by_help = (
        "the column of DATA/index.csv whose values are the groups a split keeps together "
        "(default: group, else source_video); e.g. made_from for faceswap_inswapper"
    )
    p = sub.add_parser("train", help="fine-tune a classifier on face crops")
    p.add_argument("data", nargs="?", help="folder dataset: DIR/real, DIR/fake, optional index.csv")
    p.add_argument(
        "--out", required=True,
        help="run folder: best.pt, last_state.pt and train_log.jsonl; a run saved there is resumed (same settings only)",
    )
    p.add_argument(
        "--restart", action="store_true",
        help="start over in --out: the run saved there is moved to OUT/replaced-<date-time>/",
    )
    p.add_argument("--group-by", metavar="COLUMN", help=group_by_help)
    p.add_argument("--source", action="append", default=[], choices=SOURCE_NAMES,
                   help="a known source under --data-root instead of DATA (repeatable; ml/sources.py)")
    p.add_argument("--data-root", default="../shared/data", help="where the known sources live")
    p.add_argument("--sources-cache", default="runs/sources", help="cached crops and landmarks of the sources")
    p.add_argument("--sbi-landmarks", action="store_true", help="self-blended fakes with face-mesh masks")
    p.add_argument("--init", help="start from this checkpoint's weights")
    p.add_argument("--no-calibrate", action="store_true", help="skip the temperature and uncertain band")
    p.add_argument(
        "--framing-consistency", type=float, default=0.0, metavar="WEIGHT",
        help="also ask each crop moved by a few %% for the same score, with this weight (0: off)",
    )
    p.add_argument(
        "--framing-on", default="all", choices=FRAMING_ON,
        help="the crops the framing term applies to: all (default) or the real faces only",
    )
    p.add_argument(
        "--shared-copies", type=float, default=0.0, metavar="SHARE",
        help="show this share of training crops as a shared copy of a video shows them: scaled down 1.5-3.5x "
        "and compressed as H.264 (CRF 28-40), instead of the usual blur and JPEG",
    )
    p.add_argument("--arch", default="mobilenet_v2", choices=ARCHS)
    p.add_argument(
        "--pretrained", default="imagenet", help="imagenet (default), none, or a local ImageNet state-dict file"
    )
    p.add_argument("--fakes", default="both", choices=FAKES_MODES, help="where fakes come from")
    p.add_argument("--extra-real", action="append", default=[], help="more real faces (folder), repeatable")
    p.add_argument("--cropped", action="store_true", help="the files are face crops (measure their framing)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of groups held out")
    p.add_argument("--max-train", type=int, default=0, help="train on a seeded subset of this many files")
    p.add_argument("--max-extra", type=int, default=0, help="use a seeded subset of this many extra real faces")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loading processes")
    p.add_argument("--device")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a labelled dataset")
    p.add_argument("data", help="folder dataset or FaceForensics++ root")
    p.add_argument("--out", required=True)
    p.add_argument("--cropped", action="store_true", help="files are face crops: no face search")
    p.add_argument("--split", default="all", choices=SPLITS)
    p.add_argument(
        "--group-by", metavar="COLUMN",
        help=group_by_help + "; val and train take the checkpoint's own",
    )
    with_analysis(p)
    with_model(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("check-faces", help="precision and recall of the face verifiers on labelled Haar boxes")
    p.add_argument("boxes", help="CSV of file,frame,x,y,w,h,label (ml/checks/face_boxes.csv)")
    p.add_argument("--data-root", default="../shared/data", help="where the CSV's files are")
    p.add_argument("--verifier", action="append", choices=VERIFIERS, help="default: all")
    p.add_argument(
        "--search", action="append", type=_search_setting, metavar="STEP:NEIGHBOURS",
        help="also run a face search with this Haar scale step and minimum neighbours (the default is 1.1:5) "
        "over the labelled frames and count the labelled faces it finds; repeatable",
    )
    p.set_defaults(func=cmd_check_faces)

    p = sub.add_parser("check-framing", help="how far a face's fake probability moves when its box moves a little")
    p.add_argument("boxes", help="CSV of file,frame,x,y,w,h,label (ml/checks/face_boxes.csv)")
    p.add_argument("--data-root", default="../shared/data", help="where the CSV's files are")
    p.add_argument("--out", default=None, help="also write the report here (JSON)")
    with_model(p)
    p.set_defaults(func=cmd_check_framing)

    p = sub.add_parser(
        "check-degradation",
        help="verdicts of files re-encoded smaller and more compressed, as shared copies are (ml/degradation.py)",
    )
    p.add_argument("files", nargs="+", help="photos and videos, or folders of them (a file under a folder named fake is a fake)")
    p.add_argument("--out", default=None, help="also write every verdict here (JSON)")
    p.add_argument(
        "--edits", action="store_true",
        help="instead of smaller, blockier copies: copies edited as re-posts are (a blurred fill, mirrored, a caption, a colour filter: ml/edits.py)",
    )
    with_model(p)
    p.set_defaults(func=cmd_check_degradation)

    p = sub.add_parser(
        "check-search", help="what searching every Nth sampled frame keeps of a full search of every frame"
    )
    p.add_argument("files", nargs="+", help="videos (real footage)")
    p.add_argument("--every", type=int, default=defaults.full_search_every, help="full search on every Nth frame")
    p.add_argument("--frames", type=int, default=defaults.max_frames, help="frames sampled per video")
    with_model(p)
    p.set_defaults(func=cmd_check_search)

    p = sub.add_parser("precision-faces", help="cut faces and their CPU scores for precision-check (ml/precision_check.py)")
    p.add_argument("folders", nargs="+", help="folders of images, one source each")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--per-source", type=int, default=10, help="faces per folder")
    p.add_argument("--checkpoint", default=None, help="face-swap checkpoint (default: the installed model)")
    p.set_defaults(func=cmd_precision_faces)

    p = sub.add_parser("precision-check", help="how far scores move on a GPU in fp32, TF32 and fp16 (ml/precision_check.py)")
    p.add_argument("faces", help="the .npz written by precision-faces")
    p.add_argument("--device", default=None, help="default: CUDA when present")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per speed")
    p.add_argument("--json", default=None, help="also write the report here")
    p.add_argument("--checkpoint", default=None, help="face-swap checkpoint (default: the installed model)")
    p.set_defaults(func=cmd_precision_check)

    p = sub.add_parser("calibrate", help="fit the temperature and the uncertain band on held-out crops")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="the calibrated checkpoint to write")
    p.add_argument("--source", action="append", required=True, choices=SOURCE_NAMES)
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--sources-cache", default="runs/sources")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("eval-cross", help="the cross-source benchmark (ml/cross.py): one table")
    p.add_argument("--out", required=True)
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--sources-cache", default="runs/sources")
    p.add_argument("--frames", type=int, default=defaults.max_frames, help="frames sampled per video")
    with_model(p)
    p.set_defaults(func=cmd_eval_cross)

    budget = Budget()
    p = sub.add_parser("compare-recipes", help="fine-tune with each training recipe and benchmark each (ml/recipes.py)")
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", action="append", choices=list(RECIPES), help="default: all, in the table's order")
    p.add_argument("--init", default=budget.init, help="the weights every recipe starts from")
    p.add_argument("--epochs", type=int, default=budget.epochs)
    p.add_argument("--lr", type=float, default=budget.lr)
    p.add_argument("--max-per-source", type=int, default=budget.max_per_source, help="training files drawn per source")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--sources-cache", default="runs/sources")
    p.add_argument("--frames", type=int, default=defaults.max_frames, help="frames sampled per video")
    p.set_defaults(func=cmd_compare_recipes)

    p = sub.add_parser("train-synthetic", help="train the synthetic-face (AI-generated) detector")
    p.add_argument("data", help="folder with real/ (photos) and fake/ (wholly generated faces)")
    p.add_argument("--out", required=True, help="run folder: synthetic.pt and comparison.json")
    p.add_argument("--extra-real", action="append", default=[], help="a folder of more real photos, repeatable")
    p.add_argument("--views", type=int, default=4, help="crops per training image: clean + degraded (default 4)")
    p.add_argument("--test-fraction", type=float, default=0.3, help="share of images held out (default 0.3)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for the choices (default 5)")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", help="version label stored in the checkpoint (default: today's date)")
    p.set_defaults(func=cmd_train_synthetic)

    p = sub.add_parser("evaluate-synthetic", help="metrics of a synthetic-face checkpoint")
    p.add_argument("--data", help="the training folder (real/, fake/): scores its held-out images")
    p.add_argument("--real", action="append", default=[], help="a folder of real photos or videos, repeatable")
    p.add_argument("--max-per-folder", type=int, default=0, help="a seeded subset of this many files per folder")
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", help="synthetic-face checkpoint (default: the installed one)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.set_defaults(func=cmd_evaluate_synthetic)

    p = sub.add_parser("export", help="write a compact copy of a checkpoint (fp16 weights)")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--threshold", type=float, help="a new decision threshold")
    p.add_argument("--version", help="a new version label")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-onnx", help="export checkpoints to ONNX for the CPU worker (ml/export.py)")
    p.add_argument("checkpoints", nargs="*", help="default: the installed face-swap and synthetic-face models")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("prepare", help="cache face crops from videos and images")
    p.add_argument("data", help="FaceForensics++ root or folder dataset")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--frames", type=int, default=8, help="frames sampled per video")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--margin", type=float, default=1.3)
    p.add_argument("--group-by", metavar="COLUMN", help=group_by_help + "; the crops' index keeps it as group")
    p.set_defaults(func=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (MlError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C; a training run's message says what it saved
        print(str(exc) or "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
