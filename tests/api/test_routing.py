"""Version discovery, URL prefixes, the v1 route table and request ids (v1 §1, §2, §3)."""
import json
import re
import uuid

import pytest

from tests.helpers import ADMIN, body_json, create_image, get_header, tenant

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
REQUEST_ID = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def _versions_body(response):
    assert get_header(response, 'Content-Type').startswith('application/json')
    return json.loads(response.body)


# -- §2 version discovery ---------------------------------------------------------------
def test_versions_document(client):
    response = client.http.get('/versions')
    assert response.status_code == 200
    document = _versions_body(response)
    versions = document['versions']
    # v1-only deployment: exactly the two v1 entries, v1.1 first
    assert [v['id'] for v in versions] == ['v1.1', 'v1.0']
    for version in versions:
        assert version['status'] == 'DEPRECATED'
        assert len(version['links']) == 1
        link = version['links'][0]
        assert link['rel'] == 'self'
        assert link['href'].endswith('/v1/')
        assert link['href'].startswith('http')


def test_versions_needs_no_identity_and_has_no_request_id(client):
    response = client.http.get('/versions', headers={'X-Openstack-Request-Id': 'abc'})
    assert response.status_code == 200
    assert get_header(response, 'x-openstack-request-id') is None


def test_versions_href_uses_public_endpoint(client, settings_override):
    settings_override(public_endpoint='https://images.example.com')
    versions = _versions_body(client.http.get('/versions'))['versions']
    assert {v['links'][0]['href'] for v in versions} == {'https://images.example.com/v1/'}


@pytest.mark.parametrize('path', ['/', '/images', '/v9/images', '/v2/images', '/v1.2/images',
                                  '/v1.a/images', '/va.1/images', '/v10', '/v2',
                                  '/images/detail'])
def test_unversioned_or_unknown_version_is_300_with_versions_body(client, path):
    expected = _versions_body(client.http.get('/versions'))
    response = client.http.get(path)
    assert response.status_code == 300
    assert _versions_body(response) == expected
    assert get_header(response, 'x-openstack-request-id') is None


def test_300_does_not_need_identity_headers(client):
    # served before the context middleware: even bad identity gets the choices
    response = client.http.get('/v9/images', headers={'X-Identity-Status': 'Invalid'})
    assert response.status_code == 300


@pytest.mark.parametrize('prefix', ['/v1.0', '/v1.1'])
def test_v1_0_and_v1_1_prefixes_are_v1(client, prefix):
    _, image = create_image(client, A, name='prefixed')
    listed = body_json(client.http.get(prefix + '/images', headers=A))['images']
    assert [i['id'] for i in listed] == [image['id']]
    detail = body_json(client.http.get(prefix + '/images/detail', headers=A))['images']
    assert detail[0]['name'] == 'prefixed'
    meta = client.http.request('HEAD', '%s/images/%s' % (prefix, image['id']), headers=A)
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-id') == image['id']
    assert REQUEST_ID.match(get_header(meta, 'x-openstack-request-id'))


@pytest.mark.parametrize('prefix', ['/v1.0', '/v1.1'])
def test_create_through_alias_prefix_gives_v1_location(client, prefix):
    response = client.http.post(prefix + '/images', headers=dict(
        A, **{'x-image-meta-name': 'aliased'}))
    assert response.status_code == 201
    image = body_json(response)['image']
    # the version segment is rewritten to /v1 before the v1 app sees the path
    assert get_header(response, 'Location').endswith('/v1/images/%s' % image['id'])


@pytest.mark.parametrize('path', ['/v1', '/v1/'])
def test_v1_root_lists_images(client, path):
    # API Gateway drops the trailing slash: /v1 and /v1/ both answer the brief list
    _, image = create_image(client, A, name='rooted')
    response = client.http.get(path, headers=A)
    assert response.status_code == 200
    assert [i['id'] for i in body_json(response)['images']] == [image['id']]


