"""HEAD and GET of one image: headers, statuses, visibility (v1 §4.2, §9, §10, §15)."""
import hashlib
import re
import uuid

import pytest

from tests.helpers import (ADMIN, body_json, create_image, get_header, head, list_images,
                           tenant)

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
B = tenant('tenant-b')
HEAD_CONTENT_TYPE = 'text/html; charset=UTF-8'
TIMESTAMP = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$')
DATA = b'some image bytes\x00\xff'


def _get(client, identity, image_id, **headers):
    return client.http.get('/v1/images/%s' % image_id,
                           headers=dict(identity, Accept='*/*', **headers))


def _killed_image(client, identity):
    """A record left `killed` by an upload with the wrong Content-Type (v1 §8)."""
    image_id = str(uuid.uuid4())
    headers = dict(identity, **{'x-image-meta-id': image_id, 'x-image-meta-name': 'dead',
                                'x-image-meta-disk_format': 'raw',
                                'x-image-meta-container_format': 'bare',
                                'Content-Type': 'text/plain'})
    response = client.http.post('/v1/images', headers=headers, body=b'not octets')
    assert response.status_code == 400
    assert b'Content-Type must be application/octet-stream' in response.body
    return image_id


def _deleted_image(client, identity, **fields):
    _, image = create_image(client, identity, data=DATA, **fields)
    assert client.http.delete('/v1/images/%s' % image['id'], headers=identity).status_code \
        == 200
    return image


# -- HEAD ------------------------------------------------------------------------------
def test_head_queued_image(client):
    _, image = create_image(client, A, name='q', properties={'os_distro': 'cirros'})
    response = head(client, A, image['id'])
    assert response.status_code == 200
    assert response.body == b''
    assert get_header(response, 'Content-Type') == HEAD_CONTENT_TYPE
    expected = {
        'x-image-meta-id': image['id'], 'x-image-meta-name': 'q',
        'x-image-meta-status': 'queued', 'x-image-meta-size': '0',
        'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare',
        'x-image-meta-min_disk': '0', 'x-image-meta-min_ram': '0',
        'x-image-meta-is_public': 'False', 'x-image-meta-protected': 'False',
        'x-image-meta-owner': 'tenant-a', 'x-image-meta-deleted': 'False',
        'x-image-meta-property-os_distro': 'cirros',
    }
    for name, value in expected.items():
        assert get_header(response, name) == value, name
    for timestamp in ('created_at', 'updated_at'):
        assert TIMESTAMP.match(get_header(response, 'x-image-meta-' + timestamp))
    # null fields are omitted: no checksum/ETag yet, no deleted_at, no virtual_size
    for absent in ('x-image-meta-checksum', 'ETag', 'x-image-meta-deleted_at',
                   'x-image-meta-virtual_size', 'x-image-meta-location',
                   'x-image-meta-properties', 'Content-MD5'):
        assert get_header(response, absent) is None, absent


def test_head_active_image_has_checksum_and_etag(client):
    _, image = create_image(client, A, data=DATA)
    response = head(client, A, image['id'])
    assert response.status_code == 200 and response.body == b''
    checksum = hashlib.md5(DATA).hexdigest()
    assert get_header(response, 'x-image-meta-status') == 'active'
    assert get_header(response, 'x-image-meta-size') == str(len(DATA))
    assert get_header(response, 'x-image-meta-checksum') == checksum
    assert get_header(response, 'ETag') == checksum
    assert get_header(response, 'x-image-meta-deleted_at') is None
    assert get_header(response, 'x-image-meta-location') is None
    assert get_header(response, 'Content-Type') == HEAD_CONTENT_TYPE


def test_head_killed_image_visible_to_owner(client):
    image_id = _killed_image(client, A)
    response = head(client, A, image_id)
    assert response.status_code == 200
    assert get_header(response, 'x-image-meta-status') == 'killed'
    assert get_header(response, 'x-image-meta-deleted') == 'False'
    assert get_header(response, 'x-image-meta-checksum') is None
    assert head(client, B, image_id).status_code == 404


def test_head_deleted_image_owner_404_admin_200(client):
    image = _deleted_image(client, A)
    owner_view = head(client, A, image['id'])
    assert owner_view.status_code == 404
    assert owner_view.body == b''
    admin_view = head(client, ADMIN, image['id'])
    assert admin_view.status_code == 200
    assert get_header(admin_view, 'x-image-meta-status') == 'deleted'
    assert get_header(admin_view, 'x-image-meta-deleted') == 'True'
    assert TIMESTAMP.match(get_header(admin_view, 'x-image-meta-deleted_at'))


def test_head_typed_values(client):
    _, image = create_image(client, ADMIN, name='typed', is_public='true', protected='true',
                            min_ram=512, min_disk=3, virtual_size=4096,
                            properties={'Mixed-Case': 'v', 'empty': ''})
    response = head(client, B, image['id'])
    assert response.status_code == 200
    assert get_header(response, 'x-image-meta-is_public') == 'True'
    assert get_header(response, 'x-image-meta-protected') == 'True'
    assert get_header(response, 'x-image-meta-min_ram') == '512'
    assert get_header(response, 'x-image-meta-min_disk') == '3'
    assert get_header(response, 'x-image-meta-virtual_size') == '4096'
    # property names lower-cased, '-' -> '_'; null-valued properties omitted
    assert get_header(response, 'x-image-meta-property-mixed_case') == 'v'
    assert get_header(response, 'x-image-meta-property-empty') is None


def test_head_unknown_image_404_empty_body(client):
    response = head(client, A, str(uuid.uuid4()))
    assert response.status_code == 404
    assert response.body == b''
    assert get_header(response, 'Content-Type')


