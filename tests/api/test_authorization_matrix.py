"""The authorization matrix: every caller x every image state x every route.

The expected code of each cell comes from `expected()`, a transcription of the
v1 rules (§9-§12, §14, §15) written independently of the service's code.
Each cell gets a fresh image, so cells never depend on one another.
"""
import itertools
import json
import uuid

import pytest
from chalice.test import Client
from moto import mock_aws

from tests.helpers import ADMIN, PROJECT_DIR, meta_headers, tenant

pytestmark = pytest.mark.slow

CALLERS = {
    'owner': tenant('tenant-a'),
    'member': tenant('tenant-b'),          # holds a membership of the "shared" images
    'stranger': tenant('tenant-c'),
    'admin': ADMIN,
    'no-tenant': {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'},
}
STATUSES = ('queued', 'active', 'killed', 'deleted')
SHARINGS = ('public', 'private', 'shared')
ROUTES = ('head', 'download', 'update', 'upload', 'delete', 'list-members',
          'add-member', 'remove-member', 'listed')
CELLS = list(itertools.product(CALLERS, STATUSES, SHARINGS, ROUTES))


def expected(caller, status, sharing, route):
    """The v1 answer for one cell."""
    admin = caller == 'admin'
    owner = caller == 'owner'
    deleted = status == 'deleted'
    visible = admin or (not deleted and (sharing == 'public' or owner
                                         or (caller == 'member' and sharing == 'shared')))
    modifiable = admin or owner
    if route == 'listed':
        # admins list like a user of their own tenant; killed and deleted never listed
        listed_to = sharing == 'public' or owner or (caller == 'member' and sharing == 'shared')
        return visible and listed_to and status not in ('killed', 'deleted')
    if route == 'head':
        return 200 if visible else 404
    if route == 'download':
        return 200 if visible and status == 'active' else 404
    if route in ('update', 'upload'):
        if not visible:
            return 404
        if deleted:
            return 403
        if route == 'upload' and status != 'queued':
            return 409
        return 200 if modifiable else 403
    if route == 'delete':
        if not visible or deleted:
            return 404
        return 200 if modifiable else 403
    if route == 'list-members':
        return 200 if visible and not deleted else 404
    # membership changes: 401 without tenant, then 404 unless the caller may share
    if caller == 'no-tenant':
        return 401
    if not visible or deleted or not modifiable:
        return 404
    if route == 'remove-member' and sharing != 'shared':
        return 404          # no such membership
    return 204


@pytest.fixture(scope='module')
def matrix_client():
    with mock_aws():
        from chalicelib import composition
        from chalicelib.storage.resources import ensure_resources
        composition.reset()
        ensure_resources()
        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
            yield client
        composition.reset()


def _json(headers):
    return dict(headers, **{'Content-Type': 'application/json'})


def make_image(client, status, sharing):
    """An image owned by tenant-a in the given state; returns its id."""
    owner = CALLERS['owner']
    image_id = str(uuid.uuid4())
    headers = meta_headers(id=image_id, name='m', disk_format='raw', container_format='bare')
    creator = owner
    if sharing == 'public':  # only admins may publicize; they may also set the owner
        creator = ADMIN
        headers.update(meta_headers(is_public='true', owner='tenant-a'))
    body = b''
    if status in ('active', 'deleted'):
        headers['Content-Type'] = 'application/octet-stream'
        body = b'image bytes'
    elif status == 'killed':
        headers['Content-Type'] = 'text/plain'
        body = b'image bytes'
    response = client.http.post('/v1/images', headers=dict(creator, **headers), body=body)
    assert response.status_code == (400 if status == 'killed' else 201)
    if sharing == 'shared':
        shared = client.http.put('/v1/images/%s/members/tenant-b' % image_id,
                                 headers=owner)
        assert shared.status_code == 204
    if status == 'deleted':
        assert client.http.delete('/v1/images/%s' % image_id,
                                  headers=owner).status_code == 200
    return image_id


def perform(client, caller, image_id, route):
    identity = CALLERS[caller]
    path = '/v1/images/%s' % image_id
    if route == 'head':
        return client.http.request('HEAD', path, headers=identity).status_code
    if route == 'download':
        return client.http.get(path, headers=dict(identity, Accept='*/*')).status_code
    if route == 'update':
        return client.http.put(path, headers=dict(identity, **{
            'x-image-meta-property-checked': 'yes',
            'x-glance-registry-purge-props': 'false'})).status_code
    if route == 'upload':
        return client.http.put(path, headers=dict(identity, **{
            'Content-Type': 'application/octet-stream'}), body=b'new bytes').status_code
    if route == 'delete':
        return client.http.delete(path, headers=identity).status_code
    if route == 'list-members':
        return client.http.get(path + '/members', headers=identity).status_code
    if route == 'add-member':
        return client.http.put(path + '/members/tenant-z', headers=_json(identity),
                               body=json.dumps({'member': {'can_share': False}})).status_code
    assert route == 'remove-member', route
    return client.http.delete(path + '/members/tenant-b', headers=identity).status_code


@pytest.fixture(scope='module')
def listings(matrix_client):
    """One image per state, and what each caller's default listing shows."""
    images = {(status, sharing): make_image(matrix_client, status, sharing)
              for status in STATUSES for sharing in SHARINGS}
    listed = {}
    for caller, identity in CALLERS.items():
        response = matrix_client.http.get('/v1/images/detail?limit=1000', headers=identity)
        assert response.status_code == 200
        listed[caller] = {i['id'] for i in json.loads(response.body)['images']}
    return images, listed


@pytest.mark.parametrize('caller,status,sharing,route', CELLS,
                         ids=['-'.join(cell) for cell in CELLS])
def test_cell(request, matrix_client, caller, status, sharing, route):
    if route == 'listed':
        images, listed = request.getfixturevalue('listings')
        outcome = images[(status, sharing)] in listed[caller]
    else:
        outcome = perform(matrix_client, caller, make_image(matrix_client, status, sharing),
                          route)
    assert outcome == expected(caller, status, sharing, route)


def test_matrix_size():
    assert len(CELLS) == 5 * 4 * 3 * 9