# -- §2/§3 unknown paths under /v1 ------------------------------------------------------
@pytest.mark.parametrize('path', ['/v1/foo', '/v1/images.xxx', '/v1/versions',
                                  '/v1/images/detail.xxx', '/v1/foo/bar',
                                  '/v1.1/foo', '/v1.0/versions'])
def test_unknown_paths_under_v1_are_404(client, path):
    response = client.http.get(path, headers=A)
    assert response.status_code == 404
    assert get_header(response, 'Content-Type')


def test_unknown_image_member_suffix_is_404(client):
    _, image = create_image(client, A)
    response = client.http.get('/v1/images/%s/members.xxx' % image['id'], headers=A)
    assert response.status_code == 404


def test_get_images_new_is_unknown_image(client):
    response = client.http.get('/v1/images/new', headers=A)
    assert response.status_code == 404
    assert b'Image with identifier new not found' in response.body


@pytest.mark.parametrize('method', ['GET', 'HEAD', 'PUT', 'DELETE'])
def test_unknown_image_ids_are_not_validated_just_404(client, method):
    response = client.http.request(method, '/v1/images/1', headers=A)
    assert response.status_code == 404


def test_unknown_path_under_v1_carries_request_id(client):
    # /v1/... passes through the context middleware in the reference (observed)
    response = client.http.get('/v1/foo', headers=dict(A, **{'X-Openstack-Request-Id': 'abc'}))
    assert response.status_code == 404
    assert get_header(response, 'x-openstack-request-id') == 'req-abc'


# -- §3 405 with Allow ------------------------------------------------------------------
IMAGE_ID = '2a6b3e0c-5d7f-4a4e-9b8d-0c1e2f3a4b5c'


@pytest.mark.parametrize('method,path,allow', [
    ('DELETE', '/v1/images', 'GET, POST'),
    ('PATCH', '/v1/images', 'GET, POST'),
    ('PUT', '/v1/images', 'GET, POST'),
    ('HEAD', '/v1/images', 'GET, POST'),
    ('PUT', '/v1/images/detail', 'GET, HEAD'),
    ('POST', '/v1/images/detail', 'GET, HEAD'),
    ('DELETE', '/v1/images/detail', 'GET, HEAD'),
    ('PATCH', '/v1/images/detail', 'GET, HEAD'),
    ('HEAD', '/v1/images/detail', 'GET'),
    ('POST', '/v1/images/%s' % IMAGE_ID, 'GET, HEAD, PUT, DELETE'),
    ('PATCH', '/v1/images/%s' % IMAGE_ID, 'GET, HEAD, PUT, DELETE'),
    ('POST', '/v1/images/%s/members' % IMAGE_ID, 'GET, PUT'),
    ('DELETE', '/v1/images/%s/members' % IMAGE_ID, 'GET, PUT'),
    ('PATCH', '/v1/images/%s/members' % IMAGE_ID, 'GET, PUT'),
    ('HEAD', '/v1/images/%s/members' % IMAGE_ID, 'GET, PUT'),
    ('POST', '/v1/images/%s/members/tenant-b' % IMAGE_ID, 'GET, PUT, DELETE'),
    ('PATCH', '/v1/images/%s/members/tenant-b' % IMAGE_ID, 'GET, PUT, DELETE'),
    ('HEAD', '/v1/images/%s/members/tenant-b' % IMAGE_ID, 'GET, PUT, DELETE'),
])
def test_method_not_allowed_with_allow_header(client, method, path, allow):
    response = client.http.request(method, path, headers=A)
    assert response.status_code == 405
    assert get_header(response, 'Allow') == allow
    assert REQUEST_ID.match(get_header(response, 'x-openstack-request-id'))
    if method == 'HEAD':
        assert response.body == b''


def test_405_on_existing_image_as_well(client):
    _, image = create_image(client, A)
    response = client.http.post('/v1/images/%s' % image['id'], headers=A)
    assert response.status_code == 405
    assert get_header(response, 'Allow') == 'GET, HEAD, PUT, DELETE'
    # and nothing changed
    assert client.http.request('HEAD', '/v1/images/%s' % image['id'],
                               headers=A).status_code == 200


