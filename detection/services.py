"""Writes: create, run, fail and delete analyses. Keyword-only, typed, named <entity>_<action>."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import get_valid_filename
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.tasks import async_task

from . import inference, selectors, workers
from .broker import ReliableRedis
from .errors import (
    FileUnreadable,
    NotFinished,
    StorageFull,
    StorageQuotaFull,
    TooManyPending,
    UploadEmpty,
    UploadRateLimited,
    UploadTooLarge,
    UploadUnsupported,
)
from .models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack
from .throttles import rate_limit_message, upload_count, upload_uncount

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = (
    "a photo (JPEG, PNG, WebP, BMP, GIF, AVIF) or a video (MP4, MOV, AVI, WebM, MKV)"
)
INTERRUPTED_MESSAGE = (
    "The analysis was interrupted because the worker running it stopped (a restart, or it ran "
    "out of memory). Try it again from its page; the file is kept."
)
INTERNAL_ERROR_MESSAGE = (
    "The analysis failed because of an internal error. It has been logged; please try again "
    "later."
)
MODEL_MISSING_MESSAGE = (
    "The detection model is not available on this server. An administrator has to install it."
)
QUEUE_DOWN_MESSAGE = (
    "The analysis could not be queued because the task queue is unavailable. Please try it "
    "again later from its page; the file is kept."
)
DISK_FULL_MESSAGE = (
    "The server ran out of storage space while saving the results. It has been logged; please "
    "try again later."
)
LOST_MESSAGE = (
    "The analysis was lost by the task queue several times and was stopped. It has been "
    "logged; please try it again later from its page; the file is kept."
)
# A running job older than the job timeout plus this margin cannot still be alive.
STALE_MARGIN = timedelta(minutes=2)
SWEEP_SCHEDULE_NAME = "detection: fail analyses left running by dead workers"


# Stored names stay far below the 255 bytes a file system allows per name, whatever the script.
STORED_STEM_BYTES = 100
STORED_SUFFIX_BYTES = 10


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _size(size: int) -> str:
    """Bytes in words ("4.2 GB"), with a plain space for the API's messages."""
    return filesizeformat(size).replace("\xa0", " ")


def _utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` that is at most `limit` bytes in UTF-8."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _storage_name(original_name: str) -> str:
    """A safe file name for the upload: the original's, cut to a size in bytes that every
    file system accepts (an analysis has its own folder, so names never collide)."""
    path = PurePosixPath(original_name.replace("\\", "/"))
    stem = _utf8_prefix(path.stem, STORED_STEM_BYTES)
    suffix = _utf8_prefix(path.suffix.lower(), STORED_SUFFIX_BYTES)
    try:
        return get_valid_filename(f"{stem}{suffix}")
    except SuspiciousFileOperation:
        return get_valid_filename(f"upload{suffix}") if suffix.strip(".") else "upload"


# The escapes browsers (and requests) write in a multipart file name for `"`, CR and LF, as the
# HTML standard has them do; Django's parser drops control characters, so CR and LF go.
_FORM_NAME_ESCAPES = {"%22": '"', "%0D": "", "%0A": ""}


def _form_name(name: str) -> str:
    """A multipart file name with those three escapes undone, and nothing else decoded."""
    return re.sub("%22|%0D|%0A", lambda escape: _FORM_NAME_ESCAPES[escape.group()], name)


def _name_cut(name: str, limit: int = 255) -> str:
    """The name as the owner gave it, cut to `limit` characters from the end of its stem so
    that the extension (which a download's name needs) survives."""
    if len(name) <= limit:
        return name
    suffix = PurePosixPath(name).suffix
    if not suffix or len(suffix) > 16:
        return name[:limit]
    return name[: limit - len(suffix)] + suffix


