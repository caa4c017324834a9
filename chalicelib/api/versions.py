"""Version discovery (v1 §2): `/versions` 200, `/` and unknown versions 300;
and the OpenAPI description of the API at `/v1/openapi.json`.

Served before identity and without a request id, as the reference does.
"""
import functools
import json
import os

from chalice import Blueprint, Response

from chalicelib.api import negotiation, wire
from chalicelib.api.common import ALL_METHODS, public_base_url, request_id, respond
from chalicelib.api.errors import HttpError, method_not_allowed
from chalicelib.domain.errors import NotFound

V1_PREFIXES = negotiation.V1_VERSIONS
OPENAPI_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'openapi.json')
OPENAPI_METHODS = ('GET', 'HEAD')


def versions_document(request):
    href = '%s/v1/' % public_base_url(request)
    return {'versions': [
        {'id': version, 'status': 'DEPRECATED', 'links': [{'rel': 'self', 'href': href}]}
        for version in ('v1.1', 'v1.0')]}


def _versions(request, status_code):
    return Response(body=json.dumps(versions_document(request)),
                    headers={'Content-Type': 'application/json'}, status_code=status_code)


def multiple_choices_response(request):
    """300 with the versions: the request names no version this service has."""
    return _versions(request, 300)


@functools.lru_cache(maxsize=1)
def openapi_description():
    """chalicelib/api/openapi.json, read on first use."""
    with open(OPENAPI_FILE, encoding='utf-8') as source:
        return json.load(source)


def openapi_document(request):
    """The description, its server being this service (as the versions document)."""
    return dict(openapi_description(), servers=[{'url': public_base_url(request)}])


def _multiple_choices(request):
    version = negotiation.media_type_version(request.headers.get('accept'))
    if request.path == '/' and version in negotiation.V1_VERSIONS:
        from chalicelib.api.images import root_index, root_head
        return respond(request, root_head if request.method == 'HEAD' else root_index)
    return _versions(request, 300)


def _openapi(request):
    if request.method not in OPENAPI_METHODS:
        return wire.error_for(request, method_not_allowed(request.method,
                                                          ', '.join(OPENAPI_METHODS)))
    return wire.json_response(openapi_document(request))


def _unknown_path(request, version):
    named = negotiation.media_type_version(request.headers.get('accept'))
    if named is not None and named not in negotiation.V1_VERSIONS:
        return _versions(request, 300)
    if version not in V1_PREFIXES and named is None:
        return _versions(request, 300)
    try:  # inside v1, so through the context middleware: a request id
        headers = {'x-openstack-request-id': request_id(request)}
    except HttpError as error:
        return wire.error_for(request, error)
    response = wire.error_for(request, NotFound('The resource could not be found.'))
    response.headers.update(headers)
    return response


def versions_blueprint():
    """`/versions` 200; `/` and any unknown version 300; unknown paths under v1 404.

    Whatever the request's Content-Type: chalice would answer 415 to anything but
    JSON, where the reference answers the versions or 404.
    """
    blueprint = Blueprint(__name__)
    any_body = ['*/*']

    @blueprint.route('/versions', methods=['GET'], content_types=any_body)
    def versions():
        return _versions(blueprint.current_request, 200)

    @blueprint.route('/versions', methods=[m for m in ALL_METHODS if m != 'GET'],
                     content_types=any_body)
    @blueprint.route('/', methods=list(ALL_METHODS), content_types=any_body)
    def multiple_choices():
        return _multiple_choices(blueprint.current_request)

    def openapi():
        return _openapi(blueprint.current_request)
    for prefix in V1_PREFIXES:  # open, as version discovery: no identity needed
        blueprint.route('/%s/openapi.json' % prefix, methods=list(ALL_METHODS),
                        name='openapi_%s' % prefix.replace('.', '_'),
                        content_types=any_body)(openapi)

    def unknown_path(version, **_):
        return _unknown_path(blueprint.current_request, version)
    # API Gateway has no catch-all that chalice can declare: spell out the depths.
    path = '/{version}'
    for depth in range(5):
        blueprint.route(path, methods=list(ALL_METHODS), name='unknown_path_%d' % depth,
                        content_types=any_body)(unknown_path)
        path += '/{p%d}' % depth
    return blueprint
