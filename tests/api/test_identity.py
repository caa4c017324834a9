"""Identity from trusted headers, and the noauth mode (v1 §1, §15)."""
import pytest

from tests.helpers import (ADMIN, body_json, create_image, get_header, head, list_images,
                           tenant)

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
B = tenant('tenant-b')


def _identity(**headers):
    return dict({'X-Identity-Status': 'Confirmed'}, **headers)


# -- trusted headers: X-Identity-Status -------------------------------------------------
@pytest.mark.parametrize('status', [None, 'Invalid', 'confirmed', 'CONFIRMED', ''])
def test_identity_status_other_than_confirmed_is_401(client, status):
    headers = {'X-Tenant-Id': 'tenant-a', 'X-Roles': 'admin'}
    if status is not None:
        headers['X-Identity-Status'] = status
    for method, path in (('GET', '/v1/images'), ('GET', '/v1/images/detail'),
                         ('POST', '/v1/images')):
        response = client.http.request(method, path, headers=headers)
        assert response.status_code == 401, (status, method, path)
        assert get_header(response, 'Content-Type')


def test_401_on_image_routes_even_for_existing_images(client):
    _, image = create_image(client, A)
    no_identity = {'X-Tenant-Id': 'tenant-a', 'X-Roles': 'member'}
    for method in ('HEAD', 'GET', 'PUT', 'DELETE'):
        response = client.http.request(method, '/v1/images/%s' % image['id'],
                                       headers=no_identity)
        assert response.status_code == 401, method
    # nothing was changed by the refused requests
    meta = head(client, A, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-status') == 'queued'


def test_unauthenticated_create_stores_nothing(client):
    response = client.http.post('/v1/images', headers={'x-image-meta-name': 'sneaky',
                                                       'X-Tenant-Id': 'tenant-a'})
    assert response.status_code == 401
    assert body_json(list_images(client, ADMIN, is_public='none'))['images'] == []


def test_401_body_mentions_authorization(client):
    response = client.http.get('/v1/images', headers={'Accept': 'application/json'})
    assert response.status_code == 401
    document = body_json(response)
    assert document['code'] == '401 Unauthorized'
    assert document['title'] == 'Unauthorized'
    assert 'authorized' in document['message']


# -- tenant ------------------------------------------------------------------------------
def test_tenant_id_sets_owner(client):
    response, image = create_image(client, _identity(**{'X-Tenant-Id': 'tenant-t'}))
    assert response.status_code == 201
    assert image['owner'] == 'tenant-t'


def test_project_id_alone_sets_owner(client):
    _, image = create_image(client, _identity(**{'X-Project-Id': 'project-p'}))
    assert image['owner'] == 'project-p'


def test_project_id_wins_over_tenant_id(client):
    both = _identity(**{'X-Project-Id': 'project-p', 'X-Tenant-Id': 'tenant-t'})
    _, image = create_image(client, both)
    assert image['owner'] == 'project-p'
    # and visibility follows the project, not the tenant header
    assert head(client, _identity(**{'X-Tenant-Id': 'project-p'}), image['id']).status_code \
        == 200
    assert head(client, _identity(**{'X-Tenant-Id': 'tenant-t'}), image['id']).status_code \
        == 404
    listed = body_json(list_images(client, both))['images']
    assert [i['id'] for i in listed] == [image['id']]


def test_no_tenant_creates_ownerless_and_sees_only_public(client):
    nobody = _identity(**{'X-Roles': 'member'})
    response, image = create_image(client, nobody, name='nobodys')
    assert response.status_code == 201
    assert image['owner'] is None
    meta = head(client, nobody, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-owner') is None
    _, private = create_image(client, A, name='a-private')
    _, public = create_image(client, ADMIN, name='public', is_public='true')
    listed = body_json(list_images(client, nobody))['images']
    # a caller without a tenant lists only public images (its ownerless one is not public)
    assert [i['id'] for i in listed] == [public['id']]
    assert head(client, nobody, private['id']).status_code == 404


# -- roles -------------------------------------------------------------------------------
@pytest.mark.parametrize('roles', ['admin', 'Admin', 'ADMIN', 'member,Admin', 'member, admin',
                                   ' admin '])
def test_roles_are_lower_cased_and_split(client, roles):
    _, private = create_image(client, B, name='b-private')
    admin = _identity(**{'X-Tenant-Id': 'tenant-x', 'X-Roles': roles})
    # admins see every image ...
    assert head(client, admin, private['id']).status_code == 200
    # ... and may publicize (publicize_image is role:admin)
    response, image = create_image(client, admin, is_public='true')
    assert response.status_code == 201, response.body
    assert image['is_public'] is True


@pytest.mark.parametrize('roles', ['member', 'administrator', 'admins', 'reader,member', ''])
def test_non_admin_roles(client, roles):
    _, private = create_image(client, B, name='b-private')
    caller = _identity(**{'X-Tenant-Id': 'tenant-x', 'X-Roles': roles})
    assert head(client, caller, private['id']).status_code == 404
    response, _ = create_image(client, caller, is_public='true')
    assert response.status_code == 403


def test_missing_roles_header_is_a_plain_user(client):
    caller = _identity(**{'X-Tenant-Id': 'tenant-x'})
    response, image = create_image(client, caller)
    assert response.status_code == 201
    assert image['owner'] == 'tenant-x'
    response, _ = create_image(client, caller, is_public='true')
    assert response.status_code == 403


def test_roles_do_not_change_owner(client):
    # an admin still creates images for its own tenant unless it sends an owner
    _, image = create_image(client, ADMIN)
    assert image['owner'] == 'tenant-admin'
    _, other = create_image(client, ADMIN, owner='tenant-z')
    assert other['owner'] == 'tenant-z'


def test_non_admin_owner_header_is_ignored(client):
    response, image = create_image(client, A, owner='tenant-z')
    assert response.status_code == 201
    assert image['owner'] == 'tenant-a'


# -- noauth ------------------------------------------------------------------------------
def test_noauth_every_request_is_admin_without_tenant(client, settings_override):
    _, private = create_image(client, A, name='a-private')
    settings_override(auth_mode='noauth')
    # no identity headers at all: no 401
    response = client.http.post('/v1/images', headers={'x-image-meta-name': 'anon'})
    assert response.status_code == 201
    created = body_json(response)['image']
    assert created['owner'] is None
    # admin: sees the private image of tenant-a
    meta = client.http.request('HEAD', '/v1/images/%s' % private['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-owner') == 'tenant-a'


def test_noauth_ignores_identity_headers(client, settings_override):
    settings_override(auth_mode='noauth')
    headers = {'X-Identity-Status': 'Invalid', 'X-Tenant-Id': 'tenant-a',
               'X-Roles': 'admin', 'x-image-meta-name': 'anon'}
    response = client.http.post('/v1/images', headers=headers)
    assert response.status_code == 201
    assert body_json(response)['image']['owner'] is None


def test_noauth_cannot_publicize(client, settings_override):
    # is_admin but no admin *role*: publicize_image (role:admin) refuses, as the reference
    settings_override(auth_mode='noauth')
    response = client.http.post('/v1/images', headers={'x-image-meta-name': 'pub',
                                                       'x-image-meta-is_public': 'true'})
    assert response.status_code == 403
    assert body_json(client.http.get('/v1/images?is_public=none'))['images'] == []


def test_noauth_admin_owner_header_honoured(client, settings_override):
    settings_override(auth_mode='noauth')
    response = client.http.post('/v1/images', headers={'x-image-meta-owner': 'tenant-q'})
    assert response.status_code == 201
    assert body_json(response)['image']['owner'] == 'tenant-q'


def test_noauth_listing_is_public_only_unless_is_public_overridden(client, settings_override):
    _, private = create_image(client, A, name='a-private')
    _, public = create_image(client, ADMIN, name='public', is_public='true')
    settings_override(auth_mode='noauth')
    _, ownerless = create_image(client, {}, name='ownerless')
    # admin without tenant: default listing = like a user without tenant = public only
    assert [i['id'] for i in body_json(client.http.get('/v1/images'))['images']] \
        == [public['id']]
    everything = body_json(client.http.get('/v1/images?is_public=none'))['images']
    assert {i['id'] for i in everything} == {private['id'], public['id'], ownerless['id']}
    non_public = body_json(client.http.get('/v1/images?is_public=false'))['images']
    assert {i['id'] for i in non_public} == {private['id'], ownerless['id']}


def test_noauth_admin_can_modify_and_delete_any_image(client, settings_override):
    _, private = create_image(client, A, name='a-private')
    settings_override(auth_mode='noauth')
    renamed = client.http.put('/v1/images/%s' % private['id'],
                              headers={'x-image-meta-name': 'renamed'})
    assert renamed.status_code == 200
    assert body_json(renamed)['image']['name'] == 'renamed'
    assert body_json(renamed)['image']['owner'] == 'tenant-a'
    deleted = client.http.delete('/v1/images/%s' % private['id'])
    assert deleted.status_code == 200
    meta = client.http.request('HEAD', '/v1/images/%s' % private['id'])
    assert get_header(meta, 'x-image-meta-status') == 'deleted'


def test_noauth_responses_still_carry_request_id(client, settings_override):
    settings_override(auth_mode='noauth')
    response = client.http.get('/v1/images', headers={'X-Openstack-Request-Id': 'abc'})
    assert response.status_code == 200
    assert get_header(response, 'x-openstack-request-id') == 'req-abc'
