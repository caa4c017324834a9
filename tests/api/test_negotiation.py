"""Version negotiation by Accept and trailing slashes, as the reference answers them
(Glance 15.0.2's version_negotiation middleware and v1 router, asked side by side)."""
import json
import uuid

import pytest

from tests.helpers import create_image, get_header, tenant

A = tenant('tenant-a')
V1_TYPES = ('application/vnd.openstack.images-v1', 'application/vnd.openstack.images-v1.0',
            'application/vnd.openstack.images-v1.1')
UNKNOWN_TYPES = ('application/vnd.openstack.images-v3', 'application/vnd.openstack.images-v2',
                 'application/vnd.openstack.images-v1;q=0.9',
                 'application/vnd.openstack.images-v1, */*', 'application/json', None)


def _get(client, path, accept, method='GET', **extra):
    headers = dict(A, **({'Accept': accept} if accept else {}), **extra)
    return client.http.request(method, path, headers=headers)


@pytest.mark.parametrize('accept', V1_TYPES)
def test_v1_media_type_serves_unversioned_paths_as_v1(client, accept):
    _, image = create_image(client, A, data=b'negotiated bytes', name='negotiated')
    for path, key in (('/images', 'images'), ('/images/detail', 'images'),
                      ('/', 'images'), ('/shared-images/tenant-a', 'shared_images')):
        response = _get(client, path, accept)
        assert response.status_code == 200, (path, response.body)
        assert key in json.loads(response.body)
        assert get_header(response, 'x-openstack-request-id')
    listed = json.loads(_get(client, '/images', accept).body)['images']
    assert [i['name'] for i in listed] == ['negotiated']
    download = _get(client, '/images/%s' % image['id'], accept)
    assert download.status_code == 200 and download.body == b'negotiated bytes'
    meta = _get(client, '/images/%s' % image['id'], accept, method='HEAD')
    assert meta.headers['x-image-meta-name'] == 'negotiated'


@pytest.mark.parametrize('accept', UNKNOWN_TYPES)
def test_other_media_types_get_the_versions(client, accept):
    for path in ('/images', '/images/detail', '/images/%s' % uuid.uuid4(), '/'):
        response = _get(client, path, accept)
        assert response.status_code == 300, (path, accept)
        assert 'versions' in json.loads(response.body)
        assert get_header(response, 'x-openstack-request-id') is None


def test_v1_media_type_on_a_versioned_path_is_not_found(client):
    """The reference looks for /v1/v1/images."""
    response = _get(client, '/v1/images', V1_TYPES[0])
    assert response.status_code == 404
    assert b'The resource could not be found.' in response.body
    assert get_header(response, 'x-openstack-request-id')
    assert _get(client, '/v1/images', UNKNOWN_TYPES[0]).status_code == 300
    assert _get(client, '/versions', V1_TYPES[0]).status_code == 200


@pytest.mark.parametrize('method', ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'])
def test_trailing_slash_is_not_found(client, method):
    image_id = str(uuid.uuid4())
    for path in ('/v1/images/', '/v1/images/detail/', '/v1/shared-images/',
                 '/v1/images/%s/' % image_id, '/v1/images/%s/members/' % image_id,
                 '/v1.1/images/'):
        response = _get(client, path, None, method=method)
        assert response.status_code == 404, (method, path, response.body)
        assert get_header(response, 'Allow') is None
        assert get_header(response, 'x-openstack-request-id')
        if method != 'HEAD':
            assert b'The resource could not be found.' in response.body
    for root in ('/v1/', '/v1.0/', '/v1.1/'):
        assert _get(client, root, None, method=method).status_code == 200
    assert _get(client, '/images/', None, method=method).status_code == 300
    assert _get(client, '/images/', V1_TYPES[0], method=method).status_code == 404


def test_trailing_slash_needs_identity_first(client):
    response = client.http.request('DELETE', '/v1/images/', headers={})
    assert response.status_code == 401
