"""The web server as `make run` starts it (gunicorn with gunicorn.conf.py, real processes): Ctrl-C
stops it at once. Ctrl-C reaches the terminal's whole process group; a worker that heard it and
then its master's quit signal could hang until the master killed it 30 s later."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def site(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "CACHE_DIR": str(tmp_path / "cache"),
        "DEBUG": "true",  # pages with static files without collectstatic; loopback only
    }
    for name in ("DJANGO_SETTINGS_MODULE", "Q_BROKER", "REDIS_URL", "CACHE_URL"):  # the web alone, embedded
        env.pop(name, None)
    log = (tmp_path / "gunicorn.log").open("w")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives `make run`
    )
    url = f"http://127.0.0.1:{port}/accounts/login/"
    try:
        up = until(lambda: master.poll() is not None or (answers(url) and len(children(master.pid)) == 2), 60)
        assert up and master.poll() is None, "gunicorn did not start:\n" + (tmp_path / "gunicorn.log").read_text()[-3000:]
        yield master, url, tmp_path / "gunicorn.log"
    finally:
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait()
        log.close()


def test_a_worker_leaves_ctrl_c_to_its_master_and_keeps_serving(site):
    master, url, _ = site
    worker = min(children(master.pid))

    os.kill(worker, signal.SIGINT)

    time.sleep(1)
    assert alive(worker) and worker in children(master.pid)
    assert answers(url)


def test_ctrl_c_stops_the_master_and_every_worker_well_before_the_kill_deadline(site):
    master, _, log = site
    workers = children(master.pid)

    os.killpg(master.pid, signal.SIGINT)  # what Ctrl-C in the terminal does

    assert until(lambda: master.poll() is not None, 20), "the master still runs 20 s after Ctrl-C"
    assert not any(alive(pid) for pid in workers)
    assert "SIGKILL" not in log.read_text()
