"""Datasets as lists of labelled files, group-wise splits, and a cache of face crops.

A dataset is a list of `Sample`s: a file, its label (0 real, 1 fake) and its group, the id of
the person or source video it comes from. Splits are made by group, never by file, so frames or
fakes of one source never sit on both sides of a validation split.

Two layouts are read:

- A folder dataset: `ROOT/real/**` and `ROOT/fake/**` (images, face crops or videos), or an
  `ROOT/index.csv` with columns `file,label,group` (`source_video` is accepted for `group`, as
  DFDC face crops name it; without either, a file's group is its stem). `group_by` names another
  column to split on (`made_from` for the inswapper swaps, whose `group` is each file's own stem).
- FaceForensics++ as its download script lays it out, with the official split files (lists of
  `[target, source]` id pairs). See `ffpp_samples`.

A validation split holds both classes whenever the data does (`group_split`): an AUC over one
class means nothing, and no epoch could be kept or calibrated on it.

`prepare_crops` turns any list of samples into JPEG face crops on disk, once, so training epochs
never decode video or search for faces.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from .errors import MediaError
from .faces import DEFAULT_MARGIN, crop_face, find_faces
from .video import read_frames

logger = logging.getLogger(__name__)

LABELS = {"real": 0, "fake": 1}
LABEL_NAMES = {value: name for name, value in LABELS.items()}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".webm", ".mkv"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
INDEX_FILE = "index.csv"
GROUP_COLUMNS = ("group", "source_video")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 real, 1 fake
    group: str  # identity / source-video id; splits never cut through a group

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))


def parse_label(value: str | int) -> int:
    """0 or 1 from "real"/"fake" (any case) or "0"/"1"."""
    text = str(value).strip().lower()
    if text in LABELS:
        return LABELS[text]
    if text in ("0", "1"):
        return int(text)
    raise ValueError(f"unknown label {value!r}: use real/fake or 0/1")


# --- folder datasets -------------------------------------------------------------------------


def folder_samples(root: str | Path, *, group_by: str | None = None) -> list[Sample]:
    """The samples of a folder dataset: `root/index.csv` if present, else `root/{real,fake}/**`.

    `group_by`: the index column that holds the groups (default: `group`, else `source_video`).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    if (root / INDEX_FILE).is_file():
        return read_index(root / INDEX_FILE, group_by=group_by)
    if group_by:
        raise ValueError(f"{root}: --group-by {group_by} needs an {INDEX_FILE} with that column; this folder has none")
    if not (root / "real").is_dir() and not (root / "fake").is_dir():
        raise ValueError(
            f"{root}: not a folder dataset: expected {INDEX_FILE} (file,label,group) "
            "or real/ and fake/ subfolders"
        )
    samples = [
        Sample(path, label, path.stem)
        for name, label in LABELS.items()
        for path in _media_files(root / name)
    ]
    if not samples:
        raise ValueError(f"{root}: no images or videos under real/ or fake/")
    return sorted(samples, key=lambda s: str(s.path))


def _media_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def read_index(index: str | Path, *, group_by: str | None = None) -> list[Sample]:
    """Samples from an index CSV; its `file` paths are relative to the CSV's folder.

    The group is read from the `group_by` column (default: `group`, else `source_video`); a row
    with none there is its own group (the file's stem). Listed files that do not exist are
    skipped with a warning that counts them.
    """
    index = Path(index)
    root = index.parent
    with index.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "file" not in columns or "label" not in columns:
            raise ValueError(f"{index}: needs the columns file,label[,group]; found {','.join(columns)}")
        if group_by and group_by not in columns:
            raise ValueError(f"{index}: no column {group_by!r} to group by; its columns are {','.join(columns)}")
        group_column = group_by or next((c for c in GROUP_COLUMNS if c in columns), None)
        samples, missing = [], []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                label = parse_label(row["label"])
            except ValueError as exc:
                raise ValueError(f"{index}, line {line}: {exc}") from None
            path = root / row["file"]
            if not path.is_file():
                missing.append(row["file"])
                continue
            group = row.get(group_column, "") if group_column else ""
            samples.append(Sample(path, label, group or path.stem))
    if missing:
        logger.warning("%s: %d listed files not found, skipped (first: %s)", index, len(missing), missing[0])
    if not samples:
        raise ValueError(f"{index}: lists no existing files")
    return sorted(samples, key=lambda s: str(s.path))


