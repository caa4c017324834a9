"""POST /v1/images: validation and the initial record (v1 §5, §7, §15).

Every rejected request must leave nothing behind (no item in the images table,
no object in the bucket), except where v1 keeps a queued or killed record.
"""
import hashlib
import json
import re
import uuid

from tests.helpers import (ADMIN, OCTET, admin_view, body_json, create_image, delete_image,
                           error_text, get_header, head, stored_image_ids,
                           stored_object_keys, tenant)

A = tenant('tenant-a')
B = tenant('tenant-b')
TIME = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$')
FORMATS = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}
AMAZON_MIX = ("Invalid mix of disk and container formats. When setting a disk or "
              "container format to one of 'aki', 'ari', or 'ami', the container and disk "
              "formats must match.")


def post(client, identity, headers=None, body=b''):
    """POST /v1/images with raw headers (nothing added but the identity)."""
    return client.http.post('/v1/images', headers=dict(identity, **(headers or {})),
                            body=body)


def assert_nothing_stored():
    assert stored_image_ids() == []
    assert stored_object_keys() == []


def assert_rejected(response, status, text):
    assert response.status_code == status, error_text(response)
    assert text in error_text(response)
    assert_nothing_stored()


def created(response):
    assert response.status_code == 201, error_text(response)
    return body_json(response)['image']


def status_of(client, image_id):
    return admin_view(client, image_id)['x-image-meta-status']


# -- the reserved record ------------------------------------------------------------
def test_reserve_returns_a_queued_record(client):
    response = post(client, A, dict(FORMATS, **{'x-image-meta-name': 'cirros'}))
    image = created(response)
    assert get_header(response, 'Content-Type') == 'application/json'
    assert set(image) == {'id', 'name', 'status', 'size', 'virtual_size', 'disk_format',
                          'container_format', 'checksum', 'min_disk', 'min_ram',
                          'is_public', 'protected', 'owner', 'created_at', 'updated_at',
                          'deleted_at', 'deleted', 'properties'}
    assert uuid.UUID(image['id'])
    assert image['name'] == 'cirros'
    assert image['status'] == 'queued'
    assert image['size'] == 0
    assert image['virtual_size'] is None
    assert image['checksum'] is None
    assert (image['disk_format'], image['container_format']) == ('raw', 'bare')
    assert (image['min_disk'], image['min_ram']) == (0, 0)
    assert image['is_public'] is False and image['protected'] is False
    assert image['owner'] == 'tenant-a'
    assert TIME.match(image['created_at']) and TIME.match(image['updated_at'])
    assert image['deleted_at'] is None and image['deleted'] is False
    assert image['properties'] == {}
    assert get_header(response, 'Location').startswith('http')
    assert get_header(response, 'Location').endswith('/v1/images/%s' % image['id'])
    assert get_header(response, 'ETag') is None
    assert stored_image_ids() == [image['id']]
    assert stored_object_keys() == []


def test_reserve_without_any_header(client):
    image = created(post(client, A))
    assert image['status'] == 'queued'
    assert image['name'] is None
    assert image['disk_format'] is None and image['container_format'] is None
    assert stored_image_ids() == [image['id']]


def test_create_with_all_fields(client):
    image = created(post(client, A, dict(FORMATS, **{
        'x-image-meta-name': 'full', 'x-image-meta-min_disk': '10',
        'x-image-meta-min_ram': '512', 'x-image-meta-protected': 'True',
        'x-image-meta-virtual_size': '4096',
        'x-image-meta-property-os_distro': 'cirros',
        'X-Image-Meta-Property-Hw-Disk-Bus': 'virtio',
        'x-image-meta-property-empty': ''})))
    assert image['min_disk'] == 10 and image['min_ram'] == 512
    assert image['protected'] is True
    assert image['virtual_size'] == 4096
    assert image['properties'] == {'os_distro': 'cirros', 'hw_disk_bus': 'virtio',
                                   'empty': None}
    meta = head(client, A, image['id'])
    assert get_header(meta, 'x-image-meta-property-os_distro') == 'cirros'
    assert get_header(meta, 'x-image-meta-property-hw_disk_bus') == 'virtio'
    assert get_header(meta, 'x-image-meta-property-empty') is None
    assert get_header(meta, 'x-image-meta-virtual_size') == '4096'
    assert get_header(meta, 'x-image-meta-protected') == 'True'


