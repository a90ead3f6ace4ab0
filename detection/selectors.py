"""Reads: the analyses a user may see. Nothing here returns another user's data, except to
staff where the caller says so (`staff_reads_all=True`: the pages let staff read, never write)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.signing import BadSignature, SignedPackage

from . import workers
from .broker import ReliableRedis
from .models import Analysis, AnalysisFace, AnalysisFrame, name_folded
from .throttles import upload_rate_usage

logger = logging.getLogger(__name__)

ORDERINGS = ("-created_at", "created_at")
HELD_ANY = "any"  # analysis_list's uncertain_reason for every held verdict, whatever its reason
RUN_TASK = "detection.tasks.analysis_run_task"


def analysis_list(
    *,
    owner: AbstractBaseUser,
    status: str | None = None,
    verdict: str | None = None,
    media_type: str | None = None,
    name: str | None = None,
    uploaded_from: date | None = None,
    uploaded_to: date | None = None,
    sha256: str | None = None,
    uncertain_reason: str | None = None,
    ordering: str = "-created_at",
) -> QuerySet[Analysis]:
    """The owner's analyses, newest first unless `ordering` says otherwise.

    `name` matches part of the original file name, in any case and any script (name_folded);
    `uploaded_from` and
    `uploaded_to` are days in the site's time zone, both included; `sha256` is the upload's
    digest (has this file been analysed already?); `uncertain_reason` selects the verdicts held at
    uncertain for that reason (ml/caution.py), or for any reason (HELD_ANY): a desk that reviews
    the held ones first.
    """
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}")
    analyses = Analysis.objects.filter(owner=owner)
    if name:
        # (an empty key: a row saved by code older than the key, during an upgrade; migration 0010)
        analyses = analyses.filter(Q(name_folded__contains=name_folded(name)) | Q(name_folded="", original_name__icontains=name))
    if uploaded_from:
        analyses = analyses.filter(created_at__date__gte=uploaded_from)
    if uploaded_to:
        analyses = analyses.filter(created_at__date__lte=uploaded_to)
    if status:
        analyses = analyses.filter(status=status)
    if verdict:
        analyses = analyses.filter(verdict=verdict)
    if media_type:
        analyses = analyses.filter(media_type=media_type)
    if sha256:
        analyses = analyses.filter(sha256=sha256.lower())
    if uncertain_reason == HELD_ANY:
        analyses = analyses.filter(verdict=Analysis.Verdict.UNCERTAIN).exclude(uncertain_reason="")
    elif uncertain_reason:
        analyses = analyses.filter(verdict=Analysis.Verdict.UNCERTAIN, uncertain_reason=uncertain_reason)
    return analyses.order_by(ordering, "pk")


@dataclass(frozen=True)
class Usage:
    stored_bytes: int  # the originals the account keeps
    pending: int  # its analyses queued or running


def analysis_usage(*, owner: AbstractBaseUser) -> Usage:
    """What an account's analyses hold, against DETECTION_USER_STORAGE_BYTES and
    DETECTION_USER_PENDING."""
    totals = Analysis.objects.filter(owner=owner).aggregate(
        stored=Sum("size", default=0),
        pending=Count("pk", filter=Q(status__in=(Analysis.Status.QUEUED, Analysis.Status.RUNNING))),
    )
    return Usage(stored_bytes=totals["stored"], pending=totals["pending"])


def account_usage(*, owner: AbstractBaseUser) -> dict:
    """What an account uses of each of its limits, for scripts to plan their uploads (0 in a
    setting is no limit: null)."""
    usage = analysis_usage(owner=owner)
    return {
        "stored_bytes": usage.stored_bytes,
        "storage_limit_bytes": settings.DETECTION_USER_STORAGE_BYTES or None,
        "pending": usage.pending,
        "pending_limit": settings.DETECTION_USER_PENDING or None,
        "max_upload_bytes": settings.DETECTION_MAX_UPLOAD_BYTES,
        "uploads": upload_rate_usage(user=owner),
    }


def analysis_list_statuses(*, owner: AbstractBaseUser, analysis_ids: list) -> QuerySet[Analysis]:
    """The owner's analyses among `analysis_ids` (others' are left out), for status polling."""
    return Analysis.objects.filter(owner=owner, pk__in=analysis_ids).only(
        "id", "status", "progress", "error", "verdict", "fake_kind", "uncertain_reason", "fake_probability",
        "synthetic_probability", "threshold", "threshold_real",  # (verdict_label: borderline)
    )


# The admin lets either permission view analyses; the site follows it.
STAFF_READ_PERMISSIONS = ("detection.view_analysis", "detection.change_analysis")


def reads_every_analysis(viewer: AbstractBaseUser) -> bool:
    """Staff who were given the permission to view (or change) analyses; superusers have every
    permission. Being staff only lets someone into the admin, not into other people's files."""
    return viewer.is_staff and any(viewer.has_perm(permission) for permission in STAFF_READ_PERMISSIONS)


