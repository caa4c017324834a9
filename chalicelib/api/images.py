"""The v1 image routes (v1 §3): parse, call the image service, render."""
from chalice import Response

from chalicelib.api import wire
from chalicelib.api.common import (blueprint_of, image_data, image_service,
                                   public_base_url, query_params)
from chalicelib.api.errors import method_not_allowed

COPY_FROM_HEADER = 'x-glance-api-copy-from'
PURGE_PROPS_HEADER = 'x-glance-registry-purge-props'


def _brief_list(request, context):
    images = image_service().index(context, query_params(request))
    return wire.json_response({'images': [wire.brief_view(i) for i in images]})


def index(request, context):
    return _brief_list(request, context)


def detail(request, context):
    images = image_service().index(context, query_params(request))
    return wire.json_response({'images': [wire.image_view(i) for i in images]})


def create(request, context):
    image = image_service().create(
        context, wire.image_meta_from_headers(request.headers), image_data(request),
        request.headers.get(COPY_FROM_HEADER))
    location = '%s/v1/images/%s' % (public_base_url(request), image['id'])
    return wire.json_response({'image': wire.image_view(image)}, 201,
                              dict(wire.etag_header(image), Location=location))


def meta(request, context, image_id):
    image = image_service().show(context, image_id)
    headers = dict(wire.image_meta_to_headers(image), **{
        'Content-Type': wire.HEAD_CONTENT_TYPE})
    return Response(body='', headers=headers, status_code=200)


def show(request, context, image_id):
    image, data, redirect = image_service().download(context, image_id)
    headers = wire.image_meta_to_headers(image)
    if redirect is not None:  # large images: the bytes come straight from S3
        headers.update({'Location': redirect, 'Content-Type': wire.HEAD_CONTENT_TYPE})
        return Response(body='', headers=headers, status_code=302)
    headers['Content-Type'] = 'application/octet-stream'
    return Response(body=data, headers=headers, status_code=200)


def update(request, context, image_id):
    purge = request.headers.get(PURGE_PROPS_HEADER)
    image = image_service().update(
        context, image_id, wire.image_meta_from_headers(request.headers),
        image_data(request), request.headers.get(COPY_FROM_HEADER),
        purge_props=True if purge is None else wire.parse_bool(purge))
    return wire.json_response({'image': wire.image_view(image)},
                              headers=wire.etag_header(image))


def delete(request, context, image_id):
    image_service().delete(context, image_id)
    return Response(body='', headers={'Content-Type': wire.HEAD_CONTENT_TYPE},
                    status_code=200)


def deactivate(request, context, image_id):
    image_service().set_deactivated(context, image_id, True)
    return Response(body='', status_code=204)


def reactivate(request, context, image_id):
    image_service().set_deactivated(context, image_id, False)
    return Response(body='', status_code=204)


def detail_head(request, context):
    raise method_not_allowed(request.method, 'GET')  # HEAD has no route: Allow says GET


def root_index(request, context):
    """`/v1/` lists for every method (a reference quirk, v1 §2); API Gateway
    drops the trailing slash, so this is also `/v1`."""
    return _brief_list(request, context)


def root_head(request, context):
    return Response(body='', headers={'Content-Type': wire.HEAD_CONTENT_TYPE},
                    status_code=200)


ROUTES = (
    ('/images', ['GET'], index),
    ('/images', ['POST'], create),
    ('/images/detail', ['GET'], detail),
    ('/images/detail', ['HEAD'], detail_head),
    ('/images/{image_id}', ['HEAD'], meta),
    ('/images/{image_id}', ['GET'], show),
    ('/images/{image_id}', ['PUT'], update),
    ('/images/{image_id}', ['DELETE'], delete),
    ('/images/{image_id}/actions/deactivate', ['POST'], deactivate),
    ('/images/{image_id}/actions/reactivate', ['POST'], reactivate),
    ('/', ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'], root_index),
    ('/', ['HEAD'], root_head),
)
# (path, methods the resource has, Allow header when it differs)
RESOURCES = (
    ('/images', ['GET', 'POST'], None),
    ('/images/detail', ['GET', 'HEAD'], None),
    ('/images/{image_id}', ['GET', 'HEAD', 'PUT', 'DELETE'], None),
    ('/images/{image_id}/actions/deactivate', ['POST'], None),
    ('/images/{image_id}/actions/reactivate', ['POST'], None),
)


def images_blueprint(authorizer=None, with_root=True):
    """The v1 routes; one blueprint per URL prefix (chalice registers each once).
    Without a prefix (media-type versioning) `/` stays version discovery's."""
    routes = ROUTES if with_root else [route for route in ROUTES if route[0] != '/']
    return blueprint_of(__name__, routes, RESOURCES, authorizer)
