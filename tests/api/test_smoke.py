"""The main v1 flow through chalice.test.Client."""
import hashlib

from tests.helpers import ADMIN, body_json, create_image, head, tenant

A = tenant('tenant-a')


def test_create_upload_head_download_delete(client):
    data = b'hello glance v1 image data\n'
    response, image = create_image(client, A, data=data, properties={'os_distro': 'cirros'})
    assert response.status_code == 201
    assert image['status'] == 'active'
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['owner'] == 'tenant-a'
    assert response.headers['ETag'] == image['checksum']
    assert response.headers['Location'].endswith('/v1/images/%s' % image['id'])

    meta = head(client, A, image['id'])
    assert meta.status_code == 200
    assert meta.body == b''
    assert meta.headers['x-image-meta-status'] == 'active'
    assert meta.headers['x-image-meta-is_public'] == 'False'
    assert meta.headers['x-image-meta-property-os_distro'] == 'cirros'
    assert 'x-image-meta-deleted_at' not in meta.headers

    download = client.http.get('/v1/images/%s' % image['id'],
                               headers=dict(A, Accept='*/*'))
    assert download.status_code == 200
    assert download.body == data
    assert download.headers['Content-Type'] == 'application/octet-stream'

    deleted = client.http.delete('/v1/images/%s' % image['id'], headers=A)
    assert deleted.status_code == 200 and deleted.body == b''
    assert head(client, A, image['id']).status_code == 404
    admin_view = head(client, ADMIN, image['id'])
    assert admin_view.headers['x-image-meta-status'] == 'deleted'
    assert admin_view.headers['x-image-meta-deleted'] == 'True'


def test_listing_shows_own_and_public_only(client):
    create_image(client, A, name='a-private')
    create_image(client, tenant('tenant-b'), name='b-private')
    listed = body_json(client.http.get('/v1/images', headers=A))['images']
    assert [i['name'] for i in listed] == ['a-private']
    assert set(listed[0]) == {'id', 'name', 'size', 'disk_format', 'container_format',
                              'checksum'}
