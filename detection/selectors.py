"""Reads: the analyses a user may see. Nothing here returns another user's data."""

from __future__ import annotations

from time import monotonic, sleep

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from .models import Analysis, AnalysisFace, AnalysisFrame

ORDERINGS = ("-created_at", "created_at")
WAIT_POLL_SECONDS = 0.25


def analysis_list(
    *,
    owner: AbstractBaseUser,
    status: str | None = None,
    verdict: str | None = None,
    media_type: str | None = None,
    ordering: str = "-created_at",
) -> QuerySet[Analysis]:
    """The owner's analyses, newest first unless `ordering` says otherwise."""
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}")
    analyses = Analysis.objects.filter(owner=owner)
    if status:
        analyses = analyses.filter(status=status)
    if verdict:
        analyses = analyses.filter(verdict=verdict)
    if media_type:
        analyses = analyses.filter(media_type=media_type)
    return analyses.order_by(ordering, "pk")


def analysis_get(*, owner: AbstractBaseUser, analysis_id) -> Analysis | None:
    return Analysis.objects.filter(owner=owner, pk=analysis_id).first()


def analysis_get_detail(*, owner: AbstractBaseUser, analysis_id) -> Analysis | None:
    """An analysis with its frames and their faces loaded in two extra queries."""
    faces = AnalysisFace.objects.order_by("index")
    frames = AnalysisFrame.objects.order_by("index").prefetch_related(
        Prefetch("faces", queryset=faces)
    )
    return (
        Analysis.objects.filter(owner=owner, pk=analysis_id)
        .prefetch_related(Prefetch("frames", queryset=frames), "tracks")
        .first()
    )


def analysis_wait(
    *,
    owner: AbstractBaseUser,
    analysis_id,
    seconds: float,
) -> Analysis | None:
    """Poll until the analysis is done or failed, or `seconds` have passed; return its
    detail either way."""
    deadline = monotonic() + seconds
    while True:
        analysis = analysis_get(owner=owner, analysis_id=analysis_id)
        remaining = deadline - monotonic()
        if analysis is None or analysis.is_finished or remaining <= 0:
            break
        sleep(min(WAIT_POLL_SECONDS, remaining))
    return analysis_get_detail(owner=owner, analysis_id=analysis_id)


def analysis_face_get(*, owner: AbstractBaseUser, analysis_id, face_id: int) -> AnalysisFace | None:
    return (
        AnalysisFace.objects.filter(
            pk=face_id, frame__analysis_id=analysis_id, frame__analysis__owner=owner
        )
        .exclude(heatmap="")
        .first()
    )
