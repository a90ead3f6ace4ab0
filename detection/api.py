"""Token API for analyses: upload, list, read, download and delete. Another user's analysis is
always a 404."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, Throttled, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from deepfake_site.api import ErrorOutputSerializer, ValidationErrorOutputSerializer
from deepfake_site.uploads import upload_limit_message, upload_was_too_large

from . import errors, selectors, services, wait
from .downloads import original_file_response, stored_image_response
from .parsers import NotMultipartParser
from .throttles import UploadRateThrottle, rate_limit_message
from .serializers import (
    AnalysisCreateInputSerializer,
    AnalysisCreateOutputSerializer,
    AnalysisCreateQuerySerializer,
    AnalysisDetailOutputSerializer,
    AnalysisListQuerySerializer,
    AnalysisPageOutputSerializer,
    AnalysisSummaryOutputSerializer,
    UsageOutputSerializer,
)


# The statuses of detection/errors.py's upload refusals (DRF has no class for them).
class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class InsufficientStorage(APIException):
    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = "The server has no room to store the upload right now."
    default_code = "insufficient_storage"


class QuotaFull(APIException):
    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = "Your account keeps as much as it may; delete analyses to make room."
    default_code = "quota_exceeded"


class PendingLimitReached(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Your account has as many analyses waiting as it may."
    default_code = "too_many_pending"


class StillRunning(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This analysis is still waiting or running."
    default_code = "not_finished"


class CannotRunAgain(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This analysis failed because of the file itself; running it again would fail the same way."
    default_code = "file_unreadable"


class UnsupportedUpload(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "The upload is not a supported type."
    default_code = "unsupported_type"


ERRORS = {
    401: OpenApiResponse(ErrorOutputSerializer, "No token, or a bad one."),
    404: OpenApiResponse(ErrorOutputSerializer, "No such analysis among yours."),
}


class UploadLimitReached(Throttled):
    """429 with the limit and the time to wait in words; `Retry-After` in seconds."""

    default_code = "upload_rate_limited"

    def __init__(self, *, wait: float):
        super().__init__(detail=rate_limit_message(wait=wait))
        self.wait = max(1, math.ceil(wait))


class AnalysisPagination(PageNumberPagination):
    page_size = 20

    def paginate_queryset(self, queryset, request, view=None):
        """As DRF's, with a 404 past the last page that says how many pages there are."""
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            pages = max(1, math.ceil(queryset.count() / self.page_size))
            raise NotFound(
                f"There is no page {request.query_params.get(self.page_query_param)}: the list has "
                f"{pages} page{'s' if pages > 1 else ''} of at most {self.page_size}."
            ) from None


