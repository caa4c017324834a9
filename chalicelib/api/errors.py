"""HTTP errors: the status, title and headers of each domain error, and the errors only
HTTP has (a method a resource lacks, a header too long, the generic 500)."""
import http

from chalicelib.domain import errors as domain

STATUS = {
    domain.Invalid: 400, domain.NotAuthenticated: 401, domain.Forbidden: 403,
    domain.NotFound: 404, domain.Conflict: 409, domain.Changed: 412,
    domain.TooLarge: 413, domain.SourceFailed: 502, domain.Unavailable: 503,
}
INTERNAL_MESSAGE = ('The server has either erred or is incapable of performing the '
                    'requested operation.')


class HttpError(Exception):
    """An answer in the reference's error format (api/wire.py error_response)."""

    def __init__(self, code, message=INTERNAL_MESSAGE, headers=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.title = http.HTTPStatus(code).phrase
        self.headers = dict(headers or {})


def http_error(error):
    """The HttpError of a domain error (itself for an HttpError)."""
    if isinstance(error, HttpError):
        return error
    headers = {}
    if getattr(error, 'retry_after', None) is not None:
        headers['Retry-After'] = str(error.retry_after)
    return HttpError(STATUS[type(error)], error.message, headers)


def method_not_allowed(method, allow):
    return HttpError(405, 'The method %s is not allowed for this resource.' % method,
                     {'Allow': allow} if allow else None)


def internal_error():
    return HttpError(500)