def test_header_spellings_and_ignored_headers(client):
    # dashed and mixed-case field names are the same fields
    image = created(post(client, A, {'X-Image-Meta-Disk-Format': 'qcow2',
                                     'X-Image-Meta-Container-Format': 'ovf',
                                     'X-Image-Meta-Min-Ram': '64'}))
    assert (image['disk_format'], image['container_format'], image['min_ram']) == (
        'qcow2', 'ovf', 64)
    # a typo without the x-image-meta- prefix is silently ignored
    image = created(post(client, A, dict(FORMATS, **{'x-image-disk-format': 'foo'})))
    assert image['disk_format'] == 'raw'
    # x-image-meta-uri / -copy_from are accepted and have no effect
    image = created(post(client, A, dict(FORMATS, **{
        'x-image-meta-uri': 'http://example.com/a.img',
        'x-image-meta-copy_from': 'http://example.com/b.img'})))
    assert image['status'] == 'queued' and image['size'] == 0
    assert len(stored_image_ids()) == 3
    assert stored_object_keys() == []


def test_error_body_is_json_when_asked(client):
    response = post(client, dict(A, Accept='application/json'),
                    {'x-image-meta-disk_format': 'foo'})
    assert response.status_code == 400
    assert get_header(response, 'Content-Type') == 'application/json'
    document = body_json(response)
    assert document['code'] == '400 Bad Request'
    assert "Invalid disk format 'foo' for image." in document['message']
    assert_nothing_stored()


# -- header parsing and value validation (nothing stored) -------------------------------
def test_bad_header_and_bad_integers(client):
    response = post(client, A, dict(FORMATS, **{'x-image-meta-foo': 'bar'}))
    assert_rejected(response, 400, 'Bad header: x-image-meta-foo')
    for field in ('size', 'min_disk', 'min_ram', 'virtual_size'):
        response = post(client, A, dict(FORMATS, **{'x-image-meta-' + field: 'abc'}))
        assert_rejected(response, 400, "Invalid value 'abc' for parameter '%s': Cannot "
                                       "convert image %s 'abc' to an integer."
                                       % (field, field))
        response = post(client, A, dict(FORMATS, **{'x-image-meta-' + field: '-5'}))
        assert_rejected(response, 400, "Invalid value '-5' for parameter '%s': Cannot be "
                                       "a negative value." % field)


def test_invalid_formats(client):
    for value in ('foo', 'RAW', 'bare', ''):
        response = post(client, A, {'x-image-meta-disk_format': value,
                                    'x-image-meta-container_format': 'bare'})
        assert_rejected(response, 400, "Invalid disk format '%s' for image."
                        % (value or 'None'))
    for value in ('foo', 'BARE', 'raw', ''):
        response = post(client, A, {'x-image-meta-disk_format': 'raw',
                                    'x-image-meta-container_format': value})
        assert_rejected(response, 400, "Invalid container format '%s' for image."
                        % (value or 'None'))


def test_every_default_format(client):
    for disk in ('vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'):
        image = created(post(client, A, {'x-image-meta-disk_format': disk,
                                         'x-image-meta-container_format': 'bare'}))
        assert image['disk_format'] == disk
    for container in ('bare', 'ovf', 'ova', 'docker'):
        image = created(post(client, A, {'x-image-meta-disk_format': 'raw',
                                          'x-image-meta-container_format': container}))
        assert image['container_format'] == container
    for fmt in ('ami', 'ari', 'aki'):
        image = created(post(client, A, {'x-image-meta-disk_format': fmt,
                                          'x-image-meta-container_format': fmt}))
        assert (image['disk_format'], image['container_format']) == (fmt, fmt)
    # non-amazon formats need no pairing
    image = created(post(client, A, {'x-image-meta-disk_format': 'qcow2'}))
    assert (image['disk_format'], image['container_format']) == ('qcow2', None)


def test_amazon_format_alone_sets_the_other(client):
    for fmt in ('aki', 'ari', 'ami'):
        for given in ('disk_format', 'container_format'):
            image = created(post(client, A, {'x-image-meta-' + given: fmt}))
            assert (image['disk_format'], image['container_format']) == (fmt, fmt)
            meta = admin_view(client, image['id'])
            assert (meta['x-image-meta-disk_format'],
                    meta['x-image-meta-container_format']) == (fmt, fmt)


