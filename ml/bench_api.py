"""Upload-to-verdict through the site's API, for `python -m ml bench --api`.

It starts the site as deployed (gunicorn with gunicorn.conf.py, one web process) and one
django-q2 worker (`manage.py qcluster`) against a throw-away SQLite database and media folder,
creates a user, then uploads a photo (and a video) again and again with `?wait=30`, timing each
request from the first byte sent to the verdict received. Everything runs in subprocesses, so
this module imports no Django; both processes are stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: manage.py, gunicorn.conf.py


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _request(url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_for_site(base: str, process: subprocess.Popen, deadline: float) -> None:
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited while starting (is the port taken?)")
        try:
            urllib.request.urlopen(f"{base}/api/schema/", timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError("the site did not answer within 60 s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # its own session: gunicorn's or qcluster's children too
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _upload(base: str, token: str, path: Path) -> float:
    body, content_type = _multipart(path)
    headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
    started = time.perf_counter()
    status, answer = _request(f"{base}/api/v1/analyses/?wait=30", data=body, headers=headers)
    seconds = time.perf_counter() - started
    if status != 201 or answer.get("status") != "done":
        raise RuntimeError(f"upload of {path.name}: HTTP {status}, {answer.get('status')}: {answer.get('detail') or answer.get('error')}")
    return seconds


def measure_api(photo: Path, video: Path | None, *, uploads: int = 20, port: int = 8300, runtime: str = "auto") -> dict:
    """p50/p95 upload-to-verdict for `photo` (and `video`) over `uploads` uploads each, plus the
    worker's start to its first verdict (model loading included)."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3",
            "MEDIA_ROOT": f"{tmp}/media",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "1",
            "API_UPLOAD_RATE": "100000/hour",  # the site's speed, not its limits
            "DETECTION_USER_PENDING": "0",
            "DETECTION_USER_STORAGE_MB": "0",
            "LOG_LEVEL": "WARNING",
            "DETECTION_RUNTIME": runtime,
            "DJANGO_SETTINGS_MODULE": "deepfake_site.settings",
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        run = dict(cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        subprocess.run([*manage, "migrate", "--noinput"], **run)
        password = secrets.token_urlsafe(16)
        subprocess.run(
            [*manage, "shell", "-c",
             f"from django.contrib.auth import get_user_model; get_user_model().objects.create_user('bench', password='{password}')"],
            **run,
        )
        web = worker = None
        log = open(Path(tmp) / "processes.log", "w")
        try:
            web = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            _wait_for_site(base, web, time.time() + 60)
            data = f"username=bench&password={password}".encode()
            status, answer = _request(f"{base}/api/v1/auth/token/", data=data,
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            if status != 200:
                raise RuntimeError(f"no API token: HTTP {status} {answer}")
            token = answer["token"]
            worker_started = time.perf_counter()
            worker = subprocess.Popen(
                [*manage, "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            _upload(base, token, photo)  # the worker's first job: starting and loading the models
            report = {"worker_first_verdict_s": round(time.perf_counter() - worker_started, 3)}
            for kind, path in (("photo", photo), ("video", video)):
                if path is None:
                    continue
                seconds = [_upload(base, token, path) for _ in range(uploads)]
                report[kind] = {
                    "file": path.name,
                    "uploads": uploads,
                    "p50": round(statistics.median(seconds), 4),
                    "p95": round(_percentile(seconds, 0.95), 4),
                    "max": round(max(seconds), 4),
                }
            return report
        finally:
            _stop(worker)
            _stop(web)
            log.close()
