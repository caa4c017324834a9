"""The v1 membership routes (v1 §14): parse, call the member service, render."""
from chalice import Response

from chalicelib.api import wire
from chalicelib.api.common import (ALL_METHODS, MALFORMED_JSON, blueprint_of, json_document,
                                   member_service)
from chalicelib.api.errors import method_not_allowed
from chalicelib.domain.errors import Invalid


def _json_body(request):
    """A membership document: an object or a list (None without a body)."""
    return json_document(request, (dict, list), MALFORMED_JSON)


def _can_share(entry):
    """`can_share` with the reference's truthiness, or None when not given."""
    if isinstance(entry, dict) and 'can_share' in entry:
        return bool(entry['can_share'])
    return None


def index(request, context, image_id):
    members = member_service().list_members(context, image_id)
    return wire.json_response({'members': [
        {'member_id': m['member_id'], 'can_share': m['can_share']} for m in members]})


def replace_all(request, context, image_id):
    if not request.raw_body:
        raise Invalid('A JSON body {"memberships": [...]} is required.')
    document = _json_body(request)
    entries = document['memberships'] if isinstance(document, dict) and \
        'memberships' in document else [document] if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise Invalid('Invalid membership association: memberships must be a list')
    memberships = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get('member_id'), str):
            raise Invalid("Invalid membership association: 'member_id'")
        memberships.append((entry['member_id'], _can_share(entry)))
    member_service().replace_members(context, image_id, memberships)
    return Response(body='', status_code=204)


def add(request, context, image_id, member):
    can_share = None
    document = _json_body(request)
    if isinstance(document, dict):
        can_share = _can_share(document.get('member'))
    member_service().add_member(context, image_id, member, can_share)
    return Response(body='', status_code=204)


def remove(request, context, image_id, member):
    member_service().remove_member(context, image_id, member)
    return Response(body='', status_code=204)


def show(request, context, image_id, member):
    raise method_not_allowed(request.method, None)  # v1 has no "show member"


def shared_images(request, context, member):
    memberships = member_service().shared_images(context, member)
    return wire.json_response({'shared_images': [
        {'image_id': m['image_id'], 'can_share': m['can_share']} for m in memberships]})


ROUTES = (
    ('/images/{image_id}/members', ['GET'], index),
    ('/images/{image_id}/members', ['PUT'], replace_all),
    ('/images/{image_id}/members/{member}', ['PUT'], add),
    ('/images/{image_id}/members/{member}', ['DELETE'], remove),
    ('/images/{image_id}/members/{member}', ['GET'], show),
    ('/shared-images/{member}', list(ALL_METHODS), shared_images),
)
RESOURCES = (
    ('/images/{image_id}/members', ['GET', 'PUT'], None),
    ('/images/{image_id}/members/{member}', ['GET', 'PUT', 'DELETE'], None),
)


def members_blueprint(authorizer=None):
    return blueprint_of(__name__, ROUTES, RESOURCES, authorizer)