def test_amazon_format_mismatch(client):
    for disk, container in (('aki', 'bare'), ('raw', 'ari'), ('aki', 'ari'),
                            ('ami', 'aki'), ('qcow2', 'ami')):
        response = post(client, A, {'x-image-meta-disk_format': disk,
                                    'x-image-meta-container_format': container})
        assert_rejected(response, 400, AMAZON_MIX)


def test_name_length(client):
    response = post(client, A, dict(FORMATS, **{'x-image-meta-name': 'n' * 256}))
    assert_rejected(response, 400, 'Image name too long: 256')
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-name': 'n' * 255})))
    assert image['name'] == 'n' * 255


def test_checksum_length(client):
    checksum = 'a' * 33
    response = post(client, A, dict(FORMATS, **{'x-image-meta-checksum': checksum}))
    assert_rejected(response, 400,
                    "Invalid checksum '%s': can't exceed 32 characters" % checksum)
    checksum = hashlib.md5(b'future').hexdigest()
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-checksum': checksum})))
    assert (image['status'], image['checksum']) == ('queued', checksum)


def test_invalid_time_format(client):
    for field in ('created_at', 'updated_at', 'deleted_at'):
        for value in ('-42', 'foo', '1100', '2012-01-01hey12:32:12', '1899-12-31T00:00:00'):
            response = post(client, A, dict(FORMATS, **{'x-image-meta-' + field: value}))
            assert_rejected(response, 400, 'Invalid time format for %s.' % field)


def test_int32_fields_range(client):
    for field in ('min_disk', 'min_ram'):
        for value in ('2147483648', '99999999999999999999'):
            response = post(client, A, dict(FORMATS, **{'x-image-meta-' + field: value}))
            assert_rejected(response, 400,
                            "'%s' value out of range, must not exceed 2147483647." % field)
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-min_disk': '2147483647',
                                                     'x-image-meta-min_ram': '2147483647'})))
    assert image['min_disk'] == image['min_ram'] == 2147483647


# -- id -------------------------------------------------------------------------------------
def test_id_format(client):
    for value in ('abc', '1', '71c675ab-d94f-49cd-a114-e12490b328dz',
                  '71c675ab-d94f-49cd-a114-e12490b328d9a'):
        response = post(client, A, dict(FORMATS, **{'x-image-meta-id': value}))
        assert_rejected(response, 400, 'Invalid image id format')
    for value in ('71C675AB-D94F-49CD-A114-E12490B328D9', '11c675abd94f49cda114e12490b328d9'):
        created(post(client, A, dict(FORMATS, **{'x-image-meta-id': value})))
    assert len(stored_image_ids()) == 2


def test_client_supplied_id(client):
    image_id = str(uuid.uuid4())
    response = post(client, A, dict(FORMATS, **{'x-image-meta-id': image_id}))
    assert created(response)['id'] == image_id
    assert get_header(response, 'Location').endswith('/v1/images/%s' % image_id)
    assert head(client, A, image_id).status_code == 200
    assert stored_image_ids() == [image_id]


def test_duplicate_id(client):
    image_id = str(uuid.uuid4())
    created(post(client, A, dict(FORMATS, **{'x-image-meta-id': image_id,
                                             'x-image-meta-name': 'first'})))
    again = post(client, B, dict(FORMATS, **{'x-image-meta-id': image_id,
                                             'x-image-meta-name': 'second'}))
    assert again.status_code == 409
    assert 'An image with identifier %s already exists' % image_id in error_text(again)
    with_data = post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-id': image_id}),
                     body=b'some data')
    assert with_data.status_code == 409
    assert stored_image_ids() == [image_id]
    assert stored_object_keys() == []
    kept = admin_view(client, image_id)
    assert kept['x-image-meta-name'] == 'first'
    assert kept['x-image-meta-owner'] == 'tenant-a'
    assert kept['x-image-meta-status'] == 'queued'


def test_id_of_a_deleted_image_cannot_be_reused(client):
    image_id = str(uuid.uuid4())
    created(post(client, A, dict(FORMATS, **{'x-image-meta-id': image_id})))
    assert delete_image(client, A, image_id).status_code == 200
    again = post(client, A, dict(FORMATS, **{'x-image-meta-id': image_id}))
    assert again.status_code == 409
    assert 'An image with identifier %s already exists' % image_id in error_text(again)
    assert stored_image_ids() == [image_id]
    assert status_of(client, image_id) == 'deleted'


