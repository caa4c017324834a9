"""Uploading image data on POST and PUT: the status lifecycle of v1 §6 and §8."""
import hashlib

from tests.helpers import (ADMIN, OCTET, admin_view, body_json, create_image, delete_image,
                           error_text, get_header, head, stored_image_ids, stored_object,
                           stored_object_keys, tenant, update_image)

A = tenant('tenant-a')
B = tenant('tenant-b')
DATA = b'glance v1 image bytes\n' * 3
MD5 = hashlib.md5(DATA).hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def status_of(client, image_id):
    return admin_view(client, image_id)['x-image-meta-status']


def reserve(client, identity=A, **fields):
    response, image = create_image(client, identity, **fields)
    assert response.status_code == 201 and image['status'] == 'queued'
    return image


def download(client, identity, image_id):
    return client.http.get('/v1/images/%s' % image_id, headers=dict(identity, Accept='*/*'))


# -- successful uploads ----------------------------------------------------------
def test_upload_on_post(client):
    response, image = create_image(client, A, data=DATA)
    assert response.status_code == 201
    assert image['status'] == 'active'
    assert image['size'] == len(DATA)
    assert image['checksum'] == MD5
    assert get_header(response, 'ETag') == MD5
    assert stored_object_keys() == ['images/%s' % image['id']]
    assert stored_object(image['id']) == DATA
    meta = head(client, A, image['id'])
    assert get_header(meta, 'x-image-meta-status') == 'active'
    assert get_header(meta, 'x-image-meta-size') == str(len(DATA))
    assert get_header(meta, 'x-image-meta-checksum') == MD5
    assert get_header(meta, 'ETag') == MD5
    got = download(client, A, image['id'])
    assert got.status_code == 200 and got.body == DATA


def test_upload_on_post_with_matching_declared_size_and_checksum(client):
    response, image = create_image(client, A, data=DATA, size=len(DATA), checksum=MD5)
    assert response.status_code == 201
    assert (image['status'], image['size'], image['checksum']) == ('active', len(DATA), MD5)
    assert stored_object(image['id']) == DATA
    # binary bytes round-trip unchanged
    data = bytes(range(256)) * 4
    headers = dict(A, **{'x-image-meta-disk_format': 'raw',
                         'x-image-meta-container_format': 'bare',
                         'content-type': 'application/octet-stream'})
    response = client.http.post('/v1/images', headers=headers, body=data)
    assert response.status_code == 201
    image = body_json(response)['image']
    assert (image['size'], image['checksum']) == (len(data), md5(data))
    assert stored_object(image['id']) == data


def test_upload_on_put_to_a_queued_image(client):
    image = reserve(client)
    assert stored_object_keys() == []
    response, updated = update_image(client, A, image['id'], data=DATA)
    assert response.status_code == 200
    assert get_header(response, 'Content-Type') == 'application/json'
    assert get_header(response, 'Location') is None
    assert get_header(response, 'ETag') == MD5
    assert updated['id'] == image['id']
    assert updated['status'] == 'active'
    assert updated['size'] == len(DATA)
    assert updated['checksum'] == MD5
    assert stored_object_keys() == ['images/%s' % image['id']]
    assert stored_object(image['id']) == DATA
    assert download(client, A, image['id']).body == DATA


def test_put_upload_with_formats_given_on_the_put(client):
    response = client.http.post('/v1/images', headers=dict(A, **{'x-image-meta-name': 'x'}))
    image = body_json(response)['image']
    assert image['disk_format'] is None
    response, updated = update_image(client, A, image['id'], data=DATA,
                                     disk_format='qcow2', container_format='ovf')
    assert response.status_code == 200
    assert (updated['status'], updated['disk_format'], updated['container_format']) == (
        'active', 'qcow2', 'ovf')


