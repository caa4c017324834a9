"""Version discovery (spec §2): `/versions` 200, `/` and unknown versions 300.

Served before identity and without a request id, as the reference does.
"""
import json

from chalice import Blueprint, Response

from chalicelib.api.common import ALL_METHODS
from chalicelib.config import settings

versions_api = Blueprint(__name__)
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


def _versions(status_code):
    body = json.dumps(versions_document(versions_api.current_request))
    return Response(body=body, headers={'Content-Type': 'application/json'},
                    status_code=status_code)


@versions_api.route('/versions', methods=['GET'])
def versions():
    return _versions(200)


@versions_api.route('/versions', methods=[m for m in ALL_METHODS if m != 'GET'])
@versions_api.route('/', methods=list(ALL_METHODS))
def multiple_choices():
    return _versions(300)


def unknown_path(version, **_):
    """Any other path: unknown under a v1 prefix (404), else a version to choose (300)."""
    if version in V1_PREFIXES:
        return Response(body=NOT_FOUND_BODY,
                        headers={'Content-Type': 'text/plain; charset=UTF-8'},
                        status_code=404)
    return _versions(300)


# API Gateway has no catch-all that chalice can declare, so spell out the depths.
_path = '/{version}'
for depth in range(5):
    versions_api.route(_path, methods=list(ALL_METHODS),
                       name='unknown_path_%d' % depth)(unknown_path)
    _path += '/{p%d}' % depth
