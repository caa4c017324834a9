"""Glance errors, one class per HTTP status the v1 API answers with."""


class GlanceError(Exception):
    code = 500
    title = 'Internal Server Error'

    def __init__(self, message='The server has either erred or is incapable of '
                               'performing the requested operation.', headers=None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequest(GlanceError):
    code, title = 400, 'Bad Request'


class Unauthorized(GlanceError):
    code, title = 401, 'Unauthorized'


class Forbidden(GlanceError):
    code, title = 403, 'Forbidden'


class NotFound(GlanceError):
    code, title = 404, 'Not Found'


class MethodNotAllowed(GlanceError):
    code, title = 405, 'Method Not Allowed'

    def __init__(self, method, allow):
        super().__init__('The method %s is not allowed for this resource.' % method,
                         headers={'Allow': allow} if allow else None)


class Conflict(GlanceError):
    code, title = 409, 'Conflict'


class PreconditionFailed(GlanceError):
    code, title = 412, 'Precondition Failed'


class RequestEntityTooLarge(GlanceError):
    code, title = 413, 'Request Entity Too Large'


class RequestHeaderFieldsTooLarge(GlanceError):
    code, title = 431, 'Request Header Fields Too Large'


class BadGateway(GlanceError):
    code, title = 502, 'Bad Gateway'


class ServiceUnavailable(GlanceError):
    code, title = 503, 'Service Unavailable'