def test_put_upload_without_formats_leaves_the_image_queued(client):
    response = client.http.post('/v1/images', headers=dict(A, **{'x-image-meta-name': 'x'}))
    image_id = body_json(response)['image']['id']
    response, _ = update_image(client, A, image_id, data=DATA)
    assert response.status_code == 400
    assert 'Disk format is not specified.' in error_text(response)
    assert status_of(client, image_id) == 'queued'
    assert stored_object_keys() == []
    response, _ = update_image(client, A, image_id, data=DATA, disk_format='raw')
    assert response.status_code == 400
    assert 'Container format is not specified.' in error_text(response)
    assert status_of(client, image_id) == 'queued'


def test_put_upload_with_matching_declared_sizes(client):
    image = reserve(client)
    response, updated = update_image(client, A, image['id'], data=DATA, size=len(DATA))
    assert response.status_code == 200
    assert (updated['status'], updated['size']) == ('active', len(DATA))
    image = reserve(client, size=len(DATA))
    assert image['size'] == len(DATA)
    response, updated = update_image(client, A, image['id'], data=DATA)
    assert response.status_code == 200
    assert (updated['status'], updated['size'], updated['checksum']) == (
        'active', len(DATA), MD5)


def test_admin_uploads_to_someone_elses_queued_image(client):
    image = reserve(client)
    response, updated = update_image(client, ADMIN, image['id'], data=DATA)
    assert response.status_code == 200
    assert updated['status'] == 'active'
    assert updated['owner'] == 'tenant-a'


# -- 409: only queued images take data ------------------------------------------------
def test_put_data_to_an_active_image_is_conflict(client):
    _, image = create_image(client, A, data=DATA)
    response, _ = update_image(client, A, image['id'], data=b'other bytes')
    assert response.status_code == 409
    assert 'Cannot upload to an unqueued image' in error_text(response)
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'active'
    assert meta['x-image-meta-checksum'] == MD5
    assert meta['x-image-meta-size'] == str(len(DATA))
    assert stored_object(image['id']) == DATA
    # also an image made active by a declared size of 0
    _, empty = create_image(client, A, size=0)
    assert empty['status'] == 'active'
    response, _ = update_image(client, A, empty['id'], data=DATA)
    assert response.status_code == 409
    assert 'Cannot upload to an unqueued image' in error_text(response)
    assert stored_object_keys() == ['images/%s' % image['id']]


def test_put_data_to_a_killed_image_is_conflict(client):
    image = reserve(client)
    response, _ = update_image(client, A, image['id'], data=DATA,
                               headers={'Content-Type': 'text/plain'})
    assert response.status_code == 400
    assert status_of(client, image['id']) == 'killed'
    response, _ = update_image(client, A, image['id'], data=DATA)
    assert response.status_code == 409
    assert 'Cannot upload to an unqueued image' in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []


def test_put_data_to_a_deleted_image_by_admin_is_refused(client):
    image = reserve(client)
    assert delete_image(client, A, image['id']).status_code == 200
    response, _ = update_image(client, ADMIN, image['id'], data=DATA)
    assert response.status_code == 403
    assert status_of(client, image['id']) == 'deleted'
    assert stored_object_keys() == []


# -- Content-Type -----------------------------------------------------------------------
def test_wrong_content_type_on_post_kills_the_image(client):
    for content_type in ('text/plain', 'application/json', 'Application/Octet-Stream',
                         'application/x-octet-stream'):
        headers = dict(A, **{'x-image-meta-name': content_type,
                             'x-image-meta-disk_format': 'raw',
                             'x-image-meta-container_format': 'bare',
                             'Content-Type': content_type})
        response = client.http.post('/v1/images', headers=headers, body=DATA)
        assert response.status_code == 400, content_type
        assert 'Content-Type must be application/octet-stream' in error_text(response)
    # and without any Content-Type
    headers = dict(A, **{'x-image-meta-disk_format': 'raw',
                         'x-image-meta-container_format': 'bare'})
    response = client.http.post('/v1/images', headers=headers, body=DATA)
    assert response.status_code == 400
    assert 'Content-Type must be application/octet-stream' in error_text(response)
    assert len(stored_image_ids()) == 5
    assert {status_of(client, i) for i in stored_image_ids()} == {'killed'}
    assert stored_object_keys() == []


