"""Why an upload is not stored. Each message is written for the person uploading; the upload
page shows it beside the file, the API answers it as `detail` with the status in `api.py`."""

from __future__ import annotations


class UploadRefused(Exception):
    """An upload that is not accepted (answered 400 unless a subclass says otherwise)."""


class UploadEmpty(UploadRefused):
    pass


class UploadTooLarge(UploadRefused):
    """Over DETECTION_MAX_UPLOAD_BYTES (API: 413)."""


class UploadUnsupported(UploadRefused):
    """Not a supported image or video by its content, or a refused one such as HEIC (API: 415)."""


class StorageQuotaFull(UploadRefused):
    """The owner's analyses already keep DETECTION_USER_STORAGE_BYTES (API: 507, as WebDAV
    answers an exhausted quota); deleting some makes room."""


class TooManyPending(UploadRefused):
    """The owner has DETECTION_USER_PENDING analyses queued or running (API: 429)."""


class UploadRateLimited(UploadRefused):
    """The owner has sent API_UPLOAD_RATE uploads (runs again included) within its period
    (API: 429 with Retry-After); `wait` is the seconds until one more is allowed."""

    def __init__(self, message: str, *, wait: float):
        super().__init__(message)
        self.wait = wait


class NotFinished(Exception):
    """The analysis to run again is still queued or running (API: 409)."""


class FileUnreadable(Exception):
    """The analysis to run again failed on its file itself (damaged, cut short, an unknown
    codec, too large): running it again would fail the same way (API: 409)."""


class StorageFull(Exception):
    """The server has no room to store the upload; nothing was kept (API: 507)."""
