"""Web pages: upload, history, detail and delete. Each view is linear: form, service, redirect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .forms import AnalysisFilterForm, AnalysisUploadForm

HISTORY_PAGE_SIZE = 20


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    form = AnalysisUploadForm()
    if request.method == "POST":
        form = AnalysisUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                analysis = services.analysis_create(
                    owner=request.user, file=form.cleaned_data["file"]
                )
            except services.UploadRefused as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, f"{analysis.original_name} was uploaded and queued.")
                return redirect("detection:detail", analysis_id=analysis.pk)
    limit_mb = settings.DETECTION_MAX_UPLOAD_BYTES // (1024 * 1024)
    return render(
        request,
        "detection/upload.html",
        {"form": form, "limit_mb": limit_mb, "formats": services.SUPPORTED_FORMATS},
    )


@login_required
def history(request):
    filters = AnalysisFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    analyses = selectors.analysis_list(
        owner=request.user, status=chosen.get("status"), verdict=chosen.get("verdict")
    )
    page = Paginator(analyses, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "detection/history.html",
        {"filters": filters, "page": page, "query": query.urlencode()},
    )


@login_required
def detail(request, analysis_id):
    analysis = selectors.analysis_get_detail(owner=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    return render(request, "detection/detail.html", {"analysis": analysis})


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, analysis_id):
    analysis = selectors.analysis_get(owner=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    if request.method == "POST":
        services.analysis_delete(analysis=analysis)
        messages.success(request, f"{analysis.original_name} and its results were deleted.")
        return redirect("detection:history")
    return render(request, "detection/delete.html", {"analysis": analysis})