# -- GET --------------------------------------------------------------------------------
def test_get_active_image_body_and_headers(client):
    _, image = create_image(client, A, data=DATA, properties={'os_distro': 'cirros'})
    response = _get(client, A, image['id'])
    assert response.status_code == 200
    assert response.body == DATA
    assert get_header(response, 'Content-Type') == 'application/octet-stream'
    checksum = hashlib.md5(DATA).hexdigest()
    assert get_header(response, 'ETag') == checksum
    assert get_header(response, 'x-image-meta-checksum') == checksum
    assert get_header(response, 'x-image-meta-size') == str(len(DATA))
    assert get_header(response, 'x-image-meta-status') == 'active'
    assert get_header(response, 'x-image-meta-property-os_distro') == 'cirros'
    assert get_header(response, 'x-image-meta-location') is None
    length = get_header(response, 'Content-Length')
    assert length is None or length == str(len(DATA))


def test_get_queued_image_is_404_not_active(client):
    _, image = create_image(client, A)
    response = _get(client, A, image['id'])
    assert response.status_code == 404
    assert ('Image %s is not active' % image['id']).encode() in response.body


def test_get_killed_image_is_404_not_active(client):
    image_id = _killed_image(client, A)
    response = _get(client, A, image_id)
    assert response.status_code == 404
    assert ('Image %s is not active' % image_id).encode() in response.body


def test_get_deleted_image_admin_404_not_active_owner_plain_404(client):
    image = _deleted_image(client, A)
    admin = _get(client, ADMIN, image['id'])
    assert admin.status_code == 404
    assert ('Image %s is not active' % image['id']).encode() in admin.body
    owner = _get(client, A, image['id'])
    assert owner.status_code == 404
    assert b'is not active' not in owner.body


def test_get_size_zero_image_is_active_and_empty(client):
    response, image = create_image(client, A, size=0)
    assert response.status_code == 201
    assert image['status'] == 'active'
    assert image['size'] == 0
    download = _get(client, A, image['id'])
    assert download.status_code == 200
    assert download.body == b''
    assert get_header(download, 'Content-Type') == 'application/octet-stream'
    assert get_header(download, 'x-image-meta-size') == '0'
    assert get_header(download, 'x-image-meta-status') == 'active'


def test_range_header_is_ignored(client):
    _, image = create_image(client, A, data=DATA)
    for extra in ({'Range': 'bytes=0-3'}, {'Content-Range': 'bytes 0-3/*'},
                  {'Range': 'bytes=5-'}):
        response = _get(client, A, image['id'], **extra)
        assert response.status_code == 200, extra
        assert response.body == DATA


def test_get_unknown_image_404(client):
    image_id = str(uuid.uuid4())
    response = _get(client, A, image_id)
    assert response.status_code == 404
    assert ('Image with identifier %s not found' % image_id).encode() in response.body


# -- visibility --------------------------------------------------------------------------
def test_private_image_invisible_to_other_tenant_is_404_never_403(client):
    _, image = create_image(client, A, data=DATA)
    path = '/v1/images/%s' % image['id']
    assert head(client, B, image['id']).status_code == 404
    assert _get(client, B, image['id']).status_code == 404
    assert client.http.put(path, headers=dict(B, **{'x-image-meta-name': 'x'})).status_code \
        == 404
    assert client.http.delete(path, headers=B).status_code == 404
    # unchanged for the owner
    meta = head(client, A, image['id'])
    assert get_header(meta, 'x-image-meta-name') == 'image'
    assert get_header(meta, 'x-image-meta-status') == 'active'


def test_admin_sees_private_images_of_other_tenants(client):
    _, image = create_image(client, A, data=DATA)
    assert head(client, ADMIN, image['id']).status_code == 200
    download = _get(client, ADMIN, image['id'])
    assert download.status_code == 200 and download.body == DATA


def test_public_image_visible_to_other_tenants(client):
    _, image = create_image(client, ADMIN, data=DATA, is_public='true', owner='tenant-a')
    meta = head(client, B, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-is_public') == 'True'
    assert get_header(meta, 'x-image-meta-owner') == 'tenant-a'
    download = _get(client, B, image['id'])
    assert download.status_code == 200 and download.body == DATA
    listed = body_json(list_images(client, B))['images']
    assert [i['id'] for i in listed] == [image['id']]


def test_public_image_still_refuses_changes_by_other_tenants(client):
    _, image = create_image(client, ADMIN, is_public='true', owner='tenant-a')
    path = '/v1/images/%s' % image['id']
    assert client.http.put(path, headers=dict(B, **{'x-image-meta-name': 'x'})).status_code \
        == 403
    assert client.http.delete(path, headers=B).status_code == 403


def test_ownerless_image_visible_to_all_but_listed_only_if_public(client):
    _, ownerless = create_image(client, ADMIN, data=DATA, owner='', name='ownerless')
    assert ownerless['owner'] is None
    for caller in (A, B, tenant('tenant-c')):
        meta = head(client, caller, ownerless['id'])
        assert meta.status_code == 200
        assert get_header(meta, 'x-image-meta-owner') is None
        download = _get(client, caller, ownerless['id'])
        assert download.status_code == 200 and download.body == DATA
        assert body_json(list_images(client, caller))['images'] == []
    _, public_ownerless = create_image(client, ADMIN, owner='', is_public='true')
    listed = body_json(list_images(client, B))['images']
    assert [i['id'] for i in listed] == [public_ownerless['id']]


def test_deleted_public_image_invisible_to_non_admins(client):
    image = _deleted_image(client, ADMIN, is_public='true')
    assert head(client, B, image['id']).status_code == 404
    assert _get(client, B, image['id']).status_code == 404
    assert head(client, ADMIN, image['id']).status_code == 200