class AnalysisCursorPagination(CursorPagination):
    """The list walked by position (`?cursor=`): each `next` marks where its page ended (the
    last upload time read), so deleting what was read, or new uploads, moves nothing. Numbered
    pages shift by one for every analysis deleted before them, and a script deleting as it reads
    skipped a page's worth each time. Same answer's shape as the numbered pages, `count` too."""

    page_size = AnalysisPagination.page_size

    def __init__(self, *, ordering: str):
        self.ordering = (ordering, "pk")  # the position is the upload time; pk only breaks ties

    def paginate_queryset(self, queryset, request, view=None):
        self.count = queryset.count()
        try:
            return super().paginate_queryset(queryset, request, view)
        except (NotFound, DjangoValidationError, ValueError, TypeError):  # made up, or a forged position
            raise ValidationError({"cursor": ["Not a cursor this list gave: send it empty to start, then follow next."]}) from None

    def get_paginated_response(self, data):
        return Response({"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})


def _analysis_or_404(request, analysis_id):
    analysis = selectors.analysis_get(viewer=request.user, analysis_id=analysis_id)
    if analysis is None:
        raise NotFound("No such analysis.")
    return analysis


class AnalysisListCreateApi(APIView):
    parser_classes = [MultiPartParser, NotMultipartParser]  # a file comes in multipart only
    throttle_classes = [UploadRateThrottle]

    def throttled(self, request, wait):
        raise UploadLimitReached(wait=wait or 0)

    @extend_schema(
        operation_id="analyses_list",
        summary="List your analyses",
        parameters=[AnalysisListQuerySerializer],
        responses={
            200: AnalysisPageOutputSerializer,
            400: ValidationErrorOutputSerializer,
            401: ERRORS[401],
            404: OpenApiResponse(ErrorOutputSerializer, "A page past the last one."),
        },
    )
    def get(self, request):
        query = AnalysisListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = {key: value for key, value in query.validated_data.items() if key not in ("page", "cursor")}
        analyses = selectors.analysis_list(owner=request.user, **filters)
        if "cursor" in query.validated_data:
            paginator = AnalysisCursorPagination(ordering=filters["ordering"])
        else:
            paginator = AnalysisPagination()
        page = paginator.paginate_queryset(analyses, request, view=self)
        data = AnalysisSummaryOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="analyses_create",
        summary="Upload a photo or video for analysis",
        request={"multipart/form-data": AnalysisCreateInputSerializer},
        parameters=[AnalysisCreateQuerySerializer],
        responses={
            201: OpenApiResponse(
                AnalysisCreateOutputSerializer, "Finished (done or failed) within `wait`."
            ),
            202: OpenApiResponse(AnalysisCreateOutputSerializer, "Queued or still running."),
            400: ValidationErrorOutputSerializer,
            401: ERRORS[401],
            404: OpenApiResponse(ErrorOutputSerializer, "The analysis was deleted while the request waited for it."),
            411: OpenApiResponse(ErrorOutputSerializer, "A chunked body: send a Content-Length."),
            413: OpenApiResponse(ErrorOutputSerializer, "The file is over the size limit."),
            415: OpenApiResponse(
                ErrorOutputSerializer,
                "Not a supported image or video, or a body that is not multipart/form-data.",
            ),
            429: OpenApiResponse(
                ErrorOutputSerializer,
                "Too many uploads lately (retry after `Retry-After` seconds), or too many of yours "
                "waiting (retry when some are done).",
            ),
            507: OpenApiResponse(
                ErrorOutputSerializer,
                "No room: the server's (retry later) or your account's (delete analyses first).",
            ),
        },
    )
    def post(self, request):
        query = AnalysisCreateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = request.data  # reads the body, stopping past the size limit
        if upload_was_too_large(request._request):
            raise PayloadTooLarge(upload_limit_message())
        sent = len(request.FILES.getlist("file"))
        if sent > 1:  # DRF would keep the last and drop the others without a word
            raise ValidationError({"file": [f"Send one file per request; this one had {sent}."]})
        upload = AnalysisCreateInputSerializer(data=data)
        upload.is_valid(raise_exception=True)
        try:
            analysis = services.analysis_create(
                owner=request.user, file=upload.validated_data["file"]
            )
        except errors.UploadTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except errors.UploadUnsupported as exc:
            raise UnsupportedUpload(str(exc)) from None
        except errors.StorageQuotaFull as exc:
            raise QuotaFull(str(exc)) from None
        except errors.TooManyPending as exc:
            raise PendingLimitReached(str(exc)) from None
        except errors.UploadRateLimited as exc:
            raise UploadLimitReached(wait=exc.wait) from None
        except errors.UploadRefused as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        except errors.StorageFull as exc:
            raise InsufficientStorage(str(exc)) from None

        analysis = wait.analysis_wait(
            owner=request.user, analysis_id=analysis.pk, seconds=query.validated_data["wait"]
        )
        if analysis is None:
            raise NotFound("The analysis was deleted while waiting for it.")
        usage = selectors.analysis_usage(owner=request.user)
        data = AnalysisCreateOutputSerializer(
            analysis, context={"request": request, "account_stored_bytes": usage.stored_bytes}
        ).data
        return Response(
            data,
            status=status.HTTP_201_CREATED if analysis.is_finished else status.HTTP_202_ACCEPTED,
            headers={"Location": data["url"]},
        )


class AnalysisDetailApi(APIView):
    @extend_schema(
        operation_id="analyses_retrieve",
        summary="Read an analysis with its frames and faces",
        responses={200: AnalysisDetailOutputSerializer, **ERRORS},
    )
    def get(self, request, analysis_id):
        analysis = selectors.analysis_get_detail(viewer=request.user, analysis_id=analysis_id)
        if analysis is None:
            raise NotFound("No such analysis.")
        return Response(AnalysisDetailOutputSerializer(analysis, context={"request": request}).data)

    @extend_schema(
        operation_id="analyses_destroy",
        summary="Delete an analysis and its stored files",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, analysis_id):
        services.analysis_delete(analysis=_analysis_or_404(request, analysis_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnalysisRerunApi(APIView):
    throttle_classes = [UploadRateThrottle]  # a run again counts as an upload

    def throttled(self, request, wait):
        raise UploadLimitReached(wait=wait or 0)

    @extend_schema(
        operation_id="analyses_rerun",
        summary="Analyse a finished upload again",
        description=(
            "Runs a done or failed analysis again with the models installed now, on the file already "
            "uploaded: its result is deleted and it is queued as a new upload is (poll its `url`, or "
            "send `?wait=N` as for an upload). Counts as an upload in the upload rate limit."
        ),
        request=None,
        parameters=[AnalysisCreateQuerySerializer],
        responses={
            200: OpenApiResponse(AnalysisDetailOutputSerializer, "Finished again (done or failed) within `wait`."),
            202: OpenApiResponse(AnalysisDetailOutputSerializer, "Queued or running."),
            400: ValidationErrorOutputSerializer,
            **ERRORS,
            409: OpenApiResponse(
                ErrorOutputSerializer,
                "Still waiting or running (run it again once it is done), or it failed because of the "
                "file itself (`file_unreadable`), which would fail the same way: upload a fresh copy.",
            ),
            429: OpenApiResponse(
                ErrorOutputSerializer,
                "Too many uploads lately (retry after `Retry-After` seconds), or too many of yours waiting.",
            ),
        },
    )
    def post(self, request, analysis_id):
        query = AnalysisCreateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        analysis = _analysis_or_404(request, analysis_id)
        try:
            analysis = services.analysis_rerun(analysis=analysis)
        except errors.NotFinished as exc:
            raise StillRunning(str(exc)) from None
        except errors.FileUnreadable as exc:
            raise CannotRunAgain(str(exc)) from None
        except errors.TooManyPending as exc:
            raise PendingLimitReached(str(exc)) from None
        except errors.UploadRateLimited as exc:
            raise UploadLimitReached(wait=exc.wait) from None
        analysis = wait.analysis_wait(
            owner=request.user, analysis_id=analysis.pk, seconds=query.validated_data["wait"]
        )
        if analysis is None:
            raise NotFound("The analysis was deleted while waiting for it.")
        data = AnalysisDetailOutputSerializer(analysis, context={"request": request}).data
        finished = status.HTTP_200_OK if analysis.is_finished else status.HTTP_202_ACCEPTED
        return Response(data, status=finished, headers={"Location": data["url"]})


class AnalysisFileApi(APIView):
    @extend_schema(
        operation_id="analyses_file",
        summary="Download the original upload",
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                "The file as uploaded, with the content type its content has (image/jpeg, image/png, "
                "video/mp4, video/webm, ...), not the one its name suggests.",
            ),
            **ERRORS,
        },
    )
    def get(self, request, analysis_id):
        analysis = _analysis_or_404(request, analysis_id)
        return original_file_response(analysis)


class AnalysisHeatmapApi(APIView):
    @extend_schema(
        operation_id="analyses_heatmap",
        summary="A face's Grad-CAM heatmap (PNG)",
        responses={(200, "image/png"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, analysis_id, face_id: int):
        face = selectors.analysis_face_get(viewer=request.user, analysis_id=analysis_id, face_id=face_id)
        if face is None:
            raise NotFound("No such heatmap.")
        return stored_image_response(face.heatmap, content_type="image/png", what="heatmap")


class AnalysisThumbnailApi(APIView):
    @extend_schema(
        operation_id="analyses_thumbnail",
        summary="The analysis' thumbnail (JPEG)",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, analysis_id):
        analysis = _analysis_or_404(request, analysis_id)
        if not analysis.thumbnail:
            raise NotFound("No thumbnail.")
        return stored_image_response(analysis.thumbnail, content_type="image/jpeg", what="thumbnail")


class AnalysisFrameImageApi(APIView):
    @extend_schema(
        operation_id="analyses_frame_image",
        summary="A sampled frame, or the photo, as a web-sized JPEG",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, analysis_id, frame_index: int):
        frame = selectors.analysis_frame_get(
            viewer=request.user, analysis_id=analysis_id, frame_index=frame_index
        )
        if frame is None:
            raise NotFound("No such frame image.")
        return stored_image_response(frame.image, content_type="image/jpeg", what="frame image")


class UsageApi(APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        summary="What your account uses of its limits",
        description=(
            "Storage, analyses waiting, the largest file taken and the upload rate limit, so that a "
            "script can pace its uploads instead of running into 429 and 507 answers."
        ),
        responses={200: UsageOutputSerializer, 401: ERRORS[401]},
    )
    def get(self, request):
        return Response(UsageOutputSerializer(selectors.account_usage(owner=request.user)).data)
