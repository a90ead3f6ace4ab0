"""gunicorn settings: `.venv/bin/gunicorn` (run from this folder) reads this file by itself.

Threads, so that a slow upload or a `?wait=30` request holds one thread, not the whole site.
Every value can be changed from the environment (README, "Running on servers").
"""

import os
import signal

wsgi_app = "deepfake_site.wsgi"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A threaded worker keeps answering its arbiter while its threads serve slow requests; the
# timeout only ends a worker that hangs. It still covers the largest upload arriving at
# UPLOAD_MIN_KBPS (in case a proxy streams the body instead of buffering it) plus the longest
# `?wait=`.
_upload_bytes = int(os.environ.get("DETECTION_MAX_UPLOAD_MB", "200")) * 1024 * 1024
_slowest_bytes_per_second = int(os.environ.get("UPLOAD_MIN_KBPS", "500")) * 1024
timeout = _upload_bytes // _slowest_bytes_per_second + 30 + 30
graceful_timeout = 30
keepalive = 5
# Fresh processes now and then, so that memory cannot creep up.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
# gunicorn's default line, plus the client's address as the proxy in front forwards it (the
# peer, first, is then the proxy) and the time the answer took.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" for=%({x-forwarded-for}i)s %(M)sms'
# No control socket: its one default path (~/.gunicorn/gunicorn.ctl) would be shared by every
# gunicorn of this user (`make run`, `make load`); nothing here uses `gunicornc`.
control_socket_disable = True
# Trust X-Forwarded-* only from a proxy on this machine.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server):
    """Refuse to serve other machines with DEBUG on; warn when the static files were not
    collected (every page would answer 500)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deepfake_site.settings")
    from django.conf import settings

    from deepfake_site.safety import bind_host, debug_bind_refusal, static_files_missing

    refusal = debug_bind_refusal(
        debug=settings.DEBUG, hosts=[bind_host(address) for address in server.cfg.bind]
    )
    if refusal:
        raise RuntimeError(refusal)
    missing = static_files_missing(debug=settings.DEBUG, static_root=settings.STATIC_ROOT)
    if missing:
        server.log.warning("%s", missing)


def post_worker_init(worker):
    """Leave Ctrl-C to the master. A terminal's Ctrl-C (`make run`) reaches every process of its
    group, so each worker heard it and, a moment later, the master's own quit signal. gunicorn's
    threaded worker, stopped twice at once, can block for good in its thread pool's lock (3 stops
    in 20, measured 2026-11-26 with gunicorn 27.0.1), until the master kills it 30 s later and
    logs "Perhaps out of memory?". Ignored here, a worker stops once, when the master says so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
