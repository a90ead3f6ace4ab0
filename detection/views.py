"""Web pages: front page, upload, history, detail and delete. Each view is linear: form,
service, redirect."""

from __future__ import annotations

import uuid
from pathlib import PurePath

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deepfake_site.uploads import upload_limit_message, upload_was_too_large

from . import csv_export, errors, presenters, selectors, services
from .downloads import original_file_response, stored_image_response
from .forms import AnalysisFilterForm, AnalysisSelectionForm, AnalysisUploadForm
from .model_card import card_sections
from .models import Analysis
from .serializers import AnalysisDetailOutputSerializer

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
            for file in files:  # each counted in the API's upload rate limit as it is stored
                try:
                    created.append(services.analysis_create(owner=request.user, file=file))
                except (errors.UploadRefused, errors.StorageFull) as exc:
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
            "stored_bytes": selectors.analysis_usage(owner=request.user).stored_bytes,
            "storage_bytes": settings.DETECTION_USER_STORAGE_BYTES,
        },
    )


@login_required
def history(request):
    """The user's analyses; staff may add ?user=<username> to look at anyone's, read-only."""
    owner, filters, analyses = _history_selection(request)
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


def _history_selection(request):
    """Whose history (the user's, or with ?user= and the permission, anyone's), the search and
    filter form, and the analyses they select."""
    owner = request.user
    if request.GET.get("user"):
        owner = selectors.user_get_for_staff(viewer=request.user, username=request.GET["user"])
        if owner is None:
            raise Http404("No such user")
    filters = AnalysisFilterForm(request.GET)
    filters.is_valid()
    chosen = filters.cleaned_data  # the filters with valid values only
    analyses = selectors.analysis_list(
        owner=owner,
        name=chosen.get("q"),
        status=chosen.get("status"),
        verdict=chosen.get("verdict"),
        uncertain_reason=chosen.get("uncertain_reason"),
        media_type=chosen.get("media_type"),
        uploaded_from=chosen.get("uploaded_from"),
        uploaded_to=chosen.get("uploaded_to"),
    )
    return owner, filters, analyses


@login_required
@require_GET
def history_export(request):
    """The analyses the history lists with the same search and filters, every page, as CSV
    (detection/csv_export.py), streamed."""
    owner, filters, analyses = _history_selection(request)
    if filters.errors:  # the file would hold other analyses than were asked for
        wrong = "; ".join(f"{filters[name].label}: {' '.join(errors)}" for name, errors in filters.errors.items())
        return HttpResponse(f"Some filters have wrong values ({wrong}).\n", status=400, content_type="text/plain; charset=utf-8")
    lines = csv_export.csv_lines(
        analyses.iterator(chunk_size=500),
        page_url=lambda analysis: request.build_absolute_uri(reverse("detection:detail", args=[analysis.pk])),
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    whose = "" if owner == request.user else f"-{owner.get_username()}"
    name = f"deepfake-analyses{whose}-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = content_disposition_header(True, name)
    patch_cache_control(response, private=True, no_store=True)
    return response


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
                    "verdict_label": analysis.verdict_label,
                    "probability": analysis.verdict_probability,
                    "probability_label": analysis.probability_label,
                    "error": analysis.error if analysis.status == Analysis.Status.FAILED else "",
                }
                for analysis in analyses
            ]
        }
    )


def _viewable_or_404(request, analysis_id):
    analysis = selectors.analysis_get_detail(
        viewer=request.user, analysis_id=analysis_id, staff_reads_all=True
    )
    if analysis is None:
        raise Http404("No such analysis")
    return analysis


def _result_context(request, analysis) -> dict:
    return {
        "analysis": analysis,
        "staff_view": analysis.owner_id != request.user.pk,
        "result": presenters.result_view(analysis) if analysis.status == "done" else None,
        "stage": presenters.stage_for(analysis),
        "queue_position": selectors.analysis_queue_position(analysis=analysis),
        "no_worker": selectors.analysis_waits_for_no_worker(analysis=analysis),
        "stage_steps": presenters.stage_steps(),
    }


@login_required
def detail(request, analysis_id):
    analysis = _viewable_or_404(request, analysis_id)
    return render(request, "detection/detail.html", _result_context(request, analysis))


@login_required
@require_GET
def report(request, analysis_id):
    """The result on one printable page (A4), with the file's fingerprint and the model."""
    analysis = _viewable_or_404(request, analysis_id)
    return render(request, "detection/report.html", _result_context(request, analysis))


