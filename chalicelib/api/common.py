"""What every v1 route shares: identity, the request id, errors, the services."""
import functools
import io
import json
import logging
import re
import threading
import uuid

from chalicelib.api import negotiation, wire
from chalicelib.config import settings
from chalicelib.domain import context as ctx
from chalicelib.api.errors import HttpError, internal_error, method_not_allowed
from chalicelib.composition import services
from chalicelib.domain.errors import DomainError, Invalid, NotFound, Unavailable
from chalicelib.domain.images import ImageService
from chalicelib.domain.members import MemberService
from chalicelib.domain.ports import BlobStoreError, CatalogUnavailable
from chalicelib.domain.transfers import ImageData
from chalicelib.domain.uploads import UploadService

LOG = logging.getLogger(__name__)
MAX_REQUEST_ID_LENGTH = 64
ALL_METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')

def image_service() -> ImageService:
    return services().images


def upload_service() -> UploadService:
    return services().uploads


def member_service() -> MemberService:
    return services().members


def request_context(request):
    """The caller, as Glance's context middleware sees it (v1 §1)."""
    mode = settings().auth_mode
    if mode == 'noauth':
        return ctx.NOAUTH
    if mode == 'keystone':  # only what the authorizer verified; client headers are ignored
        verified = (request.context or {}).get('authorizer') or {}
        status, tenant = verified.get('identity_status'), verified.get('tenant')
        user, roles = verified.get('user'), verified.get('roles') or ''
        if status == 'Unavailable':   # Keystone could not be asked: not the client's fault
            raise identity_unavailable()
    else:
        headers = request.headers
        status = headers.get('x-identity-status')
        tenant = headers.get('x-project-id') or headers.get('x-tenant-id')
        user, roles = headers.get('x-user-id'), headers.get('x-roles') or ''
    if status != 'Confirmed':
        raise not_authenticated()
    return ctx.from_identity(tenant, user, roles.split(','))


def not_authenticated():
    """keystonemiddleware's 401, naming the Keystone to get a token from."""
    return HttpError(401, UNAUTHORIZED, _authenticate_header())


def identity_unavailable():
    return HttpError(503, IDENTITY_UNAVAILABLE, {'Retry-After': IDENTITY_RETRY_AFTER})


IDENTITY_UNAVAILABLE = 'The identity service is unavailable; try again later.'
IDENTITY_RETRY_AFTER = '5'   # seconds: Keystone is asked afresh on the next request


UNAUTHORIZED = ('This server could not verify that you are authorized to access the '
                'document you requested. Either you supplied the wrong credentials (e.g., '
                'bad password), or your browser does not understand how to supply the '
                'credentials required.')


def _authenticate_header():
    url = settings().keystone_url
    # keystonemiddleware's spelling (double quotes): clients find where to get a token
    return {'WWW-Authenticate': 'Keystone uri="%s"' % url} if url else {}


def request_id(request):
    sent = request.headers.get('x-openstack-request-id')
    if not sent:
        return 'req-%s' % uuid.uuid4()
    if len(sent) > MAX_REQUEST_ID_LENGTH:
        raise HttpError(431, 'Request ID is too long')
    return sent if sent.startswith('req-') else 'req-' + sent


_URL_SCHEMES = ('http', 'https')
_HOST = re.compile(r'([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?')


def public_base_url(request):
    """The service's own URL (no trailing slash), for the `Location` of a create, the
    versions document and the OpenAPI servers.

    GLANCE_PUBLIC_ENDPOINT when set. Behind API Gateway (its request context names the
    domain and stage) that domain and stage, never the client's Host or X-Forwarded-*.
    Locally the request's Host, as the reference does, with X-Forwarded-Proto only
    when it is http or https.
    """
    configured = settings().public_endpoint
    if configured:
        return configured.rstrip('/')
    gateway = request.context or {}
    if gateway.get('domainName') and gateway.get('stage'):
        return 'https://%s/%s' % (gateway['domainName'], gateway['stage'])
    headers = request.headers
    scheme = (headers.get('x-forwarded-proto') or '').strip().lower()
    host = (headers.get('host') or '').strip()
    return '%s://%s' % (scheme if scheme in _URL_SCHEMES else 'http',
                        host if _HOST.fullmatch(host) else 'localhost')


