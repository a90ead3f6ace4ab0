"""`make load`: K users send N uploads at once over loopback to gunicorn (as gunicorn.conf.py
configures it) with one worker, then wait for every verdict.

With --one-by-one it sends the uploads one after the other instead, each with `?wait=30`, as
a single API client would: upload-to-verdict then measures the queue and the worker, not a
backlog. It also times the worker from its start to ready (model loaded and warmed).

Not a test: it prints what happened (accepted / refused / lost / 5xx, throughput and the
upload-to-verdict times) for a person to read. It starts and stops its own gunicorn and
qcluster with this process's settings (so DATABASE_URL, Q_BROKER and MEDIA_ROOT apply), and
deletes its users, their analyses and their files at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django_q.brokers import get_broker

from accounts.services import api_token_create, user_create
from detection import services
from detection.models import Analysis

USER_PREFIX = "load-user-"


@dataclass
class Upload:
    user: int
    status: int = 0  # HTTP status, 0 when the connection failed
    url: str = ""
    sent_at: float = 0.0
    answered_at: float = 0.0
    finished_at: float | None = None
    outcome: str = ""  # done / failed / lost
    stages: tuple[float, float, float] | None = None  # --one-by-one: queue, job, answer (s)
    error: str = field(default="", repr=False)


def _photo() -> bytes:
    import cv2
    import skimage.data  # installed with the test extra (`make test` / `make load` install it)

    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def _multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _request(port: int, method: str, path: str, *, body=None, headers=None, timeout=120):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _stages(detail: dict, *, answered: float) -> tuple[float, float, float]:
    """Seconds in the queue (upload stored to job started), in the job (started to finished)
    and from finished to the answer, from the analysis's own timestamps."""
    from django.utils.dateparse import parse_datetime

    created, started, finished = (
        parse_datetime(detail[name]).timestamp() for name in ("created_at", "started_at", "finished_at")
    )
    return started - created, finished - started, answered - finished


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = "K users send N concurrent uploads to gunicorn + one worker; prints the outcome."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=5)
        parser.add_argument("--uploads", type=int, default=50)
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--verdict-timeout", type=int, default=1800, help="seconds")
        parser.add_argument("--one-by-one", action="store_true",
                            help="send the uploads one at a time, each waiting for its verdict")

    def handle(self, *args, users, uploads, port, verdict_timeout, one_by_one, **options):
        call_command("migrate", verbosity=0)
        if not settings.DEBUG:  # gunicorn then serves collectstatic's manifest, as on a server
            call_command("collectstatic", interactive=False, verbosity=0)
        self.cleanup()
        get_broker().purge_queue()
        tokens = [
            api_token_create(
                user=user_create(
                    username=f"{USER_PREFIX}{i}", email=f"{USER_PREFIX}{i}@example.org",
                    password=uuid.uuid4().hex,
                ),
                name="load test",
            )[1]
            for i in range(users)
        ]
        env = {
            **os.environ,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "API_UPLOAD_RATE": "1000000/hour",  # measure the site, not the throttle
            "DETECTION_USER_PENDING": "0",  # nor the limits of one account
            "DETECTION_USER_STORAGE_MB": "0",
        }
        log_path = settings.BASE_DIR / "var" / "load-servers.log"
        log = open(log_path, "wb")
        started = time.monotonic()
        servers = [
            subprocess.Popen([sys.executable, "-m", "gunicorn"], cwd=settings.BASE_DIR, env=env,
                             stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR,
                             env=env, stdout=log, stderr=subprocess.STDOUT),
        ]
        try:
            self.wait_for_site(port)
            ready = self.wait_for_worker(log_path, started)
            if one_by_one:
                results = self.run_one_by_one(port, tokens, uploads)
            else:
                results = self.run_load(port, tokens, uploads, verdict_timeout)
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
            log.close()
            self.cleanup()
        self.stdout.write(f"worker ready {ready:.1f} s after it was started (model loaded and warmed)"
                          if ready is not None else "the worker did not report ready within 2 minutes")
        self.report(results, users, one_by_one=one_by_one)

    def wait_for_worker(self, log_path, started: float) -> float | None:
        """Seconds from the worker's start until it logs that it is ready (tasks.on_worker_start)."""
        deadline = started + 120
        while time.monotonic() < deadline:
            if b"ready for analyses" in log_path.read_bytes():
                return time.monotonic() - started
            time.sleep(0.05)
        return None

    def run_one_by_one(self, port, tokens, count) -> list[Upload]:
        photo = _photo()
        results = []
        for i in range(count):
            upload = Upload(user=i % len(tokens))
            body, content_type = _multipart(f"load-{i}.jpg", photo)
            headers = {"Authorization": f"Token {tokens[upload.user]}", "Content-Type": content_type}
            upload.sent_at = time.monotonic()
            upload.status, answer = _request(port, "POST", "/api/v1/analyses/?wait=30", body=body, headers=headers)
            upload.answered_at = time.monotonic()
            state = json.loads(answer).get("status") if upload.status in (201, 202) else ""
            if upload.status == 201:  # finished within the wait
                upload.status, upload.outcome, upload.finished_at = 202, state, upload.answered_at
                upload.stages = _stages(json.loads(answer), answered=time.time())
            elif upload.status == 202:
                upload.outcome = "lost"  # not within 30 s: counted as lost here
            else:
                upload.error = answer[:200].decode(errors="replace")
            results.append(upload)
        return results

    def wait_for_site(self, port: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if _request(port, "GET", "/accounts/login/", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise CommandError("gunicorn did not answer within 2 minutes (see var/load-servers.log)")

    def run_load(self, port, tokens, count, verdict_timeout) -> list[Upload]:
        photo = _photo()

        def send(i: int) -> Upload:
            upload = Upload(user=i % len(tokens))
            body, content_type = _multipart(f"load-{i}.jpg", photo)
            headers = {"Authorization": f"Token {tokens[upload.user]}", "Content-Type": content_type}
            upload.sent_at = time.monotonic()
            try:
                upload.status, answer = _request(port, "POST", "/api/v1/analyses/", body=body, headers=headers)
                if upload.status == 202:
                    upload.url = json.loads(answer)["url"]
                else:
                    upload.error = answer[:200].decode(errors="replace")
            except OSError as exc:
                upload.error = str(exc)
            upload.answered_at = time.monotonic()
            return upload

        with ThreadPoolExecutor(max_workers=count) as pool:
            results = list(pool.map(send, range(count)))

        waiting = [u for u in results if u.url]
        deadline = time.monotonic() + verdict_timeout
        while waiting and time.monotonic() < deadline:
            for upload in list(waiting):
                path = urlsplit(upload.url).path
                token = tokens[upload.user]
                status, answer = _request(port, "GET", path, headers={"Authorization": f"Token {token}"})
                state = json.loads(answer).get("status") if status == 200 else "lost"
                if state in ("done", "failed", "lost"):
                    upload.outcome, upload.finished_at = state, time.monotonic()
                    waiting.remove(upload)
            time.sleep(1)
        for upload in waiting:
            upload.outcome = "lost"
        return results

    def report(self, results: list[Upload], users: int, *, one_by_one: bool = False) -> None:
        accepted = [u for u in results if u.status == 202]
        refused = [u for u in results if 400 <= u.status < 500]
        server_errors = [u for u in results if u.status >= 500]
        unanswered = [u for u in results if u.status == 0]
        lost = [u for u in accepted if u.outcome == "lost"]
        finished = [u for u in accepted if u.outcome in ("done", "failed")]
        failed = [u for u in finished if u.outcome == "failed"]
        out = self.stdout.write
        out(f"engine: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} + "
            f"{settings.Q_BROKER} broker; {users} users, {len(results)} "
            f"{'uploads one by one (?wait=30)' if one_by_one else 'concurrent uploads'}")
        out(f"accepted {len(accepted)}  refused {len(refused)}  lost {len(lost)}  "
            f"5xx {len(server_errors)}  no answer {len(unanswered)}  "
            f"(verdicts: {len(finished) - len(failed)} done, {len(failed)} failed)")
        if refused or server_errors or unanswered:
            for upload in (refused + server_errors + unanswered)[:5]:
                out(f"  e.g. HTTP {upload.status}: {upload.error}")
        if finished:
            start = min(u.sent_at for u in results)
            end = max(u.finished_at for u in finished)
            to_verdict = [u.finished_at - u.sent_at for u in finished]
            answers = [u.answered_at - u.sent_at for u in results if u.status]
            out(f"throughput {len(finished) / (end - start) * 60:.1f} verdicts/minute "
                f"({len(finished)} in {end - start:.1f} s)")
            out(f"upload answered: p50 {statistics.median(answers):.2f} s, "
                f"p95 {_percentile(answers, 0.95):.2f} s")
            out(f"upload to verdict: p50 {statistics.median(to_verdict):.3f} s, "
                f"p95 {_percentile(to_verdict, 0.95):.3f} s")
        stages = [u.stages for u in results if u.stages]
        if stages:
            parts = "; ".join(
                f"{name} p50 {statistics.median(s[i] for s in stages):.3f} s, "
                f"p95 {_percentile([s[i] for s in stages], 0.95):.3f} s"
                for i, name in enumerate(("queue", "job", "answer after the job"))
            )
            out(f"  of which {parts}")

    def cleanup(self) -> None:
        for analysis in Analysis.objects.filter(owner__username__startswith=USER_PREFIX):
            services.analysis_delete(analysis=analysis)
        get_user_model().objects.filter(username__startswith=USER_PREFIX).delete()