def test_405_via_alias_prefix(client):
    response = client.http.request('DELETE', '/v1.1/images', headers=A)
    assert response.status_code == 405
    assert get_header(response, 'Allow') == 'GET, POST'


def test_get_single_membership_is_405_without_allow(client):
    _, image = create_image(client, A)
    response = client.http.get('/v1/images/%s/members/tenant-b' % image['id'], headers=A)
    assert response.status_code == 405
    assert get_header(response, 'Allow') is None


# -- §1 request ids ---------------------------------------------------------------------
def test_generated_request_id_on_success(client):
    first = client.http.get('/v1/images', headers=A)
    second = client.http.get('/v1/images', headers=A)
    assert first.status_code == second.status_code == 200
    first_id = get_header(first, 'x-openstack-request-id')
    second_id = get_header(second, 'x-openstack-request-id')
    assert REQUEST_ID.match(first_id) and REQUEST_ID.match(second_id)
    uuid.UUID(first_id[len('req-'):])
    assert first_id != second_id


def test_request_id_on_every_kind_of_v1_response(client):
    response, image = create_image(client, A, data=b'bytes')
    responses = [
        response,                                                            # 201
        client.http.request('HEAD', '/v1/images/%s' % image['id'], headers=A),  # 200 HEAD
        client.http.get('/v1/images/%s' % image['id'], headers=dict(A, Accept='*/*')),
        client.http.get('/v1/images/detail', headers=A),
        client.http.put('/v1/images/%s' % image['id'],
                        headers=dict(A, **{'x-image-meta-name': 'renamed'})),
        client.http.get('/v1/images?limit=bad', headers=A),                  # 400
        client.http.request('HEAD', '/v1/images/nope', headers=A),           # 404 HEAD
        client.http.get('/v1/images/nope', headers=A),                       # 404
        client.http.delete('/v1/images/%s' % image['id'], headers=A),        # 200 empty
    ]
    codes = [r.status_code for r in responses]
    assert codes == [201, 200, 200, 200, 200, 400, 404, 404, 200]
    for response in responses:
        assert REQUEST_ID.match(get_header(response, 'x-openstack-request-id') or ''), \
            response.status_code


@pytest.mark.parametrize('sent,echoed', [
    ('abc', 'req-abc'),
    ('req-x', 'req-x'),
    ('req-6a8f5c3e-0000-4000-8000-000000000001', 'req-6a8f5c3e-0000-4000-8000-000000000001'),
    ('a' * 64, 'req-' + 'a' * 64),
])
def test_client_request_id_is_echoed(client, sent, echoed):
    response = client.http.get('/v1/images', headers=dict(A, **{'X-Openstack-Request-Id': sent}))
    assert response.status_code == 200
    assert get_header(response, 'x-openstack-request-id') == echoed


def test_client_request_id_echoed_on_errors(client):
    headers = dict(A, **{'X-Openstack-Request-Id': 'abc'})
    response = client.http.get('/v1/images/nope', headers=headers)
    assert response.status_code == 404
    assert get_header(response, 'x-openstack-request-id') == 'req-abc'


def test_request_id_longer_than_64_is_431(client):
    response = client.http.get('/v1/images',
                               headers=dict(A, **{'X-Openstack-Request-Id': 'a' * 65}))
    assert response.status_code == 431
    assert get_header(response, 'Content-Type')


def test_request_id_too_long_refuses_before_acting(client):
    headers = dict(A, **{'X-Openstack-Request-Id': 'r' * 65, 'x-image-meta-name': 'no'})
    response = client.http.post('/v1/images', headers=headers)
    assert response.status_code == 431
    listed = body_json(client.http.get('/v1/images', headers=A))['images']
    assert listed == []


@pytest.mark.parametrize('path', ['/', '/versions', '/v9/images'])
def test_no_request_id_on_versions_documents(client, path):
    response = client.http.get(path, headers=dict(ADMIN, **{'X-Openstack-Request-Id': 'abc'}))
    assert response.status_code in (200, 300)
    assert get_header(response, 'x-openstack-request-id') is None