def write_index(samples: Sequence[Sample], index: str | Path, *, sources: Sequence[Path] | None = None) -> Path:
    """Write `file,label,group` (paths relative to the CSV's folder, labels as real/fake).

    `sources`, one per sample, adds a `source` column: the file a crop was cut from.
    """
    index = Path(index)
    root = index.parent
    tmp = index.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "group"] + (["source"] if sources is not None else []))
        for i, s in enumerate(samples):
            row = [s.path.relative_to(root).as_posix(), LABEL_NAMES[s.label], s.group]
            writer.writerow(row + ([str(sources[i])] if sources is not None else []))
    tmp.replace(index)
    return index


def group_split(
    samples: Sequence[Sample], *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """(train, val) with round(val_fraction x groups) whole groups in val (at least one).

    Groups are ordered by a hash of (seed, group) and the first ones go to validation: the same
    on every machine and Python version, and adding groups to a dataset moves no other group.
    When the samples hold both classes but those first groups hold one, the next groups in that
    order that hold the missing class are added to validation (so a split that already held
    both is never changed); ValueError when that would leave training none of it.
    """
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1 (exclusive)")
    groups = sorted({s.group for s in samples})
    if len(groups) < 2:
        raise ValueError(f"cannot split {len(groups)} group(s): need at least two")
    n_val = min(len(groups) - 1, max(1, round(len(groups) * val_fraction)))
    ranked = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    val_groups = _with_both_classes(samples, ranked, set(ranked[:n_val]))
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


def _with_both_classes(samples: Sequence[Sample], ranked: list[str], val_groups: set[str]) -> set[str]:
    """`val_groups` plus, for each class the samples hold and those groups lack, the first
    group in `ranked` order that holds it, as long as another group keeps it for training."""
    labels_of: dict[str, set[int]] = {}
    for s in samples:
        labels_of.setdefault(s.group, set()).add(s.label)
    val_groups = set(val_groups)
    for label in sorted(set().union(*labels_of.values())):
        if any(label in labels_of[g] for g in val_groups):
            continue
        holders = [g for g in ranked if label in labels_of[g]]
        if len(holders) < 2:
            raise ValueError(
                f"cannot make a validation split with both real and fake files: only {len(holders)} group "
                f"holds {LABEL_NAMES[label]} files, and training needs one too"
            )
        val_groups.add(holders[0])
    return val_groups


def class_counts(samples: Iterable[Sample]) -> tuple[int, int]:
    """(real files, fake files)."""
    labels = [s.label for s in samples]
    return labels.count(0), labels.count(1)


def require_both_classes(
    samples: Sequence[Sample], *, where: str, why: str = "training and validation need both real and fake files"
) -> None:
    """ValueError, saying which class is missing, unless `samples` hold real and fake files."""
    real, fake = class_counts(samples)
    if real and fake:
        return
    only = "real" if real else "fake"
    raise ValueError(f"{where} holds only {only} files ({real + fake}): {why}")


def require_data_root(data_root: str | Path, *, needed_for: str) -> Path:
    """The shared data folder; ValueError saying where it was looked for (a relative path, such
    as the default ../shared/data, is read from the current folder) and how to name another."""
    root = Path(data_root)
    if root.is_dir():
        return root
    raise ValueError(
        f"no data folder at {data_root} (looked in {root.resolve()}), needed {needed_for}: pass --data-root PATH, "
        "the folder holding the shared data (dfdc_faces, faceswap_inswapper, real_faces, videos); "
        "a relative path is read from the current folder"
    )


# --- FaceForensics++ -------------------------------------------------------------------------

FFPP_COMPRESSIONS = ("raw", "c23", "c40")
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_DEFAULT_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
DFD_METHOD = "DeepFakeDetection"


def is_ffpp_root(path: str | Path) -> bool:
    """Whether `path` looks like a FaceForensics++ download (original/manipulated sequences)."""
    path = Path(path)
    return (path / "original_sequences" / "youtube").is_dir() or (path / "manipulated_sequences").is_dir()


def read_ffpp_split(path: str | Path) -> list[tuple[str, str]]:
    """The `[target, source]` id pairs of an official FF++ split file (train/val/test.json)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: split file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(i, (str, int)) for i in pair)
        for pair in data
    ):
        raise ValueError(f"{path}: expected a JSON list of [target, source] id pairs")
    return [(_ffpp_id(t), _ffpp_id(s)) for t, s in data]


def _ffpp_id(value: str | int) -> str:
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text


def _find_split_file(root: Path, split: str) -> Path:
    for candidate in (root / "splits" / f"{split}.json", root / f"{split}.json"):
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"{root}: no split file {split}.json in splits/ or the root; pass split_file= "
        "(the official files are in the FaceForensics repository, dataset/splits)"
    )


def ffpp_samples(
    root: str | Path,
    *,
    split: str = "test",
    compression: str = "c23",
    methods: Sequence[str] = FFPP_DEFAULT_METHODS,
    split_file: str | Path | None = None,
) -> list[Sample]:
    """The videos of one official FF++ split.

    Layout: `original_sequences/youtube/<comp>/videos/NNN.mp4` and
    `manipulated_sequences/<Method>/<comp>/videos/TTT_SSS.mp4`. For each split pair (T, S) the
    originals T and S are real, and `T_S` and `S_T` of every method are fake (the official
    convention). The group is the sorted pair key, so a pair's originals and fakes stay together.
    DeepFakeDetection is not in the official splits: read it with `dfd_samples`. Listed videos
    that are missing are skipped with a warning that counts them.
    """
    root = Path(root)
    if compression not in FFPP_COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; choose from {', '.join(FFPP_COMPRESSIONS)}")
    if DFD_METHOD in methods:
        raise ValueError("DeepFakeDetection has no official split; read it with dfd_samples()")
    unknown = [m for m in methods if m not in FFPP_METHODS]
    if unknown:
        raise ValueError(f"unknown FF++ method(s) {', '.join(unknown)}; choose from {', '.join(FFPP_METHODS)}")
    pairs = read_ffpp_split(split_file if split_file is not None else _find_split_file(root, split))
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    wanted: dict[Path, Sample] = {}
    for target, source in pairs:
        group = "_".join(sorted((target, source)))
        for vid in (target, source):
            path = originals / f"{vid}.mp4"
            wanted[path] = Sample(path, LABELS["real"], group)
        for method in methods:
            videos = root / "manipulated_sequences" / method / compression / "videos"
            for name in (f"{target}_{source}", f"{source}_{target}"):
                path = videos / f"{name}.mp4"
                wanted[path] = Sample(path, LABELS["fake"], group)
    return _existing(wanted.values(), f"{root} ({split}, {compression})")


def dfd_samples(root: str | Path, *, compression: str = "c23") -> list[Sample]:
    """Google's DeepFakeDetection videos shipped with FF++, for cross-dataset evaluation.

    Originals: `original_sequences/actors/<comp>/videos/AA__scene.mp4`; fakes:
    `manipulated_sequences/DeepFakeDetection/<comp>/videos/AA_BB__scene__id.mp4`. There is no
    official split; the group is the leading actor id (AA), so a group split keeps an actor's
    real and fake scenes together.
    """
    root = Path(root)
    if compression not in FFPP_COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; choose from {', '.join(FFPP_COMPRESSIONS)}")
    folders = {
        LABELS["real"]: root / "original_sequences" / "actors" / compression / "videos",
        LABELS["fake"]: root / "manipulated_sequences" / DFD_METHOD / compression / "videos",
    }
    samples = [
        Sample(path, label, path.stem.split("_")[0])
        for label, folder in folders.items()
        if folder.is_dir()
        for path in sorted(folder.glob("*.mp4"))
    ]
    if not samples:
        raise ValueError(f"{root}: no DeepFakeDetection or actor videos for {compression}")
    return samples


def _existing(samples: Iterable[Sample], where: str) -> list[Sample]:
    samples = list(samples)
    found = [s for s in samples if s.path.is_file()]
    missing = len(samples) - len(found)
    if missing:
        first = next(s.path for s in samples if not s.path.is_file())
        logger.warning("%s: %d of %d listed videos not found, skipped (first: %s)", where, missing, len(samples), first)
    if not found:
        raise ValueError(f"{where}: none of the {len(samples)} listed videos exist")
    return sorted(found, key=lambda s: str(s.path))


# --- cached face crops -----------------------------------------------------------------------

MANIFEST_FILE = "manifest.json"
CACHE_VERSION = 1
JPEG_QUALITY = 95


def prepare_crops(
    samples: Sequence[Sample],
    out_dir: str | Path,
    *,
    frames_per_video: int = 8,
    size: int = 224,
    margin: float = DEFAULT_MARGIN,
    shift: float = 0.0,
    max_faces: int = 1,
) -> list[Sample]:
    """Face crops of `samples` as JPEGs under `out_dir`, with `out_dir/index.csv`; the crops' samples.

    Videos give `frames_per_video` evenly spaced frames (`ml.video.sample_frames`), images one;
    each frame gives its `max_faces` largest Haar faces, cut as the detector cuts them
    (`ml.faces.crop_face` with `margin` and `shift`). Crops keep their file's label and group, so
    `folder_samples(out_dir)` and `group_split` work on them.

    The work is done once: `out_dir/manifest.json` records a key of the inputs (paths, labels,
    groups, sizes, modification times) and the parameters, and a later call with the same key
    returns the cached crops. Files without a face and unreadable files are counted, logged and
    listed in the manifest (`no_face`, `unreadable`); they never stop the run.
    """
    from tqdm import tqdm  # the [train] extra: the site's install has none

    if frames_per_video < 1 or size < 1 or max_faces < 1 or margin <= 0:
        raise ValueError("frames_per_video, size, max_faces and margin must be positive")
    out_dir = Path(out_dir)
    params = {
        "version": CACHE_VERSION,
        "frames_per_video": frames_per_video,
        "size": size,
        "margin": margin,
        "shift": shift,
        "max_faces": max_faces,
    }
    key = _cache_key(samples, params)
    cached = _cached_crops(out_dir, key)
    if cached is not None:
        logger.info("%s: reusing %d cached face crops", out_dir, len(cached))
        return cached

    _start_build(out_dir, key)
    crops: list[Sample] = []
    sources: list[Path] = []
    no_face: list[str] = []
    unreadable: list[str] = []
    for sample in tqdm(samples, desc="face crops", unit="file"):
        try:
            frames = read_frames(sample.path, frames_per_video)
        except MediaError as exc:
            logger.warning("skipped unreadable file: %s", exc)
            unreadable.append(str(sample.path))
            continue
        stem = _crop_stem(sample.path)
        folder = out_dir / LABEL_NAMES[sample.label]
        folder.mkdir(parents=True, exist_ok=True)
        found = 0
        for index, image in frames:
            for k, box in enumerate(find_faces(image, max_faces=max_faces)):
                crop = crop_face(image, box, size=size, margin=margin, shift=shift)
                path = folder / f"{stem}_f{index:05d}_{k}.jpg"
                if not cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                    raise OSError(f"could not write {path}")
                crops.append(Sample(path, sample.label, sample.group))
                sources.append(sample.path)
                found += 1
        if not found:
            no_face.append(str(sample.path))

    write_index(crops, out_dir / INDEX_FILE, sources=sources)
    manifest = {
        "key": key,
        "complete": True,  # written last: the cache is usable only when this is set
        "params": params,
        "files": len(samples),
        "crops": len(crops),
        "no_face": no_face,
        "unreadable": unreadable,
    }
    _write_manifest(out_dir, manifest)
    logger.log(
        logging.WARNING if no_face or unreadable else logging.INFO,
        "%s: %d crops from %d files; %d without a face, %d unreadable (listed in %s)",
        out_dir, len(crops), len(samples), len(no_face), len(unreadable), MANIFEST_FILE,
    )
    return sorted(crops, key=lambda s: str(s.path))


def read_manifest(out_dir: str | Path) -> dict:
    """What `prepare_crops` recorded: counts and the files with no face or unreadable."""
    return json.loads((Path(out_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))


def _cache_key(samples: Sequence[Sample], params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for s in samples:
        try:
            st = s.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"{s.path}\0{s.label}\0{s.group}\0{stamp}\n".encode())
    return digest.hexdigest()


def _cached_crops(out_dir: Path, key: str) -> list[Sample] | None:
    try:
        manifest = read_manifest(out_dir)
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key or not manifest.get("complete") or not (out_dir / INDEX_FILE).is_file():
        return None
    if manifest.get("crops", 0) == 0:
        return []
    crops = read_index(out_dir / INDEX_FILE)
    return crops if len(crops) == manifest["crops"] else None


def _start_build(out_dir: Path, key: str) -> None:
    """Clear an earlier run's crops and mark the folder as being built.

    Only files that an earlier `prepare_crops` listed are deleted; a folder holding an index.csv
    that this function did not write is refused rather than overwritten.
    """
    manifest = out_dir / MANIFEST_FILE
    index = out_dir / INDEX_FILE
    if index.is_file() and not manifest.is_file():
        raise ValueError(f"{out_dir} holds an {INDEX_FILE} that prepare_crops did not write; use another folder")
    if index.is_file():
        try:
            old = read_index(index)
        except ValueError:
            old = []
        for sample in old:
            sample.path.unlink(missing_ok=True)
        index.unlink()
    _write_manifest(out_dir, {"key": key, "complete": False})


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(out_dir / MANIFEST_FILE)


def _crop_stem(path: Path) -> str:
    """A crop file name prefix unique to its source: the stem plus a short hash of the path."""
    return f"{path.stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
