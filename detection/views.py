"""Web pages: front page, upload, history, detail and delete. Each view is linear: form,
service, redirect."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deepfake_site.uploads import upload_limit_message, upload_was_too_large

from . import selectors, services
from .forms import AnalysisFilterForm, AnalysisSelectionForm, AnalysisUploadForm

HISTORY_PAGE_SIZE = 20
# At most this many rows are asked about in one status poll (a page of the history).
STATUS_POLL_LIMIT = 100


def home(request):
    """What the site does, for visitors; signed-in people go straight to the upload page."""
    if request.user.is_authenticated:
        return redirect("detection:upload")
    limit_mb = settings.DETECTION_MAX_UPLOAD_BYTES // (1024 * 1024)
    return render(
        request, "home.html", {"limit_mb": limit_mb, "formats": services.SUPPORTED_FORMATS}
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    form = AnalysisUploadForm()
    if request.method == "POST":
        form = AnalysisUploadForm(request.POST, request.FILES)
        if upload_was_too_large(request):  # reading stopped at the limit: no file to show
            form = AnalysisUploadForm()
            messages.error(request, upload_limit_message())
        elif form.is_valid():
            files = form.cleaned_data["file"]
            created = []
            for file in files:
                try:
                    created.append(services.analysis_create(owner=request.user, file=file))
                except (services.UploadRefused, services.StorageFull) as exc:
                    form.add_error("file", f"{file.name}: {exc}" if len(files) > 1 else str(exc))
            for analysis in created:
                messages.success(request, f"{analysis.original_name} was uploaded and queued.")
            if len(created) == len(files) == 1:
                return redirect("detection:detail", analysis_id=created[0].pk)
            if len(created) == len(files):
                return redirect("detection:history")
    limit_bytes = settings.DETECTION_MAX_UPLOAD_BYTES
    return render(
        request,
        "detection/upload.html",
        {
            "form": form,
            "limit_mb": limit_bytes // (1024 * 1024),
            "limit_bytes": limit_bytes,
            "formats": services.SUPPORTED_FORMATS,
        },
    )


@login_required
def history(request):
    """The user's analyses; staff may add ?user=<username> to look at anyone's, read-only."""
    owner = request.user
    if request.GET.get("user"):
        owner = selectors.user_get_for_staff(viewer=request.user, username=request.GET["user"])
        if owner is None:
            raise Http404("No such user")
    filters = AnalysisFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    analyses = selectors.analysis_list(
        owner=owner,
        name=chosen.get("q"),
        status=chosen.get("status"),
        verdict=chosen.get("verdict"),
        media_type=chosen.get("media_type"),
        uploaded_from=chosen.get("uploaded_from"),
        uploaded_to=chosen.get("uploaded_to"),
    )
    page = Paginator(analyses, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    filtered = any(value for key, value in query.items() if key != "user")
    return render(
        request,
        "detection/history.html",
        {
            "filters": filters,
            "filtered": filtered,
            "page": page,
            "query": query.urlencode(),
            "owner": owner,
            "staff_view": owner != request.user,
        },
    )


@login_required
@require_GET
def statuses(request):
    """Status, progress and result of the user's analyses listed as ?id=...&id=... (JSON)."""
    try:
        ids = [uuid.UUID(value) for value in request.GET.getlist("id")[:STATUS_POLL_LIMIT]]
    except ValueError:
        return JsonResponse({"detail": "Malformed analysis id."}, status=400)
    analyses = selectors.analysis_list_statuses(owner=request.user, analysis_ids=ids)
    return JsonResponse(
        {
            "analyses": [
                {
                    "id": str(analysis.pk),
                    "status": analysis.status,
                    "status_label": analysis.get_status_display(),
                    "progress": analysis.progress,
                    "verdict": analysis.verdict,
                    "verdict_label": analysis.get_verdict_display(),
                    "fake_probability": analysis.fake_probability,
                }
                for analysis in analyses
            ]
        }
    )


@login_required
def detail(request, analysis_id):
    analysis = selectors.analysis_get_for_viewer(viewer=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    return render(
        request,
        "detection/detail.html",
        {"analysis": analysis, "staff_view": analysis.owner_id != request.user.pk},
    )


@login_required
@require_GET
def file(request, analysis_id):
    """The original upload, for its owner and for staff."""
    analysis = selectors.analysis_get_for_viewer(viewer=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    return FileResponse(
        analysis.file.open("rb"), as_attachment=True, filename=analysis.original_name
    )


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


@login_required
@require_POST
def delete_many(request):
    """Asks for a confirmation of the analyses selected in the history, then deletes them."""
    form = AnalysisSelectionForm(request.POST, owned=selectors.analysis_list(owner=request.user))
    if not form.is_valid():
        for error in form.errors.get("ids", []):
            messages.error(request, error)
        return redirect("detection:history")
    chosen = form.cleaned_data["ids"]
    if not form.cleaned_data["confirmed"]:
        return render(request, "detection/delete_many.html", {"analyses": chosen})
    deleted = services.analysis_delete_many(
        owner=request.user, analysis_ids=[analysis.pk for analysis in chosen]
    )
    messages.success(
        request, f"{deleted} {'analysis was' if deleted == 1 else 'analyses were'} deleted."
    )
    return redirect("detection:history")