@login_required
@require_GET
def result_json(request, analysis_id):
    """The full result as a JSON download, in the API's shape."""
    analysis = _viewable_or_404(request, analysis_id)
    data = AnalysisDetailOutputSerializer(analysis, context={"request": request}).data
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    stem = PurePath(analysis.original_name).stem or "analysis"
    response["Content-Disposition"] = content_disposition_header(True, f"{stem}.result.json")
    patch_cache_control(response, private=True, no_cache=True)  # running it again changes it
    return response


@login_required
@require_GET
def progress(request, analysis_id):
    """What a queued or running analysis is doing, for its result page (owner or staff)."""
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=analysis_id, staff_reads_all=True)
    if analysis is None:
        raise Http404("No such analysis")
    stage, stage_label = presenters.stage_for(analysis)
    return JsonResponse(
        {
            "status": analysis.status,
            "finished": analysis.is_finished,
            "progress": analysis.progress,
            "stage": stage,
            "stage_label": stage_label,
            "queue_position": selectors.analysis_queue_position(analysis=analysis),
            "no_worker": selectors.analysis_waits_for_no_worker(analysis=analysis),
        }
    )


def _stored_image(file, content_type: str, *, missing: str) -> FileResponse:
    """A stored image (a FieldFile, or None when its row was not found) or a 404."""
    if not file:
        raise Http404(missing)
    return stored_image_response(file, content_type=content_type, what="image")


@login_required
@require_GET
def thumbnail(request, pk):
    """The small picture shown in the history (JPEG), for the owner and staff."""
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=pk, staff_reads_all=True)
    return _stored_image(analysis and analysis.thumbnail, "image/jpeg", missing="No thumbnail")


@login_required
@require_GET
def frame_image(request, analysis_id, frame_index: int):
    """A sampled frame (or the photo) as a web-sized JPEG, for the owner and staff."""
    frame = selectors.analysis_frame_get(
        viewer=request.user, analysis_id=analysis_id, frame_index=frame_index, staff_reads_all=True
    )
    return _stored_image(frame and frame.image, "image/jpeg", missing="No such frame")


@login_required
@require_GET
def heatmap(request, analysis_id, face_id: int):
    """A face's Grad-CAM heatmap (PNG), for the owner and staff."""
    face = selectors.analysis_face_get(
        viewer=request.user, analysis_id=analysis_id, face_id=face_id, staff_reads_all=True
    )
    return _stored_image(face and face.heatmap, "image/png", missing="No such heatmap")


@require_GET
def model_card(request):
    """The model card of the installed model: how it was trained and its known limits."""
    path = settings.DEEPFAKE_MODEL_CARD
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Http404(f"No model card at {path.name}") from None
    sections = card_sections(text)
    return render(
        request, "detection/model_card.html", {"title": sections[0]["title"], "sections": sections}
    )


@login_required
@require_GET
def file(request, analysis_id):
    """The original upload, for its owner and for staff."""
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=analysis_id, staff_reads_all=True)
    if analysis is None:
        raise Http404("No such analysis")
    return original_file_response(analysis)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, analysis_id):
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    if request.method == "POST":
        services.analysis_delete(analysis=analysis)
        messages.success(request, f"{analysis.original_name} and its results were deleted.")
        return redirect("detection:history")
    return render(request, "detection/delete.html", {"analysis": analysis})


@login_required
@require_POST
def rerun(request, analysis_id):
    """Runs a finished analysis of the viewer's own again; counted as an upload."""
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise Http404("No such analysis")
    try:
        services.analysis_rerun(analysis=analysis)
    except (errors.NotFinished, errors.FileUnreadable, errors.TooManyPending, errors.UploadRateLimited) as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{analysis.original_name} is queued to be analysed again.")
    return redirect("detection:detail", analysis_id=analysis.pk)


@login_required
@require_POST
def delete_many(request):
    """Asks for a confirmation of the analyses selected in the history, then deletes them."""
    form = AnalysisSelectionForm(request.POST, owned=selectors.analysis_list(owner=request.user))
    gone = f"{form.gone} of the selected analyses {'was' if form.gone == 1 else 'were'} deleted already."
    if not form.is_valid():
        if form.gone:
            messages.info(request, gone)
        else:
            for error in form.errors.get("ids", []):
                messages.error(request, error)
        return redirect("detection:history")
    chosen = form.cleaned_data["ids"]
    if not form.cleaned_data["confirmed"]:
        return render(request, "detection/delete_many.html", {"analyses": chosen, "gone": form.gone})
    deleted = services.analysis_delete_many(
        owner=request.user, analysis_ids=[analysis.pk for analysis in chosen]
    )
    message = f"{deleted} {'analysis was' if deleted == 1 else 'analyses were'} deleted."
    messages.success(request, message + (f" {gone}" if form.gone else ""))
    return redirect("detection:history")
