"""Settings for the deepfake detection site.

Every value that differs between a laptop and a deployment comes from an environment variable.
The defaults are safe for local use: SQLite and django-q2's ORM broker, nothing else to install.
README.md lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    """A boolean variable: only "true" or "false" (any case) are accepted."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int, *, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envmode(name: str, default: int) -> int:
    """A file mode in octal, as chmod takes it ("640")."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        mode = int(value, 8)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a file mode in octal such as 600, not {value!r}") from None
    if not 0 <= mode <= 0o777:
        raise ImproperlyConfigured(f"{name} must be a file mode in octal such as 600, not {value!r}")
    return mode


def database_from_url(url: str) -> dict:
    """A DATABASES entry from sqlite:///relative/path (to the project), sqlite:////absolute/path,
    sqlite:///:memory: or postgres://user:password@host:port/name?option=value (query options
    such as sslmode=require reach the driver)."""
    scheme = url.partition(":")[0]
    if scheme not in ("sqlite", "postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL: unsupported scheme {scheme!r} (use sqlite or postgres)"
        )
    if not url.partition("://")[2].strip("/"):
        raise ImproperlyConfigured("DATABASE_URL: sqlite:/// needs a file path or :memory:")
    try:
        database = dj_database_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    if scheme == "sqlite":
        if database["NAME"] != ":memory:":
            database["NAME"] = BASE_DIR / database["NAME"]
        database["OPTIONS"] = {
            # WAL lets the web process read while the worker writes; the busy timeout and
            # IMMEDIATE transactions make writers queue instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            **database.get("OPTIONS", {}),
        }
    else:
        database.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    return database


DEFAULT_SECRET_KEY = "local-development-only-never-use-in-production"
DEFAULT_QUEUE_SECRET_KEY = "local-development-queue-only-never-use-in-production"
DEBUG = envbool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY when DEBUG is false")
# Signs the task queue's messages (django-q2 unpickles what it can verify). Web and worker
# processes must share it; nothing else needs it. Separate from SECRET_KEY so that a worker
# machine holds no key that could forge sessions.
QUEUE_SECRET_KEY = os.environ.get("QUEUE_SECRET_KEY", DEFAULT_QUEUE_SECRET_KEY)
if not DEBUG and QUEUE_SECRET_KEY == DEFAULT_QUEUE_SECRET_KEY:
    raise ImproperlyConfigured("Set QUEUE_SECRET_KEY when DEBUG is false")
if not DEBUG and QUEUE_SECRET_KEY == SECRET_KEY:
    raise ImproperlyConfigured("QUEUE_SECRET_KEY must differ from SECRET_KEY")
for _name, _key in (("SECRET_KEY", SECRET_KEY), ("QUEUE_SECRET_KEY", QUEUE_SECRET_KEY)):
    # Django's own deploy check asks the same of SECRET_KEY; here a server will not start
    # without it (one key forges sessions, the other the queue's messages, which are unpickled).
    if not DEBUG and (len(_key) < 50 or len(set(_key)) < 5):
        raise ImproperlyConfigured(
            f"{_name} is too weak ({len(_key)} characters, {len(set(_key))} different): use 50 or more "
            "random ones, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
del _name, _key

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_HTTPS_PROXY", False) else None
)
# Cookies over HTTPS only unless DEBUG: a server reached over plain HTTP must say so
# (SECURE_COOKIES=false); its forms then say why they fail (deepfake_site/errors.csrf_failure).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_FAILURE_VIEW = "deepfake_site.errors.csrf_failure"
# HTTPS only: redirect plain HTTP and tell browsers to never use it again (HSTS). Turn HSTS on
# with a small number first; browsers remember it for HSTS_SECONDS.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # a load balancer's probe, often plain HTTP (deepfake_site/health.py)
SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    # First, so that its runserver and qcluster (with their start-up checks) win.
    "deepfake_site",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    # Installed only so that accounts' migration 0003 can move its plain-text keys to digests
    # (accounts/models.py); nothing reads it, and its table is left empty.
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "accounts",
    "detection",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "deepfake_site.head.HeadWithoutBodyMiddleware",
    "deepfake_site.api.PrivateApiAnswersMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads the body (the CSRF check reads the form).
    "deepfake_site.uploads.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if DEBUG:  # never served through a proxy (deepfake_site/safety.py)
    MIDDLEWARE.insert(0, "deepfake_site.safety.DebugBehindProxyMiddleware")

ROOT_URLCONF = "deepfake_site.urls"
WSGI_APPLICATION = "deepfake_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3"))}
# Throttle and log-in failure counters live in the cache, so every web process must see the same
# one: gunicorn runs several (gunicorn.conf.py), and a per-process memory cache would let each
# count on its own (2 processes: twice the allowed log-in attempts). Without CACHE_URL (Redis,
# shared by machines) the cache is a folder of files, shared by the processes of this machine.
CACHE_URL = os.environ.get("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(Path(os.environ.get("CACHE_DIR", BASE_DIR / "var" / "cache"))),
            # Past MAX_ENTRIES files Django deletes a third of them at random, the upload-rate
            # and failed-log-in counts among them (Django's default is 300: a few hundred
            # active users). Each entry is a small file; a larger site sets CACHE_URL (Redis).
            "OPTIONS": {"MAX_ENTRIES": envint("CACHE_MAX_ENTRIES", 20_000, minimum=300)},
        }
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a check: revokes the API tokens whenever a password is set, by any path.
    {"NAME": "accounts.validators.RotateApiTokenOnPasswordChange"},
]
# Failed log-ins (site and admin) allowed per account and client address within the window;
# a client address alone may fail four times as often.
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 900, minimum=1)
# Accounts made from one client network, and password-reset e-mails asked for from one network
# or for one address, per hour: no script makes accounts by the hundred or floods an inbox.
SIGNUP_LIMIT = envint("SIGNUP_LIMIT", 5, minimum=1)
PASSWORD_RESET_LIMIT = envint("PASSWORD_RESET_LIMIT", 5, minimum=1)
# API tokens one account may hold (accounts/services.py: past it, a log-in through the API
# replaces the log-in token used least lately).
API_TOKENS_PER_USER = envint("API_TOKENS_PER_USER", 20, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "detection:upload"
LOGOUT_REDIRECT_URL = "login"

# --- E-mail (password reset, address changes) -----------------------------------------------
# Without EMAIL_HOST, messages are printed on the web process's console instead of being sent.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = envint("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "deepfake-detector@localhost")
# A site that cannot send e-mail offers no reset by e-mail: printed on the console of a public
# server, the links would let whoever reads its logs into any account. Locally they are printed.
PASSWORD_RESET_BY_EMAIL = bool(EMAIL_HOST) or DEBUG
# The same rule for a new e-mail address on the profile page: kept once a link mailed to it is
# opened, where the site sends e-mail; kept at once (after the password) where it cannot.
EMAIL_CHANGE_BY_LINK = PASSWORD_RESET_BY_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads and heatmaps are private: they are served only through owner-checked views,
# never under a public media URL.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    # Uploads and results readable by the site's own user only (web and workers run as one
    # user; MEDIA_FILE_MODE=640 with MEDIA_DIR_MODE=750 shares them with its group).
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "file_permissions_mode": envmode("MEDIA_FILE_MODE", 0o600),
            "directory_permissions_mode": envmode("MEDIA_DIR_MODE", 0o700),
        },
    },
    # With DEBUG off, run `manage.py collectstatic` first: WhiteNoise then serves compressed
    # files with hashed names. With DEBUG on, files are served from static/ as they are.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG

# Content-Security-Policy (django-csp): scripts, styles and images from this site only, so an
# injected <script> or style="..." does nothing. Pages keep JS in static/js and CSS in
# static/css, and pass data with the json_script filter.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Detection -----------------------------------------------------------------------------
# Checkpoint for the detector; empty means the default model installed with the `ml` package.
DEEPFAKE_MODEL_PATH = os.environ.get("DEEPFAKE_MODEL_PATH") or None
# The second detector, for wholly generated (AI) faces; empty: the model installed with `ml`.
DEEPFAKE_SYNTHETIC_MODEL_PATH = os.environ.get("DEEPFAKE_SYNTHETIC_MODEL_PATH") or None
# What scores the faces in a worker: "auto" (the models' ONNX exports on a CPU, without loading
# torch; torch where a GPU is there to use or an export does not match its checkpoint), "onnx"
# (refuse to start without matching exports) or "torch". See ml/onnx_runtime.py.
DETECTION_RUNTIME = os.environ.get("DETECTION_RUNTIME", "auto")
if DETECTION_RUNTIME not in ("auto", "onnx", "torch"):
    raise ImproperlyConfigured(f"DETECTION_RUNTIME must be auto, onnx or torch, not {DETECTION_RUNTIME!r}")
# The model card the result pages link to, and the kinds of manipulation the model learned, in
# the words of its card (the result page's sentence quotes them): change both with the model.
DEEPFAKE_MODEL_CARD = Path(
    os.environ.get("DEEPFAKE_MODEL_CARD") or BASE_DIR / "ml" / "weights" / "MODEL_CARD.md"
)
DEEPFAKE_MODEL_TRAINED_ON = os.environ.get(
    "DEEPFAKE_MODEL_TRAINED_ON",
    "face swaps from the DeepFake Detection Challenge (DFDC) videos",
)
DETECTION_MAX_UPLOAD_BYTES = envint("DETECTION_MAX_UPLOAD_MB", 200, minimum=1) * 1024 * 1024
# What one account may hold: the originals it keeps (a deleted analysis gives its room back),
# and its analyses waiting for or in a worker, so that no account fills the disk or the queue.
# 0 turns either off.
DETECTION_USER_STORAGE_BYTES = envint("DETECTION_USER_STORAGE_MB", 5120, minimum=0) * 1024 * 1024
DETECTION_USER_PENDING = envint("DETECTION_USER_PENDING", 20, minimum=0)
FILE_UPLOAD_HANDLERS = [
    "deepfake_site.uploads.UploadLimitHandler",  # stops reading past the upload limit
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DETECTION_MAX_FRAMES = envint("DETECTION_MAX_FRAMES", 32, minimum=1)
DETECTION_MAX_FACES = envint("DETECTION_MAX_FACES", 4, minimum=1)
DETECTION_MAX_PHOTO_FACES = envint("DETECTION_MAX_PHOTO_FACES", 8, minimum=1)  # ml/faces.py
DETECTION_HEATMAPS = envint("DETECTION_HEATMAPS", 2)
# The decoder's pixel budget (ml.media.MediaLimits): a still, an animation's canvas or a video
# frame larger than DETECTION_MAX_PIXELS is refused from its header; every sampled frame is
# scaled down to DETECTION_FRAME_PIXELS as it is read; an animation may make the decoder paint
# at most DETECTION_MAX_ANIMATION_PIXELS (canvas x frames).
DETECTION_MAX_PIXELS = envint("DETECTION_MAX_PIXELS", 50_000_000, minimum=1)
DETECTION_FRAME_PIXELS = envint("DETECTION_FRAME_PIXELS", 1920 * 1080, minimum=1)
DETECTION_MAX_ANIMATION_PIXELS = envint("DETECTION_MAX_ANIMATION_PIXELS", 1_000_000_000, minimum=1)
# A job is stopped after this many seconds (size it for the longest video you accept).
DETECTION_JOB_TIMEOUT = envint("DETECTION_JOB_TIMEOUT", 1800, minimum=10)

# --- Workers (django-q2) -------------------------------------------------------------------
Q_BROKER = os.environ.get("Q_BROKER", "orm")
if DEBUG and Q_BROKER == "redis":
    # With DEBUG on the keys may be the public development ones: anyone who can write to
    # Redis could then sign a pickled payload that the worker runs.
    raise ImproperlyConfigured(
        "Q_BROKER=redis needs DEBUG=false (with SECRET_KEY and QUEUE_SECRET_KEY set)"
    )
# A queued analysis whose message is in no queue (a worker died holding it, or could not read
# it) is sent again after this many seconds, at most DETECTION_MAX_ENQUEUES times in all, then
# failed with a message. The sweep runs when a worker starts and every DETECTION_SWEEP_MINUTES.
DETECTION_REQUEUE_AFTER = envint("DETECTION_REQUEUE_AFTER", 600, minimum=1)
DETECTION_MAX_ENQUEUES = envint("DETECTION_MAX_ENQUEUES", 3, minimum=1)
DETECTION_SWEEP_MINUTES = envint("DETECTION_SWEEP_MINUTES", 10, minimum=1)
# Database queue: a worker's hold on a message lasts this many seconds and is renewed while the
# worker lives; the messages of a worker that died are delivered again after one lease.
DETECTION_QUEUE_LEASE = envint("DETECTION_QUEUE_LEASE", 60, minimum=1)
# A job that waits this many seconds in a cluster's task queue while the queue's read lock stays
# taken is waiting for a worker that died holding the lock: the cluster frees it (detection/
# queue_lock.py; a live worker takes a waiting job at once).
DETECTION_QUEUE_STUCK_AFTER = envint("DETECTION_QUEUE_STUCK_AFTER", 30, minimum=2)
Q_WORKERS = envint("Q_WORKERS", 1, minimum=1)
# Threads for the models and OpenCV in each worker process: the machine's cores shared among the
# cluster's workers (one worker on two cores: 2), one inter-op thread.
DETECTION_THREADS = envint("DETECTION_THREADS", max(1, (os.cpu_count() or 1) // Q_WORKERS), minimum=1)
Q_CLUSTER = {
    "name": "deepfake",
    "workers": Q_WORKERS,  # torch already uses every core
    "timeout": DETECTION_JOB_TIMEOUT,
    # django-q2 wants `retry` above the timeout; neither queue here waits for it: the database
    # queue's holds are leases renewed while their worker lives, Redis's are held lists
    # (detection/broker.py).
    "retry": DETECTION_JOB_TIMEOUT + 120,
    "max_attempts": 1,
    "ack_failures": True,
    # Take one job ahead at most: a job held by a busy cluster waits, others could run it. A
    # cluster holds at most workers + queue_limit messages (django-q2's pusher alone would
    # hold one more, in its hand) and gives them back to the queue when it is stopped; its
    # workers finish their jobs and start no other (detection/broker.py).
    "queue_limit": 1,
    "recycle": 200,
    "save_limit": 100,
    "catch_up": False,
    "label": "Task queue",
}
if Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
    # Renews the hold on each message while its worker lives (no 32-minute wait after a crash).
    Q_CLUSTER["broker_class"] = "detection.broker.LeasedORM"
elif Q_BROKER == "redis":
    Q_CLUSTER["redis"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    # Keeps each message a worker takes until its job ends, so none is lost with a worker.
    Q_CLUSTER["broker_class"] = "detection.broker.ReliableRedis"
else:
    raise ImproperlyConfigured(f"Q_BROKER must be orm or redis, not {Q_BROKER!r}")

# `?wait=` holds a web thread: per process, at most this many waits at once (the rest of the
# threads stay free for pages and uploads), and at most this many of one user's.
API_WAIT_SLOTS = envint("API_WAIT_SLOTS", max(1, envint("GUNICORN_THREADS", 8) - 2), minimum=1)
API_WAITS_PER_USER = envint("API_WAITS_PER_USER", 2, minimum=1)

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so that a request without credentials gets 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only, errors included, whatever the client's Accept header; /api/docs/ documents it.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "deepfake_site.negotiation.JsonAlways",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "deepfake_site.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "uploads": os.environ.get("API_UPLOAD_RATE", "60/hour"),
        "token": os.environ.get("API_TOKEN_RATE", "10/minute"),
    },
    # Proxies in front of the site; 0 means throttles key on the client's own address.
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Deepfake detection API",
    "DESCRIPTION": (
        "Upload photos and videos, follow their analysis and read the verdicts. "
        "Authenticate with `Authorization: Token <key>` (get a key from "
        "`POST /api/v1/auth/token/` or from your profile page)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"one_line_warning": {"()": "deepfake_site.logs.OneLineWarning"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own loggers print through the same handler, once, at the same level.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # A request for a host name not in ALLOWED_HOSTS is the client's doing (scanners send
        # them all day): one warning line, not an error with a traceback.
        "django.security.DisallowedHost": {"handlers": ["console"], "level": LOG_LEVEL, "filters": ["one_line_warning"], "propagate": False},
    },
}