# A front that can stream (the local runtime) hands image bytes over here instead
# of in the Lambda event, so that memory does not grow with the image.
streamed_body = threading.local()


def image_data(request):
    """The image bytes of a request, or None when it has no body (v1 §7)."""
    headers = request.headers
    try:
        length = int(headers['content-length'])
    except (KeyError, ValueError):
        length = None
    stream = getattr(streamed_body, 'stream', None)
    body = b'' if stream is not None else request.raw_body or b''
    if not (length or 'transfer-encoding' in headers or body):
        return None
    media_type = (headers.get('content-type') or '').split(';')[0].strip() or None
    return ImageData(stream=stream or io.BytesIO(body), media_type=media_type, length=length)


def query_params(request):
    return dict(request.query_params or {})


MALFORMED_JSON = 'Malformed JSON in request body.'


def json_document(request, kinds=(dict,), wrong_kind='The request body must be a JSON object.'):
    """The request's JSON body, None when it has none; Invalid when it is not JSON or
    not one of `kinds`."""
    if not request.raw_body:
        return None
    try:
        document = json.loads(request.raw_body)
    except ValueError:
        raise Invalid(MALFORMED_JSON) from None
    if not isinstance(document, kinds):
        raise Invalid(wrong_kind)
    return document


def v1_view(blueprint, path, methods, authorizer=None):
    """Register a v1 view: Glance errors rendered per Accept, request id added."""
    def register(view):
        @functools.wraps(view)
        def handle(**kwargs):
            return respond(blueprint.current_request, view, **kwargs)
        blueprint.route(path, methods=list(methods), content_types=['*/*'],
                        authorizer=authorizer)(handle)
        return view
    return register


def respond(request, view, **kwargs):
    """A v1 view's answer, through the reference's middleware: version negotiation,
    then the context (identity, request id), then the router and the view."""
    if negotiation.names_no_v1_version(request):
        from chalicelib.api.versions import multiple_choices_response
        return multiple_choices_response(request)
    try:
        context = request_context(request)
        rid = request_id(request)
    except HttpError as error:  # before the context middleware: no request id
        return wire.error_for(request, error)
    try:
        if negotiation.resource_is_missing(request):
            raise NotFound('The resource could not be found.')
        response = view(request, context, **kwargs)
    except (DomainError, HttpError) as error:
        response = wire.error_for(request, error)
    except (CatalogUnavailable, BlobStoreError) as error:  # the request may be retried
        LOG.warning('%s %s: %s', request.method, request.path, error)
        response = wire.error_for(request, Unavailable(
            'The image %s is unavailable; try again later.'
            % ('catalog' if isinstance(error, CatalogUnavailable) else 'store')))
    except Exception:  # noqa: BLE001 - the client gets Glance's 500, we get the trace
        LOG.exception('unexpected error in %s %s', request.method, request.path)
        response = wire.error_for(request, internal_error())
    response.headers['x-openstack-request-id'] = rid
    return response


def not_allowed(blueprint, path, allowed, allow_header=None, authorizer=None):
    """Answer 405 with `Allow` for the methods a resource does not have."""
    others = [m for m in ALL_METHODS if m not in allowed]
    header = allow_header if allow_header is not None else ', '.join(allowed)

    def refuse(request, context, **kwargs):
        raise method_not_allowed(request.method, header)
    refuse.__name__ = 'not_allowed_' + path.strip('/').replace('/', '_').replace('{', '') \
        .replace('}', '')
    v1_view(blueprint, path, others, authorizer)(refuse)


def blueprint_of(import_name, routes, resources, authorizer=None):
    """A blueprint with `routes` (path, methods, view) and 405s for the other methods
    of `resources` (path, methods it has, Allow header if different)."""
    from chalice import Blueprint
    blueprint = Blueprint(import_name)
    for path, methods, view in routes:
        v1_view(blueprint, path, methods, authorizer)(view)
    for path, allowed, allow_header in resources:
        not_allowed(blueprint, path, allowed, allow_header, authorizer)
    return blueprint
