"""What went wrong, in the domain's terms. The API maps each to an HTTP status, its
headers and wording (chalicelib/api/errors.py); nothing here knows about HTTP."""


class DomainError(Exception):
    """A request the rules refuse; `message` says why, in the reference's words."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The request is malformed or breaks a rule of the input."""


class NotAuthenticated(DomainError):
    """Nobody the service can name is calling."""


class Forbidden(DomainError):
    """The caller may not do this to this image."""


class NotFound(DomainError):
    """No such image, membership or data, as far as the caller may know."""


class Conflict(DomainError):
    """The image is not in a state that allows it (or another request holds it)."""


class Changed(DomainError):
    """The image changed under the request (deleted during an upload)."""


class TooLarge(DomainError):
    """Past a size, count or quota limit."""


class SourceFailed(DomainError):
    """An external source gave bytes that cannot be the image's, or none in time."""


class Unavailable(DomainError):
    """A store or service the request needs is unavailable; `retry_after` (seconds),
    when given, says when to try again."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after
