"""Version discovery (spec §2): `/versions` 200, `/` and unknown versions 300.

Served before identity and without a request id, as the reference does.
"""
import json

from chalice import Blueprint, Response

from chalicelib.api.common import ALL_METHODS
from chalicelib.config import settings

V1_PREFIXES = ('v1', 'v1.0', 'v1.1')
NOT_FOUND_BODY = ('404 Not Found\n\nThe resource could not be found.\n\n   ')


def versions_document(request):
    base = settings().public_endpoint
    if not base:
        scheme = request.headers.get('x-forwarded-proto', 'http')
        base = '%s://%s' % (scheme, request.headers.get('host', 'localhost'))
    href = '%s/v1/' % base.rstrip('/')
    return {'versions': [
        {'id': version, 'status': 'DEPRECATED', 'links': [{'rel': 'self', 'href': href}]}
        for version in ('v1.1', 'v1.0')]}


def _versions(request, status_code):
    return Response(body=json.dumps(versions_document(request)),
                    headers={'Content-Type': 'application/json'}, status_code=status_code)


def versions_blueprint():
    """`/versions` 200; `/` and any unknown version 300; unknown paths under v1 404."""
    blueprint = Blueprint(__name__)

    @blueprint.route('/versions', methods=['GET'])
    def versions():
        return _versions(blueprint.current_request, 200)

    @blueprint.route('/versions', methods=[m for m in ALL_METHODS if m != 'GET'])
    @blueprint.route('/', methods=list(ALL_METHODS))
    def multiple_choices():
        return _versions(blueprint.current_request, 300)

    def unknown_path(version, **_):
        if version in V1_PREFIXES:
            return Response(body=NOT_FOUND_BODY,
                            headers={'Content-Type': 'text/plain; charset=UTF-8'},
                            status_code=404)
        return _versions(blueprint.current_request, 300)

    # API Gateway has no catch-all that chalice can declare: spell out the depths.
    path = '/{version}'
    for depth in range(5):
        blueprint.route(path, methods=list(ALL_METHODS),
                        name='unknown_path_%d' % depth)(unknown_path)
        path += '/{p%d}' % depth
    return blueprint