# -- store --------------------------------------------------------------------------------
def test_unknown_store(client):
    for store in ('file', 'swift', 'http', 'S3'):
        response = post(client, A, dict(FORMATS, **{'x-image-meta-store': store}))
        assert_rejected(response, 400, 'Required store %s is invalid' % store)
    response = post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-store': 'file'}),
                    body=b'data')
    assert_rejected(response, 400, 'Required store file is invalid')


def test_s3_store_is_known(client):
    data = b'stored in s3'
    image = created(post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-store': 's3'}),
                         body=data))
    assert image['status'] == 'active' and image['size'] == len(data)
    assert stored_object_keys() == ['images/%s' % image['id']]


# -- size cap -----------------------------------------------------------------------------
def test_size_over_the_cap_is_refused_before_storing(client, settings_override):
    settings_override(image_size_cap=10)
    message = 'Denying attempt to upload image larger than 10 bytes.'
    response = post(client, A, dict(FORMATS, **{'x-image-meta-size': '11'}))
    assert_rejected(response, 400, message)
    response = post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-size': '11'}),
                    body=b'x' * 11)
    assert_rejected(response, 400, message)
    response = post(client, A, dict(FORMATS, **OCTET, **{'Content-Length': '11'}),
                    body=b'x' * 11)
    assert_rejected(response, 400, message)


def test_streamed_data_over_the_cap_kills_the_image(client, settings_override):
    settings_override(image_size_cap=10)
    response = post(client, A, dict(FORMATS, **OCTET), body=b'x' * 11)
    assert response.status_code == 413
    assert 'Denying attempt to upload image larger than 10 bytes.' in error_text(response)
    [image_id] = stored_image_ids()
    assert status_of(client, image_id) == 'killed'
    assert stored_object_keys() == []


def test_size_at_the_cap_is_accepted(client, settings_override):
    settings_override(image_size_cap=10)
    image = created(post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-size': '10'}),
                         body=b'x' * 10))
    assert image['status'] == 'active'


# -- is_public, owner ----------------------------------------------------------------
def test_non_admin_cannot_create_public_images(client):
    for value in ('true', 'True', '1', 'yes', 'on'):
        response = post(client, A, dict(FORMATS, **{'x-image-meta-is_public': value}))
        assert_rejected(response, 403, 'Access was denied to this resource.')
    response = post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-is_public': 'true'}),
                    body=b'data')
    assert_rejected(response, 403, 'Access was denied to this resource.')


def test_non_public_values_are_allowed(client):
    for value in ('false', 'None', 'banana', ''):
        image = created(post(client, A, dict(FORMATS, **{'x-image-meta-is_public': value})))
        assert image['is_public'] is False


def test_admin_creates_public_images(client):
    image = created(post(client, ADMIN, dict(FORMATS, **{'x-image-meta-is_public': 'True'})))
    assert image['is_public'] is True
    assert image['owner'] == 'tenant-admin'
    assert head(client, B, image['id']).status_code == 200


def test_owner_header(client):
    # ignored for non-admins
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-owner': 'tenant-b'})))
    assert image['owner'] == 'tenant-a'
    assert head(client, B, image['id']).status_code == 404
    # honoured for admins
    image = created(post(client, ADMIN, dict(FORMATS, **{'x-image-meta-owner': 'tenant-b'})))
    assert image['owner'] == 'tenant-b'
    assert head(client, B, image['id']).status_code == 200
    assert head(client, A, image['id']).status_code == 404
    # an admin may create ownerless images
    image = created(post(client, ADMIN, dict(FORMATS, **{'x-image-meta-owner': ''})))
    assert image['owner'] is None
    assert 'x-image-meta-owner' not in admin_view(client, image['id'])


# -- initial status -------------------------------------------------------------------
def test_size_zero_is_immediately_active(client):
    response = post(client, A, dict(FORMATS, **{'x-image-meta-size': '0'}))
    image = created(response)
    assert image['status'] == 'active'
    assert image['size'] == 0
    assert image['checksum'] is None
    assert get_header(response, 'ETag') is None
    assert stored_object_keys() == []
    download = client.http.get('/v1/images/%s' % image['id'],
                               headers=dict(A, Accept='*/*'))
    assert download.status_code == 200
    assert download.body == b''


def test_reserve_with_declared_size(client):
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-size': '5'})))
    assert image['status'] == 'queued'
    assert image['size'] == 5
    assert image['checksum'] is None
    assert stored_object_keys() == []