def _upload_check(file: UploadedFile) -> str:
    """The media type of an acceptable upload; raises UploadRefused otherwise. Reads the
    content, never trusts the name or the browser's content type."""
    limit = settings.DETECTION_MAX_UPLOAD_BYTES
    if not file.size:
        raise UploadEmpty("The file is empty.")
    if file.size > limit:
        raise UploadTooLarge(
            f"The file is too large ({_megabytes(file.size)}); the limit is {_megabytes(limit)}."
        )
    file.seek(0)
    head = file.read(inference.SNIFF_BYTES)
    file.seek(0)
    media_type = inference.sniff_media_type(head)
    if media_type is None:
        raise UploadUnsupported(inference.sniff_refusal(head) or _unreadable_content(file.name or ""))
    return media_type


# What the names of files the site reads end with; a name alone proves nothing (_upload_check).
NAMED_LIKE_MEDIA = {
    "photo": (".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".gif", ".avif"),
    "video": (".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv"),
}


def _unreadable_content(name: str) -> str:
    """Why a file whose content is no photo or video the site reads is refused: one named like
    one is damaged or something else renamed, which "not a supported type" would not say."""
    for kind, suffixes in NAMED_LIKE_MEDIA.items():
        if name.lower().endswith(suffixes):
            return (
                f"This file is named like a {kind}, but its content is not one the site can read: it may be "
                f"damaged, or another kind of file renamed. Upload {SUPPORTED_FORMATS}."
            )
    return f"This file is not a supported type. Upload {SUPPORTED_FORMATS}."


def _sha256(file: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def _pending_check(*, pending: int) -> None:
    most_pending = settings.DETECTION_USER_PENDING
    if most_pending and pending >= most_pending:
        raise TooManyPending(
            f"You have {pending} {'analysis' if pending == 1 else 'analyses'} waiting or running, the "
            "most one account may have at once. Upload more when some are done."
        )


def _room_check(*, owner: AbstractBaseUser, size: int) -> None:
    """Raises StorageQuotaFull or TooManyPending when the owner's account cannot take this
    upload (settings.DETECTION_USER_STORAGE_BYTES, DETECTION_USER_PENDING; 0 is no limit)."""
    quota, most_pending = settings.DETECTION_USER_STORAGE_BYTES, settings.DETECTION_USER_PENDING
    if not quota and not most_pending:
        return
    usage = selectors.analysis_usage(owner=owner)
    _pending_check(pending=usage.pending)
    if quota and size > quota:
        raise StorageQuotaFull(
            f"This file ({_size(size)}) is larger than the {_size(quota)} one account may keep in all."
        )
    if quota and usage.stored_bytes + size > quota:
        raise StorageQuotaFull(
            f"Your analyses keep {_size(usage.stored_bytes)} of the {_size(quota)} one account may "
            f"keep, and this file ({_size(size)}) does not fit. Delete "
            "analyses you no longer need to make room."
        )


def _rate_count(*, owner: AbstractBaseUser) -> None:
    """Count one upload of the owner (whose row the caller has locked), or raise
    UploadRateLimited when the upload rate limit is reached."""
    wait = upload_count(user=owner)
    if wait is not None:
        raise UploadRateLimited(rate_limit_message(wait=wait), wait=wait)


def analysis_create(*, owner: AbstractBaseUser, file: UploadedFile) -> Analysis:
    """Store an upload and queue its analysis once the transaction commits.

    Raises UploadRefused (nothing is stored) when the file is empty, too large, not a supported
    image or video, more than the owner's account may hold, or past the upload rate limit
    (UploadRateLimited; a stored upload is counted in it).
    """
    media_type = _upload_check(file)
    original_name = _name_cut(PurePosixPath(_form_name(file.name or "upload").replace("\\", "/")).name)
    analysis = Analysis(
        owner=owner,
        original_name=original_name or "upload",
        media_type=media_type,
        size=file.size,
        sha256=_sha256(file),
    )
    counted = False
    try:
        with transaction.atomic():
            # One upload of an account at a time past this point, so two at once cannot both
            # take the last room: the owner's row is locked on PostgreSQL (a log-in's
            # last_login update waits for the file copy); SQLite's transactions here are
            # IMMEDIATE, one writer at a time anyway.
            get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
            _room_check(owner=owner, size=analysis.size)
            _rate_count(owner=owner)
            counted = True
            analysis.file.save(_storage_name(analysis.original_name), file, save=False)
            analysis.save(force_insert=True)
            transaction.on_commit(partial(analysis_enqueue, analysis_id=analysis.pk))
    except BaseException as exc:
        # Whatever failed (a full disk half-way through the file, the database, the commit),
        # nothing of this upload stays: not a partial file, not its folder, not its count.
        if counted:
            upload_uncount(user=owner)
        _folder_delete(folder=_analysis_folder(analysis.pk))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            logger.error("no space left to store an upload of %d bytes", analysis.size)
            raise StorageFull(
                "The server has no room to store your file right now. Please try again later."
            ) from exc
        raise
    return analysis


# What an analysis is before its first run and keeps through every run: the upload itself, who
# made it and when. Every other field goes back to its default when the analysis is run again,
# the count of its queue messages too (a new run gets DETECTION_MAX_ENQUEUES of its own), and
# its queue token is a new one at once: a worker still busy with the last run (stopped by an
# administrator, say) can no longer write to the analysis (analysis_run checks its token).
KEPT_WHEN_RUN_AGAIN = frozenset(
    {"id", "owner", "file", "original_name", "media_type", "size", "sha256", "created_at"}
)


def analysis_rerun(*, analysis: Analysis) -> Analysis:
    """Analyse a finished upload again, with the models installed now (a failed run, or a
    result from an earlier model): its result, rows and files, is deleted, the upload is kept,
    and it is queued as a new upload is, and counted as one in the upload rate limit. Raises
    NotFinished while it is queued or running, FileUnreadable when it failed on its file
    itself (it would fail the same way), TooManyPending when its owner has
    DETECTION_USER_PENDING analyses waiting, and UploadRateLimited past the upload rate limit."""
    counted = False
    try:
        with transaction.atomic():
            get_user_model().objects.select_for_update().filter(pk=analysis.owner_id).first()  # as analysis_create
            again = Analysis.objects.select_for_update().filter(pk=analysis.pk, status__in=Analysis.FINISHED).first()
            if again is None:
                raise NotFinished("This analysis is still waiting or running; it can be run again once it is done.")
            if again.file_unreadable:
                raise FileUnreadable(
                    "This analysis failed because of the file itself, so running it again would fail the "
                    "same way. Upload a fresh copy from where the file came from, or the file saved again "
                    "as JPEG or MP4."
                )
            _pending_check(pending=selectors.analysis_usage(owner=again.owner).pending)
            _rate_count(owner=again.owner)
            counted = True
            again.tracks.all().delete()
            again.frames.all().delete()  # and their faces
            for field in Analysis._meta.concrete_fields:
                if field.name not in KEPT_WHEN_RUN_AGAIN:
                    setattr(again, field.attname, field.get_default())
            again.queue_token = uuid.uuid4().hex  # replaced again when it is queued
            again.save()
            folder, upload = _analysis_folder(again.pk), again.file.name
            transaction.on_commit(partial(_folder_delete, folder=folder, keep={upload}))
            transaction.on_commit(partial(analysis_enqueue, analysis_id=again.pk))
    except BaseException:
        if counted:  # counted, but the run again did not happen (a write or the commit failed)
            upload_uncount(user=analysis.owner)
        raise
    return again


def analysis_enqueue(*, analysis_id) -> None:
    """Hand a queued analysis to a worker with a new queue token (a message carrying an older
    token is then skipped). If the queue itself is down the analysis fails with a message
    instead of staying queued forever."""
    token = uuid.uuid4().hex
    sent = Analysis.objects.filter(pk=analysis_id, status=Analysis.Status.QUEUED).update(
        queue_token=token, enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1
    )
    if not sent:
        return
    try:
        workers.queue_key_record()
        async_task(
            "detection.tasks.analysis_run_task",
            analysis_id,
            token,
            task_name=f"analysis-{analysis_id}",
            group="analysis",
        )
    except Exception:
        logger.exception("could not queue analysis %s", analysis_id)
        analysis_fail(analysis_id=analysis_id, message=QUEUE_DOWN_MESSAGE)


def sweep_schedule_update() -> None:
    """Run the sweep every DETECTION_SWEEP_MINUTES on the cluster's schedule."""
    Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={
            "func": "detection.tasks.analysis_fail_stale_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.DETECTION_SWEEP_MINUTES,
            "repeats": -1,
        },
    )


def _analysis_start(*, analysis_id, token: str | None) -> Analysis | None:
    """Move a queued analysis to running and return it; None when there is nothing to run.

    `token` is the queue token the message carried (None: a message from before tokens)."""
    # A message delivered again while its analysis runs: whether that run's worker lives can
    # take seconds to tell (another host's, workers.worker_is_alive), so it is asked before the
    # row is locked; under the lock, a run that changed meanwhile is left alone.
    seen = Analysis.objects.filter(pk=analysis_id).values_list("status", "worker", "queue_token").first()
    alive = seen is not None and seen[0] == Analysis.Status.RUNNING and workers.worker_is_alive(seen[1])
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
        if analysis is None:
            logger.info("analysis %s was deleted before it ran", analysis_id)
            return None
        if token is not None and analysis.queue_token and token != analysis.queue_token:
            logger.info("analysis %s: skipping a message that was superseded", analysis_id)
            return None
        if analysis.is_finished:
            # Expected when a message outlived its job: its lease ran out while the job was
            # being finished, or the message was sent again (detection/broker.py): nothing to do.
            logger.info("analysis %s delivered again after it finished; skipped", analysis_id)
            return None
        if analysis.status == Analysis.Status.RUNNING:
            # Delivered again while running: the cluster holding the message stopped renewing
            # its hold, or gave it back as it stopped. Its worker still alive, on any host (a
            # stopping cluster finishes its jobs): leave the job to it.
            if seen != (analysis.status, analysis.worker, analysis.queue_token):
                logger.info("analysis %s: another run started while this message was delivered again", analysis_id)
                return None
            if alive:
                logger.warning("analysis %s delivered again while %s runs it", analysis_id, analysis.worker)
                return None
            # Otherwise that worker died (or, on another host, cannot be seen: the message's
            # return is then the sign its cluster died).
            logger.warning("analysis %s delivered again after its worker died", analysis_id)
            _analysis_finish_failed(analysis=analysis, message=INTERRUPTED_MESSAGE)
            return None
        analysis.status = Analysis.Status.RUNNING
        analysis.progress = 0.0
        analysis.started_at = timezone.now()
        analysis.worker = workers.worker_name()
        analysis.save(update_fields=["status", "progress", "started_at", "worker"])
    return analysis


def _progress_recorder(analysis_id, token: str):
    """A callback for the detector that saves progress in steps of at least 2%, while the run
    of queue token `token` is the analysis's run."""
    saved = 0.0

    def record(fraction: float) -> None:
        nonlocal saved
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - saved < 0.02:
            return
        saved = fraction
        Analysis.objects.filter(pk=analysis_id, status=Analysis.Status.RUNNING, queue_token=token).update(
            progress=fraction
        )

    return record


def _in_users_words(message: str, *, analysis: Analysis) -> str:
    """The engine's message with the file named as its owner named it: the engine knows only
    the stored file, whose name is made safe for the disk ("a22bcd.jpg" for "a\"b<c>d.jpg")."""
    stored = PurePosixPath(analysis.file.name).name
    return message.replace(stored, analysis.original_name) if stored else message


def analysis_run(*, analysis_id, token: str | None = None) -> None:
    """Analyse a queued upload through the `ml` engine and save the result.

    Every run ends with the analysis done or failed with a message a person can read. A
    message whose `token` is not the analysis's latest is skipped.
    """
    analysis = _analysis_start(analysis_id=analysis_id, token=token)
    if analysis is None:
        return
    run = analysis.queue_token  # every write of this run checks it is still the analysis's run
    try:
        result = inference.analyze(analysis.file.path, progress=_progress_recorder(analysis.pk, run))
        _analysis_save_result(analysis=analysis, result=result)
    except Exception as exc:
        still_this_run = Analysis.objects.filter(pk=analysis.pk, status=Analysis.Status.RUNNING, queue_token=run)
        if not _database_retried(still_this_run.exists):
            # deleted (its upload with it) or stopped while it ran: not a fault of the site
            logger.info("analysis %s was deleted or stopped while it ran (%s)", analysis.pk, type(exc).__name__)
            return
        _analysis_run_failed(analysis=analysis, token=run, exc=exc)


# Seconds to wait before each new try while the database is away: a cut of up to 15 s.
DATABASE_RETRY_WAITS = (1, 2, 4, 8)


def _database_retried(work):
    """`work()` (a database read or write), tried again after a wait while the database is
    away. A run that failed in a database cut could not record its failure either, and stayed
    "running" until the stale sweep (32 minutes) in a QA pass (2026-11-27, a 3 s cut)."""
    for wait in (*DATABASE_RETRY_WAITS, None):
        try:
            return work()
        except (OperationalError, InterfaceError):
            if wait is None:
                raise
            logger.warning("the database cannot be reached; trying again in %d s", wait)
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()  # the next query connects afresh
            time.sleep(wait)


def _analysis_run_failed(*, analysis: Analysis, token: str, exc: Exception) -> None:
    """Fail the run with the message its exception calls for, logged where the site is at fault."""
    if isinstance(exc, inference.MediaMissingError):
        logger.error("analysis %s: its upload is gone from storage", analysis.pk, exc_info=exc)
        _failure_recorded(analysis_id=analysis.pk, message=INTERNAL_ERROR_MESSAGE, token=token)
    elif isinstance(exc, inference.MediaError):
        # too large for the pixel budget: a setting the operator may raise, after which running
        # it again works; any other unreadable file would fail the same way for ever
        _failure_recorded(
            analysis_id=analysis.pk,
            message=_in_users_words(str(exc), analysis=analysis),
            token=token,
            file_unreadable=not isinstance(exc, inference.MediaTooLargeError),
        )
    elif isinstance(exc, inference.CheckpointError):
        logger.error("analysis %s: the detector could not be loaded", analysis.pk, exc_info=exc)
        _failure_recorded(analysis_id=analysis.pk, message=MODEL_MISSING_MESSAGE, token=token)
    else:
        logger.error("analysis %s failed", analysis.pk, exc_info=exc)
        disk_full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
        _failure_recorded(analysis_id=analysis.pk, message=DISK_FULL_MESSAGE if disk_full else INTERNAL_ERROR_MESSAGE, token=token)


def _failure_recorded(**fail) -> None:
    """analysis_fail(**fail), tried again while the database is away (the log line is written
    once, before)."""
    _database_retried(lambda: analysis_fail(**fail))


def _analysis_save_result(*, analysis: Analysis, result) -> None:
    try:
        with transaction.atomic():
            still_running = (  # and still this run: not stopped and run again meanwhile
                Analysis.objects.select_for_update()
                .filter(pk=analysis.pk, status=Analysis.Status.RUNNING, queue_token=analysis.queue_token)
                .exists()
            )
            if not still_running:
                logger.info("analysis %s was deleted or stopped while it ran", analysis.pk)
                return
            rows = inference.result_rows(analysis, result)
            for row, field_name, name, content in rows.files:
                getattr(row, field_name).save(name, ContentFile(content), save=False)
            for name, value in inference.result_fields(result).items():
                setattr(analysis, name, value)
            analysis.status = Analysis.Status.DONE
            analysis.progress = 1.0
            analysis.error = ""
            analysis.finished_at = timezone.now()
            analysis.save()
            AnalysisFrame.objects.bulk_create(rows.frames)
            for frame, face in rows.faces:
                face.frame = frame  # picks up the primary key bulk_create assigned
            AnalysisFace.objects.bulk_create([face for _, face in rows.faces])
            AnalysisTrack.objects.bulk_create(rows.tracks)
    except BaseException:
        # Every result file, also the one being written when it failed (a full disk leaves it
        # truncated); the upload stays.
        _folder_delete(folder=_analysis_folder(analysis.pk), keep={analysis.file.name})
        raise


def _analysis_finish_failed(*, analysis: Analysis, message: str) -> None:
    analysis.status = Analysis.Status.FAILED
    analysis.error = message
    analysis.finished_at = timezone.now()
    analysis.save(update_fields=["status", "error", "finished_at"])


def analysis_fail(*, analysis_id, message: str, token: str | None = None, file_unreadable: bool = False) -> bool:
    """Mark an unfinished analysis failed with a message; False if it had already finished.
    `file_unreadable`: the file itself is at fault, and running it again will not help.

    `token`: the queue token of the run that failed. A run that was stopped and then run again
    (analysis_rerun) may still end in an old worker; its failure must not fail the new run."""
    unfinished = Analysis.objects.filter(pk=analysis_id, status__in=[Analysis.Status.QUEUED, Analysis.Status.RUNNING])
    if token is not None:  # "" too: an analysis queued before tokens, whose runs carry ""
        unfinished = unfinished.filter(queue_token=token)
    updated = unfinished.update(
        status=Analysis.Status.FAILED, error=message, file_unreadable=file_unreadable, finished_at=timezone.now()
    )
    return bool(updated)


def analysis_fail_stale(*, now: datetime | None = None) -> int:
    """Fail the analyses left `running` by a worker that died; returns how many.

    An analysis is stale when its worker is known to be dead on any host (workers.workers_dead:
    its process gone on this host, or absent from every cluster's status for a while), or when
    it started longer ago than the job timeout allows.
    """
    now = now or timezone.now()
    running = Analysis.objects.filter(status=Analysis.Status.RUNNING)
    deadline = now - timedelta(seconds=settings.DETECTION_JOB_TIMEOUT) - STALE_MARGIN
    # Each with the token of the run found stale: a run started since is not failed for it.
    stale = dict(running.filter(started_at__lt=deadline).values_list("pk", "queue_token"))
    runs = list(running.exclude(worker="").values_list("pk", "worker", "queue_token"))
    dead = workers.workers_dead({worker for _, worker, _ in runs})
    for pk, worker, token in runs:
        if worker in dead:
            stale[pk] = token
    failed = []
    for pk, token in stale.items():
        if analysis_fail(analysis_id=pk, message=INTERRUPTED_MESSAGE, token=token):
            logger.warning("analysis %s was left running by a dead worker", pk)
            failed.append(token)
    if failed:
        queue_runs_drop(tokens=set(failed) - {None, ""})
    return len(failed)


def queue_runs_drop(*, tokens: set[str]) -> int:
    """Delete the queue messages of these runs (failed: their worker died). A cluster whose
    worker was killed while the cluster lived on (out of memory) still holds that run's
    message and renews it; it would count against the cluster's hold limit for up to
    LeasedORM.longest_hold, and two such kills would leave it taking no job at all."""
    if not tokens:
        return 0
    return get_broker().drop(lambda payload: selectors.queue_token_of(payload) in tokens)


def queue_release_dead() -> int:
    """Give the messages that dead clusters held back to the queue (Redis; the database
    queue's leases run out by themselves); returns how many. Those waiting then run; the one a
    dead worker was running finds its analysis `running` and fails it (analysis_run)."""
    broker = get_broker()
    if not isinstance(broker, ReliableRedis):
        return 0
    return broker.release_dead()


def analysis_sweep_dead() -> int:
    """What every worker's watch runs (workers.watch_start): the messages of dead clusters go
    back to the queue and the analyses of dead workers fail. Returns how many failed."""
    queue_release_dead()
    return analysis_fail_stale()


def analysis_requeue_lost(*, now: datetime | None = None) -> tuple[int, int]:
    """Send again the queued analyses whose message is in no queue; returns (re-queued,
    failed).

    A message is lost when no worker could read it, or the queue lost it (the messages a dead
    Redis cluster held are not lost: `queue_release_dead` gives them back, and until then they
    count as waiting). An analysis queued for longer than DETECTION_REQUEUE_AFTER without a
    message in the queue gets a new one; after DETECTION_MAX_ENQUEUES
    messages it fails with a message instead. Were the old message only held up after all, it
    is harmless: its token is out of date and it is skipped.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DETECTION_REQUEUE_AFTER)
    candidates = list(
        Analysis.objects.filter(status=Analysis.Status.QUEUED)
        .filter(_enqueued_before(cutoff))
        .values_list("pk", "queue_token", "enqueue_count")
    )
    if not candidates:
        return 0, 0
    waiting = selectors.queue_tokens_waiting()
    requeued = failed = 0
    for pk, token, count in candidates:
        if token and token in waiting:
            continue
        if count >= settings.DETECTION_MAX_ENQUEUES:
            if analysis_fail(analysis_id=pk, message=LOST_MESSAGE):
                logger.error("analysis %s: lost by the queue %d times, failed", pk, count)
                failed += 1
            continue
        logger.warning("analysis %s: its queue message was lost; queuing it again", pk)
        analysis_enqueue(analysis_id=pk)
        requeued += 1
    return requeued, failed


def _enqueued_before(cutoff: datetime) -> Q:
    """Queued before `cutoff`; rows from before queue tokens count from their upload time."""
    return Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff)


@dataclass(frozen=True)
class SweepReport:
    running_failed: int
    requeued: int
    queued_failed: int

    def __str__(self) -> str:
        return (
            f"{self.running_failed} stale analyses marked failed, {self.requeued} lost analyses "
            f"queued again, {self.queued_failed} lost analyses marked failed"
        )


def analysis_sweep(*, now: datetime | None = None) -> SweepReport:
    """Everything a dead or misconfigured worker can leave behind: messages dead clusters held
    go back to the queue, `running` analyses of dead workers are failed, `queued` analyses
    whose message was lost are sent again (or failed)."""
    queue_release_dead()
    running_failed = analysis_fail_stale(now=now)
    requeued, queued_failed = analysis_requeue_lost(now=now)
    return SweepReport(running_failed, requeued, queued_failed)


def analysis_delete(*, analysis: Analysis) -> None:
    """Delete an analysis, its stored upload and its heatmaps."""
    names = [f.name for f in (analysis.file, analysis.thumbnail) if f]
    names += AnalysisFace.objects.filter(frame__analysis=analysis).exclude(heatmap="").values_list("heatmap", flat=True)
    names += analysis.frames.exclude(image="").values_list("image", flat=True)
    folder = _analysis_folder(analysis.pk)
    with transaction.atomic():
        analysis.delete()
        transaction.on_commit(partial(_files_delete, names=names, folder=folder))


def analysis_delete_all(*, owner: AbstractBaseUser) -> int:
    """Delete every analysis of `owner` with its files (their account is being deleted);
    how many there were. Deleting a user's row alone would leave the files behind."""
    return analysis_delete_many(owner=owner, analysis_ids=Analysis.objects.filter(owner=owner).values_list("pk", flat=True))


def _analysis_folder(analysis_id) -> str:
    return f"analyses/{analysis_id.hex}"


def _files_delete(*, names: list[str], folder: str) -> None:
    for name in names:
        default_storage.delete(name)
    _folder_delete(folder=folder)


def _folder_delete(*, folder: str, keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Delete every file under a storage folder but those named in `keep`, then the folders
    left empty where the storage has real folders (a local file system). Logged, never
    raised: it runs while another error is being reported, or after a delete was committed."""
    try:
        subfolders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    except OSError:
        logger.exception("could not list %s to clean it up", folder)
        return
    for sub in subfolders:
        _folder_delete(folder=f"{folder}/{sub}", keep=keep)
    for name in files:
        if f"{folder}/{name}" in keep:
            continue
        try:
            default_storage.delete(f"{folder}/{name}")
        except OSError:
            logger.exception("could not delete %s/%s", folder, name)
    try:
        path = default_storage.path(folder)
    except NotImplementedError:
        return
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        if not keep:  # a folder holding a kept file is not empty, as expected
            logger.exception("could not remove the folder %s", folder)


def analysis_delete_many(*, owner: AbstractBaseUser, analysis_ids: list) -> int:
    """Delete the owner's analyses among `analysis_ids`, with their files; others' are left
    alone. Returns how many were deleted."""
    analyses = Analysis.objects.filter(owner=owner, pk__in=analysis_ids)
    deleted = 0
    with transaction.atomic():
        for analysis in analyses:
            analysis_delete(analysis=analysis)
            deleted += 1
    return deleted
