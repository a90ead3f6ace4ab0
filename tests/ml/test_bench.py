"""`python -m ml bench` on tiny media: it runs end to end and writes a report a program can read.
No timing is asserted (the numbers depend on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys

from ml.__main__ import main
from ml.bench import STAGES, cold_start, make_media
from ml.model import load_checkpoint


def test_the_bench_makes_its_own_media_once(tmp_path):
    first = make_media(tmp_path, "tiny")
    stamps = {name: path.stat().st_mtime_ns for name, path in first.items()}
    again = make_media(tmp_path, "tiny")
    assert set(first) == {"photo-tiny", "clip-tiny"}
    assert {name: path.stat().st_mtime_ns for name, path in again.items()} == stamps


def test_the_bench_times_every_stage_against_the_naive_pipeline_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = main([
        "bench", "--profile", "tiny", "--media-dir", str(tmp_path / "media"), "--repeat", "1", "--cold-runs", "1",
        "--naive-repeat", "1", "--out", str(out),
    ])
    assert status == 0
    report = json.loads(out.read_text())
    assert [f["name"] for f in report["files"]] == ["photo-tiny", "clip-tiny"]
    for entry in report["files"]:
        assert set(STAGES) | {"total"} <= set(entry["engine"])
        assert {"median", "min", "max", "runs"} <= set(entry["engine"]["total"]) & set(entry["engine"]["cpu"])
        assert {"decode", "faces", "classify", "total"} <= set(entry["naive"])
        assert entry["speedup"] > 0 and entry["faces"] >= 1
    assert report["files"][1]["frames"] == 24
    assert report["cold"]["first_verdict_s"] > 0 and report["cold"]["peak_rss_mb"] > 0
    assert set(report["cold"]["resident_at_end_mb"]) == {"private", "mapped_files", "cuda_libraries"}
    table = capsys.readouterr().out
    assert "photo-tiny" in table and "naive" in table and "cold start" in table and "the process's own" in table


def test_the_cold_start_is_measured_with_the_checkpoint_the_bench_was_given(tmp_path, untrained_checkpoint):
    media = make_media(tmp_path, "tiny")
    report = cold_start([media["photo-tiny"]], str(untrained_checkpoint), runs=2)
    _, spec = load_checkpoint(untrained_checkpoint, device="cpu")
    assert report["model"].startswith(spec.version)
    assert len(report["runs"]) == 2 and report["peak_rss_mb"] == max(r["peak_rss_mb"] for r in report["runs"])


def test_a_childs_peak_memory_is_its_own_not_its_parents():
    import numpy as np

    ballast = np.ones(400_000_000 // 8)  # 400 MB held by this process while the child runs
    code = "from ml.bench import peak_rss_mb; print(peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 300 < ballast.nbytes / 2**20


def test_memory_a_process_fills_is_its_own_and_libraries_are_mapped_files():
    code = (
        "import json, numpy as np; from ml.bench import resident_mb; before = resident_mb(); "
        "ballast = np.ones(200_000_000 // 8); after = resident_mb(); print(json.dumps([before, after]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout)
    assert after["private"] - before["private"] > 180  # the 191 MB of ballast
    assert abs(after["mapped_files"] - before["mapped_files"]) < 20
    assert before["mapped_files"] > 5  # the interpreter and numpy's own libraries
