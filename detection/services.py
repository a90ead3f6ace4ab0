"""Writes: create, run, fail and delete analyses. Keyword-only, typed, named <entity>_<action>."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from datetime import datetime, timedelta
from functools import partial
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename
from django_q.tasks import async_task

from . import inference
from .models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = (
    "a photo (JPEG, PNG, WebP, BMP, GIF) or a video (MP4, MOV, AVI, WebM, MKV)"
)
INTERRUPTED_MESSAGE = (
    "The analysis was interrupted because the worker running it stopped (a restart, or it ran "
    "out of memory). Upload the file again to retry."
)
INTERNAL_ERROR_MESSAGE = (
    "The analysis failed because of an internal error. It has been logged; please try again "
    "later."
)
MODEL_MISSING_MESSAGE = (
    "The detection model is not available on this server. An administrator has to install it."
)
QUEUE_DOWN_MESSAGE = (
    "The analysis could not be queued because the task queue is unavailable. Please upload the "
    "file again later."
)
# A running job older than the job timeout plus this margin cannot still be alive.
STALE_MARGIN = timedelta(minutes=2)


class UploadRefused(Exception):
    """An upload that is not accepted. The message is written for the person uploading."""


class UploadEmpty(UploadRefused):
    pass


class UploadTooLarge(UploadRefused):
    pass


class UploadUnsupported(UploadRefused):
    pass


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _storage_name(original_name: str) -> str:
    path = PurePosixPath(original_name.replace("\\", "/"))
    stem = path.stem[:80]
    suffix = path.suffix[:10].lower()
    try:
        return get_valid_filename(f"{stem}{suffix}")
    except SuspiciousFileOperation:
        return get_valid_filename(f"upload{suffix}") if suffix.strip(".") else "upload"


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
        raise UploadUnsupported(
            f"This file is not a supported type. Upload {SUPPORTED_FORMATS}."
        )
    return media_type


def _sha256(file: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def analysis_create(*, owner: AbstractBaseUser, file: UploadedFile) -> Analysis:
    """Store an upload and queue its analysis once the transaction commits.

    Raises UploadRefused (nothing is stored) when the file is empty, too large or not a
    supported image or video.
    """
    media_type = _upload_check(file)
    original_name = PurePosixPath((file.name or "upload").replace("\\", "/")).name[:255]
    analysis = Analysis(
        owner=owner,
        original_name=original_name or "upload",
        media_type=media_type,
        size=file.size,
        sha256=_sha256(file),
    )
    with transaction.atomic():
        analysis.file.save(_storage_name(analysis.original_name), file, save=False)
        try:
            analysis.save(force_insert=True)
        except BaseException:
            analysis.file.delete(save=False)
            raise
        transaction.on_commit(partial(analysis_enqueue, analysis_id=analysis.pk))
    return analysis


def analysis_enqueue(*, analysis_id) -> None:
    """Hand the analysis to a worker. If the queue itself is down the analysis fails with a
    message instead of staying queued forever."""
    try:
        async_task(
            "detection.tasks.analysis_run_task",
            analysis_id,
            task_name=f"analysis-{analysis_id}",
            group="analysis",
        )
    except Exception:
        logger.exception("could not queue analysis %s", analysis_id)
        analysis_fail(analysis_id=analysis_id, message=QUEUE_DOWN_MESSAGE)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _analysis_start(*, analysis_id) -> Analysis | None:
    """Move a queued analysis to running and return it; None when there is nothing to run."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
        if analysis is None:
            logger.info("analysis %s was deleted before it ran", analysis_id)
            return None
        if analysis.is_finished:
            logger.warning("analysis %s delivered again after it finished", analysis_id)
            return None
        if analysis.status == Analysis.Status.RUNNING:
            # A live job is never delivered twice (the queue's retry exceeds the job timeout),
            # so the worker that started this one died.
            logger.warning("analysis %s delivered again after its worker died", analysis_id)
            _analysis_finish_failed(analysis=analysis, message=INTERRUPTED_MESSAGE)
            return None
        analysis.status = Analysis.Status.RUNNING
        analysis.progress = 0.0
        analysis.started_at = timezone.now()
        analysis.worker = _worker_name()
        analysis.save(update_fields=["status", "progress", "started_at", "worker"])
    return analysis


def _progress_recorder(analysis_id):
    """A callback for the detector that saves progress in steps of at least 2%."""
    saved = 0.0

    def record(fraction: float) -> None:
        nonlocal saved
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - saved < 0.02:
            return
        saved = fraction
        Analysis.objects.filter(pk=analysis_id, status=Analysis.Status.RUNNING).update(
            progress=fraction
        )

    return record


