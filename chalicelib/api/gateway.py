"""The app as API Gateway (and chalice's local gateway, which mimics it) runs it.

Two of chalice's own answers are not Glance's, so they are replaced here:
- chalice refuses a binary answer (400) unless the request's Accept names a binary
  type; the reference answers image data whatever the Accept (none, JSON, HTML...).
  Binary answers are still base64-encoded (`isBase64Encoded`), and the stages list
  `*/*` among the binary media types, so API Gateway decodes them for every request:
  it matches the request's first Accept media type against that list, and `*/*`
  matches any (tests/api/test_gateway_events.py applies that rule to real events).
- chalice's errors (`{"Code": ..., "Message": ...}`) and unexpected exceptions are
  rendered in the reference's error format, chosen by Accept like every other error.
"""
import logging

from chalice import Chalice, Response
from chalice.app import RestAPIEventHandler

from chalicelib.api import wire
from chalicelib.api.errors import HttpError, internal_error

LOG = logging.getLogger(__name__)


class _ImageDataForAnyAccept(RestAPIEventHandler):
    def _validate_binary_response(self, request_headers, response_headers):
        return True


class GlanceApp(Chalice):
    """chalice's app, answering binary data for any Accept."""

    def __call__(self, event, context):
        # chalice 1.34's Chalice.__call__, with the handler above
        self.lambda_context = context
        handler = _ImageDataForAnyAccept(
            self.routes, self.api, self.log, self.debug,
            middleware_handlers=self._get_middleware_handlers('http'))
        self.current_request = handler.create_request_object(event, context)
        return handler(event, context)


def _is_chalice_error(response):
    return isinstance(response.body, dict) and set(response.body) == {'Code', 'Message'}


def glance_errors(request, get_response):
    """HTTP middleware: every error in the reference's format. (`request` is None
    for an event chalice cannot route.)"""
    accept = request.headers.get('accept') if request is not None else None
    method = request.method if request is not None else 'GET'
    try:
        response = get_response(request)
    except Exception:  # noqa: BLE001 - the client gets Glance's 500, we get the trace
        LOG.exception('unexpected error in %s', method)
        return wire.error_response(internal_error(), accept, method)
    if not isinstance(response, Response) or not _is_chalice_error(response):
        return response
    error = HttpError(response.status_code, response.body['Message'], {
        name: value for name, value in response.headers.items()
        if name.lower() != 'content-type'})
    return wire.error_response(error, accept, method)