def _readable(viewer: AbstractBaseUser, staff_reads_all: bool) -> QuerySet[Analysis]:
    """`viewer`'s own analyses or, when the caller lets staff read everyone's (the pages do,
    the API does not) and `viewer` may (`reads_every_analysis`), every analysis."""
    analyses = Analysis.objects.select_related("owner")
    return analyses if staff_reads_all and reads_every_analysis(viewer) else analyses.filter(owner=viewer)


def analysis_get(*, viewer: AbstractBaseUser, analysis_id, staff_reads_all: bool = False) -> Analysis | None:
    """An analysis without its results (for following its progress or deleting it)."""
    return _readable(viewer, staff_reads_all).filter(pk=analysis_id).first()


def analysis_get_detail(
    *, viewer: AbstractBaseUser, analysis_id, staff_reads_all: bool = False
) -> Analysis | None:
    """An analysis with its frames and their faces loaded in two extra queries."""
    return _with_frames(_readable(viewer, staff_reads_all).filter(pk=analysis_id)).first()


def analysis_frame_get(
    *, viewer: AbstractBaseUser, analysis_id, frame_index: int, staff_reads_all: bool = False
) -> AnalysisFrame | None:
    """A sampled frame with a stored image, of an analysis `viewer` may read."""
    return (
        AnalysisFrame.objects.filter(
            analysis__in=_readable(viewer, staff_reads_all).filter(pk=analysis_id), index=frame_index
        )
        .exclude(image="")
        .first()
    )


def analysis_face_get(
    *, viewer: AbstractBaseUser, analysis_id, face_id: int, staff_reads_all: bool = False
) -> AnalysisFace | None:
    """A face with a stored heatmap, of an analysis `viewer` may read."""
    return (
        AnalysisFace.objects.filter(
            pk=face_id, frame__analysis__in=_readable(viewer, staff_reads_all).filter(pk=analysis_id)
        )
        .exclude(heatmap="")
        .first()
    )


def analysis_queue_position(*, analysis: Analysis) -> int:
    """1 for the next queued analysis to run, 2 for the one after it, ... (everyone's uploads
    count, first come first served); 0 once it is no longer queued."""
    if analysis.status != Analysis.Status.QUEUED:
        return 0
    # by when each was queued (last): an analysis run again waits behind those queued before
    # it, whenever it was uploaded
    since = analysis.enqueued_at or analysis.created_at
    queued = Analysis.objects.filter(status=Analysis.Status.QUEUED).annotate(since=Coalesce("enqueued_at", "created_at"))
    ahead = queued.filter(Q(since__lt=since) | Q(since=since, pk__lt=analysis.pk))
    return ahead.count() + 1


# Long enough for a worker that is starting (loading the models) to show up.
NO_WORKER_AFTER_SECONDS = 15


def analysis_waits_for_no_worker(*, analysis: Analysis) -> bool:
    """Whether a queued analysis has waited NO_WORKER_AFTER_SECONDS with no worker cluster up to
    run it: the page says so instead of counting down a queue that does not move."""
    if analysis.status != Analysis.Status.QUEUED:
        return False
    since = analysis.enqueued_at or analysis.created_at
    if (timezone.now() - since).total_seconds() < NO_WORKER_AFTER_SECONDS:
        return False
    return workers.clusters_running() == 0


def _with_frames(analyses: QuerySet[Analysis]) -> QuerySet[Analysis]:
    faces = AnalysisFace.objects.order_by("index")
    frames = AnalysisFrame.objects.order_by("index").prefetch_related(
        Prefetch("faces", queryset=faces)
    )
    return analyses.prefetch_related(Prefetch("frames", queryset=frames), "tracks")


def user_get_for_staff(*, viewer: AbstractBaseUser, username: str) -> AbstractBaseUser | None:
    """The user called `username` when `viewer` may read every analysis (or is that user);
    None otherwise."""
    if viewer.get_username() == username:
        return viewer
    if not reads_every_analysis(viewer):
        return None
    return get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()


def _payloads_waiting() -> list:
    """The signed messages a live worker can still run: on the database queue every stored
    message (one a dead worker held is delivered again when its lease runs out); on Redis
    those waiting and those held by live clusters (`detection.broker`)."""
    broker = get_broker()
    if isinstance(broker, ORM):
        return list(broker.get_connection().filter(key=broker.list_key).values_list("payload", flat=True))
    if isinstance(broker, ReliableRedis):
        return broker.waiting_payloads()
    raise NotImplementedError(f"the sweep cannot inspect a {type(broker).__name__} queue")


def queue_tokens_waiting() -> set[str]:
    """The queue tokens of the analysis messages a live worker can still run."""
    tokens = {queue_token_of(payload) for payload in _payloads_waiting()}
    return tokens - {None}


def queue_token_of(payload) -> str | None:
    """The queue token an analysis run's message carries; None for any other message."""
    try:
        task = SignedPackage.loads(payload)
    except (BadSignature, TypeError, ValueError):
        logger.warning("the queue holds a message this process cannot read")
        return None
    args = task.get("args") or ()
    if task.get("func") == RUN_TASK and len(args) >= 2:
        return args[1]
    return None