def analysis_run(*, analysis_id) -> None:
    """Analyse a queued upload through the `ml` engine and save the result.

    Every run ends with the analysis done or failed with a message a person can read.
    """
    analysis = _analysis_start(analysis_id=analysis_id)
    if analysis is None:
        return
    try:
        result = inference.analyze(analysis.file.path, progress=_progress_recorder(analysis.pk))
        _analysis_save_result(analysis=analysis, result=result)
    except inference.MediaError as exc:
        analysis_fail(analysis_id=analysis.pk, message=str(exc))
    except inference.CheckpointError:
        logger.exception("analysis %s: the detector could not be loaded", analysis.pk)
        analysis_fail(analysis_id=analysis.pk, message=MODEL_MISSING_MESSAGE)
    except Exception:
        logger.exception("analysis %s failed", analysis.pk)
        analysis_fail(analysis_id=analysis.pk, message=INTERNAL_ERROR_MESSAGE)


def _analysis_save_result(*, analysis: Analysis, result) -> None:
    written: list[str] = []
    try:
        with transaction.atomic():
            still_running = (
                Analysis.objects.select_for_update()
                .filter(pk=analysis.pk, status=Analysis.Status.RUNNING)
                .exists()
            )
            if not still_running:
                logger.info("analysis %s was deleted or stopped while it ran", analysis.pk)
                return
            rows = inference.result_rows(analysis, result)
            for row, field_name, name, content in rows.files:
                getattr(row, field_name).save(name, ContentFile(content), save=False)
                written.append(getattr(row, field_name).name)
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
        for name in written:
            default_storage.delete(name)
        raise


def _analysis_finish_failed(*, analysis: Analysis, message: str) -> None:
    analysis.status = Analysis.Status.FAILED
    analysis.error = message
    analysis.finished_at = timezone.now()
    analysis.save(update_fields=["status", "error", "finished_at"])


def analysis_fail(*, analysis_id, message: str) -> bool:
    """Mark an unfinished analysis failed with a message; False if it had already finished."""
    updated = Analysis.objects.filter(
        pk=analysis_id, status__in=[Analysis.Status.QUEUED, Analysis.Status.RUNNING]
    ).update(status=Analysis.Status.FAILED, error=message, finished_at=timezone.now())
    return bool(updated)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def analysis_fail_stale(*, now: datetime | None = None) -> int:
    """Fail the analyses left `running` by a worker that died; returns how many.

    An analysis is stale when its worker process on this host is gone, or when it started
    longer ago than the job timeout allows (whatever host ran it).
    """
    now = now or timezone.now()
    running = Analysis.objects.filter(status=Analysis.Status.RUNNING)
    deadline = now - timedelta(seconds=settings.DETECTION_JOB_TIMEOUT) - STALE_MARGIN
    stale = set(running.filter(started_at__lt=deadline).values_list("pk", flat=True))
    host_prefix = f"{socket.gethostname()}:"
    for pk, worker in running.filter(worker__startswith=host_prefix).values_list("pk", "worker"):
        pid = worker.removeprefix(host_prefix)
        if pid.isdigit() and not _pid_alive(int(pid)):
            stale.add(pk)
    failed = 0
    for pk in stale:
        if analysis_fail(analysis_id=pk, message=INTERRUPTED_MESSAGE):
            logger.warning("analysis %s was left running by a dead worker", pk)
            failed += 1
    return failed


def analysis_delete(*, analysis: Analysis) -> None:
    """Delete an analysis, its stored upload and its heatmaps."""
    names = [f.name for f in (analysis.file, analysis.thumbnail) if f]
    names += AnalysisFace.objects.filter(frame__analysis=analysis).exclude(heatmap="").values_list("heatmap", flat=True)
    names += analysis.frames.exclude(image="").values_list("image", flat=True)
    folder = f"analyses/{analysis.pk.hex}"
    with transaction.atomic():
        analysis.delete()
        transaction.on_commit(partial(_files_delete, names=names, folder=folder))


def _files_delete(*, names: list[str], folder: str) -> None:
    for name in names:
        default_storage.delete(name)
    # Remove the analysis's now empty folders when the storage is a local file system.
    try:
        root = default_storage.path(folder)
    except NotImplementedError:
        return
    for path in (os.path.join(root, "heatmaps"), os.path.join(root, "frames"), root):
        try:
            os.rmdir(path)
        except OSError:
            pass


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
