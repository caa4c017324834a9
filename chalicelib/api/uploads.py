"""Presigned uploads, an extension under /v1/images/{id}/upload (see README)."""
import re
import urllib.parse

from chalice import Response

from chalicelib.api import wire
from chalicelib.api.common import blueprint_of, json_document, query_params, upload_service
from chalicelib.domain.errors import Invalid


def _max_part_number():
    """The blob store's most parts of a multipart upload."""
    return upload_service().limits.max_parts


def _with_next_link(upload):
    """Glance's `next` link to the following page of parts, when there is one."""
    if upload.get('next_part_marker') is not None:
        upload['next'] = '/v1/images/%s/upload?part_marker=%d' % (
            urllib.parse.quote(upload['image_id'], safe=''), upload['next_part_marker'])
    return upload


def _part_marker(request):
    """?part_marker=N (0..9999: the last part of the previous page), default 0."""
    value = query_params(request).get('part_marker')
    if value is None:
        return 0
    if not re.fullmatch('[0-9]+', value):
        raise Invalid('part_marker param must be a non-negative integer')
    digits = value.lstrip('0')
    # a longer number is out of range all the same (and int() refuses 4300 digits)
    return int(digits or 0) if len(digits) <= 5 else _max_part_number()


def reserve(request, context, image_id):
    """{"size": N, "checksum": md5?, "part_size": N?} -> the presigned URL(s), the first
    page of parts."""
    body = json_document(request)
    if body is None:
        raise Invalid('A JSON object body is required.')
    upload = upload_service().reserve(context, image_id, body.get('size'),
                                      body.get('checksum'), body.get('part_size'))
    return wire.json_response({'upload': _with_next_link(upload)}, 201)


def show(request, context, image_id):
    upload = upload_service().show(context, image_id, _part_marker(request))
    return wire.json_response({'upload': _with_next_link(upload)})


def _part(entry):
    """{"part_number": 1..10000, "etag": printable text}, or None."""
    if not isinstance(entry, dict):
        return None
    number, etag = entry.get('part_number'), entry.get('etag')
    if isinstance(number, bool) or not isinstance(number, int) \
            or not 1 <= number <= _max_part_number():
        return None
    if not isinstance(etag, str) or not etag or not etag.isprintable():
        return None
    return {'part_number': number, 'etag': etag}


def complete(request, context, image_id):
    """{"parts": [{"part_number", "etag"}]?}; the image goes to `saving`.

    A part number twice, or one S3 cannot have, or an etag that is not text is refused
    here, rather than failing the assembly (which kills the image) or S3's request (a
    503 that a retry would not cure).
    """
    parts = (json_document(request) or {}).get('parts')
    if parts is not None:
        checked = [_part(entry) for entry in parts] if isinstance(parts, list) else [None]
        numbers = [part['part_number'] for part in checked if part is not None]
        if None in checked or len(set(numbers)) != len(numbers):
            raise Invalid('parts must be a list of {"part_number": 1..%d, "etag": str}, '
                             'each part once' % _max_part_number())
        parts = checked
    image = upload_service().complete(context, image_id, parts)
    return wire.json_response({'image': wire.image_view(image)}, 202)


def abort(request, context, image_id):
    upload_service().abort(context, image_id)
    return Response(body='', status_code=204)


ROUTES = (
    ('/images/{image_id}/upload', ['POST'], reserve),
    ('/images/{image_id}/upload', ['GET'], show),
    ('/images/{image_id}/upload', ['DELETE'], abort),
    ('/images/{image_id}/upload/complete', ['POST'], complete),
)
RESOURCES = (
    ('/images/{image_id}/upload', ['GET', 'POST', 'DELETE'], None),
    ('/images/{image_id}/upload/complete', ['POST'], None),
)


def uploads_blueprint(authorizer=None):
    return blueprint_of(__name__, ROUTES, RESOURCES, authorizer)
