"""One exception tree. Each error knows its HTTP status; web/ maps them to responses in one place.

Nothing below web/ knows HTTP beyond this number: the status is part of what the error *means*
(a malformed URL is the client's fault, a corrupt file is the content's, a dead upstream is ours).
"""


class VodError(Exception):
    """Base of every error the server turns into a response."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(VodError):
    """Malformed URL, file name, or parameters (400)."""

    status = 400


class NotFound(VodError):
    """Missing object, segment past the end, unknown track (404)."""

    status = 404


class Unauthorized(VodError):
    """A request for an operation that needs a key it did not carry (purging)."""

    status = 401


class Forbidden(VodError):
    """The storage upstream denied access (403). S3 answers 403 for a missing key too when the
    role lacks s3:ListBucket."""

    status = 403


class RangeNotSatisfiable(VodError):
    """A Range header no byte of the object satisfies (416)."""

    status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class MediaError(VodError):
    """Corrupt, truncated or hostile media: the content is at fault, not the server (422)."""

    status = 422


class UnsupportedMedia(MediaError):
    """Well-formed media we do not package (an unknown codec, an unsupported layout) (415)."""

    status = 415


class LimitExceeded(MediaError):
    """Media that breaks a named limit (moov size, frame count, frame size...) (422)."""


class UpstreamError(VodError):
    """The storage upstream refused, failed or sent a short body (502).

    `retryable` marks failures worth another attempt (5xx, throttling, a dropped connection).
    """

    status = 502

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class UpstreamTimeout(UpstreamError):
    """The storage upstream did not answer in time (504)."""

    status = 504