def test_wrong_content_type_on_put_kills_the_image(client):
    image = reserve(client)
    response, _ = update_image(client, A, image['id'], data=DATA,
                               headers={'Content-Type': 'text/plain'})
    assert response.status_code == 400
    assert 'Content-Type must be application/octet-stream' in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []
    assert download(client, A, image['id']).status_code == 404


def test_content_type_parameters_are_ignored(client):
    headers = dict(A, **{'x-image-meta-disk_format': 'raw',
                         'x-image-meta-container_format': 'bare',
                         'Content-Type': 'application/octet-stream; foo=bar'})
    response = client.http.post('/v1/images', headers=headers, body=DATA)
    assert response.status_code == 201
    image = body_json(response)['image']
    assert (image['status'], image['size'], image['checksum']) == ('active', len(DATA), MD5)
    assert stored_object(image['id']) == DATA
    queued = reserve(client)
    response, updated = update_image(client, A, queued['id'], data=DATA, headers={
        'Content-Type': 'application/octet-stream;charset=binary'})
    assert response.status_code == 200
    assert updated['status'] == 'active'


# -- size and checksum mismatches ------------------------------------------------------
def test_declared_size_mismatch_on_post_kills_the_image(client):
    response, _ = create_image(client, A, data=b'abc', size=5)
    assert response.status_code == 400
    assert ("Supplied size (5) and size generated from uploaded image (3) did not match. "
            "Setting image status to 'killed'.") in error_text(response)
    [image_id] = stored_image_ids()
    assert status_of(client, image_id) == 'killed'
    assert stored_object_keys() == []
    # a declared size smaller than the data
    response, _ = create_image(client, A, data=b'abcdefgh', size=2)
    assert response.status_code == 400
    assert ("Supplied size (2) and size generated from uploaded image (8) did not "
            "match.") in error_text(response)
    assert {status_of(client, i) for i in stored_image_ids()} == {'killed'}
    assert stored_object_keys() == []


