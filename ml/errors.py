"""Exceptions raised by the `ml` package. Each message is written for a person to read."""


class MlError(Exception):
    """Base class for every error the detection engine raises on purpose."""


class MediaError(MlError):
    """The file cannot be analysed: empty, truncated, undecodable or of an unsupported type."""


class MediaMissingError(MediaError):
    """There is no file at the path given (or a folder): the fault of whoever stored it, not of
    its content; the site fails such a run as its own error, which trying again can mend."""


class MediaTooLargeError(MediaError):
    """The file states a picture larger than the decoder's pixel budget (`ml.media.MediaLimits`)."""


class UnsupportedMediaError(MediaError):
    """The file's content is not one of the supported image or video formats."""


class CheckpointError(MlError):
    """A model checkpoint is missing, unreadable or not in this package's format."""