def test_status_header_is_ignored_on_create(client):
    for status in ('active', 'killed', 'deleted', 'saving', 'banana'):
        image = created(post(client, A, dict(FORMATS, **{'x-image-meta-status': status})))
        assert image['status'] == 'queued'
        assert status_of(client, image['id']) == 'queued'
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-status': 'queued',
                                                     'x-image-meta-size': '0'})))
    assert image['status'] == 'active'
    image = created(post(client, A, dict(FORMATS, **OCTET,
                                         **{'x-image-meta-status': 'queued'}), body=b'data'))
    assert image['status'] == 'active'


# -- property quota --------------------------------------------------------------------
def test_property_quota(client, settings_override):
    settings_override(image_property_quota=2)
    three = {'x-image-meta-property-a': '1', 'x-image-meta-property-b': '2',
             'x-image-meta-property-c': '3'}
    response = post(client, A, dict(FORMATS, **three))
    assert_rejected(response, 413, 'The limit has been exceeded on the number of allowed '
                                   'image properties. Attempted: 3, Maximum: 2')
    response = post(client, A, dict(FORMATS, **OCTET, **three), body=b'data')
    assert_rejected(response, 413, 'Attempted: 3, Maximum: 2')
    image = created(post(client, A, dict(FORMATS, **{'x-image-meta-property-a': '1',
                                                     'x-image-meta-property-b': '2'})))
    assert image['properties'] == {'a': '1', 'b': '2'}


def test_negative_property_quota_is_unlimited(client, settings_override):
    settings_override(image_property_quota=-1)
    headers = dict(FORMATS, **{'x-image-meta-property-p%d' % i: str(i) for i in range(5)})
    assert len(created(post(client, A, headers))['properties']) == 5


# -- external sources (not supported) -------------------------------------------------
def test_unsupported_external_sources_are_refused(client):
    # http(s) and s3 sources are tested in test_external_sources.py, on loopback
    url = 'file:///var/lib/glance/cirros.img'
    response = post(client, A, dict(FORMATS, **{'x-image-meta-location': url}))
    assert_rejected(response, 400, 'External sources are not supported')
    response = post(client, A, dict(FORMATS, **{'x-glance-api-copy-from': url}))
    assert_rejected(response, 400, 'External sources are not supported')
    response = post(client, A, dict(FORMATS, **{'x-image-meta-location': ''}))
    assert_rejected(response, 400, 'External source should not be empty')
    response = post(client, A, dict(FORMATS, **{'x-glance-api-copy-from': ''}))
    assert_rejected(response, 400, 'External source should not be empty')
    response = post(client, A, dict(FORMATS, **OCTET, **{'x-image-meta-location': url}),
                    body=b'data')
    assert response.status_code == 400
    assert_nothing_stored()


# -- data on create (record kept) ---------------------------------------------------------
def test_data_without_formats_leaves_a_queued_record(client):
    for headers, text in (({'x-image-meta-container_format': 'bare'},
                           'Disk format is not specified.'),
                          ({'x-image-meta-disk_format': 'raw'},
                           'Container format is not specified.'),
                          ({}, 'Disk format is not specified.')):
        before = set(stored_image_ids())
        response = post(client, A, dict(OCTET, **headers), body=b'data')
        assert response.status_code == 400
        assert text in error_text(response)
        [image_id] = set(stored_image_ids()) - before
        assert status_of(client, image_id) == 'queued'
    assert stored_object_keys() == []


def test_data_with_wrong_content_type_leaves_a_killed_record(client):
    response = post(client, A, dict(FORMATS, **{'Content-Type': 'text/plain'}),
                    body=b'data')
    assert response.status_code == 400
    assert 'Content-Type must be application/octet-stream' in error_text(response)
    [image_id] = stored_image_ids()
    assert status_of(client, image_id) == 'killed'
    assert stored_object_keys() == []


def test_create_with_data(client):
    data = b'0123456789abcdef'
    response, image = create_image(client, A, data=data)
    assert response.status_code == 201
    assert image['status'] == 'active'
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert get_header(response, 'ETag') == image['checksum']
    assert stored_object_keys() == ['images/%s' % image['id']]


def test_created_images_are_listed_for_their_owner(client):
    _, image = create_image(client, A, name='mine')
    listed = json.loads(client.http.get('/v1/images', headers=A).body)['images']
    assert [i['id'] for i in listed] == [image['id']]
    assert json.loads(client.http.get('/v1/images', headers=B).body) == {'images': []}