def test_size_declared_at_reserve_is_checked_on_put(client):
    image = reserve(client, size=5)
    response, _ = update_image(client, A, image['id'], data=b'abc')
    assert response.status_code == 400
    assert ("Supplied size (5) and size generated from uploaded image (3) did not match. "
            "Setting image status to 'killed'.") in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []
    # a size declared on the PUT itself
    image = reserve(client)
    response, _ = update_image(client, A, image['id'], data=b'abc', size=4)
    assert response.status_code == 400
    assert "Supplied size (4) and size generated from uploaded image (3)" in error_text(
        response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []


def test_checksum_mismatch_on_post_kills_the_image(client):
    wrong = md5(b'something else')
    response, _ = create_image(client, A, data=DATA, checksum=wrong)
    assert response.status_code == 400
    assert ("Supplied checksum (%s) and checksum generated from uploaded image (%s) did "
            "not match. Setting image status to 'killed'." % (wrong, MD5)) in error_text(
                response)
    [image_id] = stored_image_ids()
    assert status_of(client, image_id) == 'killed'
    assert stored_object_keys() == []


def test_checksum_declared_at_reserve_is_checked_on_put(client):
    image = reserve(client, checksum='0123')
    response, _ = update_image(client, A, image['id'], data=DATA)
    assert response.status_code == 400
    assert "Supplied checksum (0123) and checksum generated from uploaded image (%s)" % (
        MD5) in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []


    image = reserve(client, checksum=MD5)
    response, updated = update_image(client, A, image['id'], data=DATA)
    assert response.status_code == 200
    assert (updated['status'], updated['checksum']) == ('active', MD5)


# -- user storage quota ------------------------------------------------------------------
def test_storage_quota_exceeded_by_the_data(client, settings_override):
    settings_override(user_storage_quota=10)
    first, image = create_image(client, A, data=b'x' * 6)
    assert first.status_code == 201 and image['status'] == 'active'
    response, _ = create_image(client, A, data=b'y' * 5, name='second')
    assert response.status_code == 413
    assert 'exceeds the quota' in error_text(response)
    assert '4 bytes remaining' in error_text(response)
    second = [i for i in stored_image_ids() if i != image['id']]
    assert len(second) == 1
    assert status_of(client, second[0]) == 'killed'
    assert stored_object_keys() == ['images/%s' % image['id']]
    # refused for the declared size, on PUT
    queued = reserve(client, size=5)   # a declared size alone uses no quota
    response, _ = update_image(client, A, queued['id'], data=b'y' * 5)
    assert response.status_code == 413
    assert 'exceeds the quota' in error_text(response)
    assert status_of(client, queued['id']) == 'killed'
    assert stored_object(queued['id']) is None
    assert stored_object_keys() == ['images/%s' % image['id']]


def test_storage_quota_counts_only_live_images_of_the_owner(client, settings_override):
    settings_override(user_storage_quota=10)
    _, first = create_image(client, A, data=b'x' * 8)
    create_image(client, A, data=b'k' * 9)                     # 413, killed: uses nothing
    assert create_image(client, B, data=b'b' * 9)[0].status_code == 201   # other owner
    assert create_image(client, A, data=b'y' * 3)[0].status_code == 413
    assert delete_image(client, A, first['id']).status_code == 200
    response, image = create_image(client, A, data=b'y' * 10)
    assert response.status_code == 201
    assert image['status'] == 'active'


def test_storage_quota_exactly_reached_and_single_upload_over(client, settings_override):
    settings_override(user_storage_quota=10)
    assert create_image(client, A, data=b'x' * 4)[0].status_code == 201
    response, image = create_image(client, A, data=b'y' * 6)
    assert response.status_code == 201
    assert image['status'] == 'active'
    response, _ = create_image(client, B, data=b'z' * 11)
    assert response.status_code == 413
    assert 'exceeds the quota' in error_text(response)
    assert len(stored_object_keys()) == 2


# -- more lifecycle edges ------------------------------------------------------------------
def test_declared_size_zero_with_data_is_an_ordinary_upload(client):
    response, image = create_image(client, A, data=b'abcd', size=0)
    assert response.status_code == 201
    assert (image['status'], image['size'], image['checksum']) == ('active', 4, md5(b'abcd'))
    assert stored_object(image['id']) == b'abcd'


def test_empty_body_is_no_data(client):
    headers = dict(A, **OCTET, **{'x-image-meta-disk_format': 'raw',
                                  'x-image-meta-container_format': 'bare',
                                  'Content-Length': '0'})
    response = client.http.post('/v1/images', headers=headers, body=b'')
    assert response.status_code == 201
    assert body_json(response)['image']['status'] == 'queued'
    assert stored_object_keys() == []


def test_killed_image_takes_metadata_updates(client):
    image = reserve(client)
    update_image(client, A, image['id'], data=DATA, headers={'Content-Type': 'text/plain'})
    response, updated = update_image(client, A, image['id'], name='renamed')
    assert response.status_code == 200
    assert (updated['status'], updated['name']) == ('killed', 'renamed')


def test_size_cap_on_put(client, settings_override):
    settings_override(image_size_cap=10)
    image = reserve(client)
    response, _ = update_image(client, A, image['id'], data=b'x' * 11, size=11)
    assert response.status_code == 400
    assert 'Denying attempt to upload image larger than 10 bytes.' in error_text(response)
    assert status_of(client, image['id']) == 'queued'
    assert admin_view(client, image['id'])['x-image-meta-size'] == '0'
    response, _ = update_image(client, A, image['id'], data=b'x' * 11)
    assert response.status_code == 413
    assert 'Denying attempt to upload image larger than 10 bytes.' in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert stored_object_keys() == []
