"""PUT /v1/images/{id}: metadata updates (v1 §5, §11, §15)."""
import hashlib
import uuid

from tests.helpers import (ADMIN, share, admin_view, body_json, create_image, delete_image,
                           error_text, get_header, head, stored_object_keys, tenant,
                           update_image)

A = tenant('tenant-a')
B = tenant('tenant-b')
PURGE = 'x-glance-registry-purge-props'
DATA = b'update test data'
MD5 = hashlib.md5(DATA).hexdigest()


def with_props(client, identity=A, data=None, **fields):
    response, image = create_image(client, identity, data=data,
                                   properties={'a': '1', 'b': '2'}, **fields)
    assert response.status_code == 201
    return image


def stored(client, image_id):
    """The image's metadata as admin sees it (HEAD headers, lower-cased)."""
    return admin_view(client, image_id)


def properties_in_head(client, image_id):
    prefix = 'x-image-meta-property-'
    return {k[len(prefix):]: v for k, v in stored(client, image_id).items()
            if k.startswith(prefix)}


def public_image_of(client, owner, **fields):
    """A public image owned by `owner` (only admins can publicise)."""
    response, image = create_image(client, ADMIN, is_public='True', owner=owner, **fields)
    assert response.status_code == 201 and image['is_public'] is True
    return image


def assert_forbidden(response, text):
    assert response.status_code == 403, error_text(response)
    assert text in error_text(response)


# -- the basic update -------------------------------------------------------------------
def test_update_returns_the_whole_record(client):
    _, image = create_image(client, A, data=DATA, name='before')
    response, updated = update_image(client, A, image['id'], name='after', min_ram=64)
    assert response.status_code == 200
    assert get_header(response, 'Content-Type') == 'application/json'
    assert get_header(response, 'ETag') == MD5
    assert get_header(response, 'Location') is None
    assert updated['name'] == 'after' and updated['min_ram'] == 64
    assert updated['status'] == 'active' and updated['checksum'] == MD5
    assert updated['created_at'] == image['created_at']
    assert updated['updated_at'] > image['updated_at']
    assert set(updated) == set(image)
    meta = head(client, A, image['id'])
    assert get_header(meta, 'x-image-meta-name') == 'after'
    assert get_header(meta, 'x-image-meta-min_ram') == '64'


def test_update_of_a_queued_image(client):
    _, image = create_image(client, A)
    response, updated = update_image(client, A, image['id'], name='n')
    assert response.status_code == 200
    assert get_header(response, 'ETag') is None
    assert updated['status'] == 'queued'
    # updated_at is refreshed even when nothing changes
    response, again = update_image(client, A, image['id'], name='n')
    assert response.status_code == 200
    assert again['updated_at'] > updated['updated_at']


def test_unknown_image(client):
    response, _ = update_image(client, A, str(uuid.uuid4()), name='x')
    assert response.status_code == 404
    response, _ = update_image(client, ADMIN, 'no-such-image', name='x')
    assert response.status_code == 404


def test_formats_can_change_on_an_active_image(client):
    _, image = create_image(client, A, data=DATA)
    response, updated = update_image(client, A, image['id'], disk_format='qcow2',
                                     container_format='ovf')
    assert response.status_code == 200
    assert (updated['disk_format'], updated['container_format']) == ('qcow2', 'ovf')
    assert updated['status'] == 'active'


def test_validation_errors_change_nothing(client):
    _, image = create_image(client, A, name='kept', properties={'a': '1'})
    for fields, text in (
            ({'disk_format': 'foo'}, "Invalid disk format 'foo' for image."),
            ({'container_format': 'foo'}, "Invalid container format 'foo' for image."),
            ({'disk_format': ''}, "Invalid disk format 'None' for image."),
            ({'name': 'n' * 256}, 'Image name too long: 256'),
            ({'checksum': 'c' * 33}, "can't exceed 32 characters"),
            ({'min_ram': '2147483648'}, "'min_ram' value out of range"),
            ({'min_disk': 'abc'}, "Cannot convert image min_disk 'abc' to an integer."),
            ({'size': '-1'}, 'Cannot be a negative value.'),
            ({'created_at': 'foo'}, 'Invalid time format for created_at.'),
            ({'foo': 'bar'}, 'Bad header: x-image-meta-foo'),
            ({'store': 'file'}, 'Required store file is invalid')):
        response, _ = update_image(client, A, image['id'], **fields)
        assert response.status_code == 400, (fields, error_text(response))
        assert text in error_text(response)
    meta = stored(client, image['id'])
    assert meta['x-image-meta-name'] == 'kept'
    assert meta['x-image-meta-disk_format'] == 'raw'
    assert meta['x-image-meta-min_ram'] == '0'
    assert meta['x-image-meta-property-a'] == '1'
    assert meta['x-image-meta-updated_at'] == image['updated_at']


# -- purging properties --------------------------------------------------------------
def test_plain_put_purges_properties_by_default(client):
    image = with_props(client)
    response, updated = update_image(client, A, image['id'], name='renamed')
    assert response.status_code == 200
    assert updated['properties'] == {}
    assert updated['name'] == 'renamed'
    assert properties_in_head(client, image['id']) == {}
    # purging keeps only the supplied properties
    update_image(client, A, image['id'], properties={'a': '1', 'b': '2'})
    response, updated = update_image(client, A, image['id'], properties={'b': '3', 'c': '4'})
    assert response.status_code == 200
    assert updated['properties'] == {'b': '3', 'c': '4'}
    assert properties_in_head(client, image['id']) == {'b': '3', 'c': '4'}


def test_purge_props_true_values(client):
    image = with_props(client)
    for value in ('true', 'True', '1', 'yes'):
        update_image(client, A, image['id'], properties={'a': '1', 'b': '2'},
                     headers={PURGE: 'false'})
        response, updated = update_image(client, A, image['id'], properties={'c': '5'},
                                         headers={PURGE: value})
        assert response.status_code == 200
        assert updated['properties'] == {'c': '5'}, value


def test_purge_props_false_merges(client):
    image = with_props(client)
    response, updated = update_image(client, A, image['id'], name='merged',
                                     properties={'b': 'changed', 'c': '3'},
                                     headers={PURGE: 'false'})
    assert response.status_code == 200
    assert updated['properties'] == {'a': '1', 'b': 'changed', 'c': '3'}
    assert properties_in_head(client, image['id']) == {'a': '1', 'b': 'changed', 'c': '3'}
    # anything but a true-ish value merges
    for value in ('False', 'no', 'banana', '0', ''):
        response, updated = update_image(client, A, image['id'], name=value or 'empty',
                                         headers={PURGE: value})
        assert response.status_code == 200
        assert updated['properties'] == {'a': '1', 'b': 'changed', 'c': '3'}, value


def test_purge_is_forced_off_when_uploading(client):
    response, image = create_image(client, A, properties={'a': '1', 'b': '2'})
    assert image['status'] == 'queued'
    response, updated = update_image(client, A, image['id'], data=DATA,
                                     properties={'c': '3'}, headers={PURGE: 'true'})
    assert response.status_code == 200
    assert updated['status'] == 'active'
    assert updated['properties'] == {'a': '1', 'b': '2', 'c': '3'}
    assert properties_in_head(client, image['id']) == {'a': '1', 'b': '2', 'c': '3'}


# -- guarded fields ----------------------------------------------------------------------
def test_status_cannot_be_changed(client):
    _, image = create_image(client, A, data=DATA)
    for status in ('queued', 'killed', 'deleted', 'saving', 'pending_delete', ''):
        response, _ = update_image(client, A, image['id'], status=status)
        assert_forbidden(response, "Forbidden to modify 'status' of image.")
    response, _ = update_image(client, ADMIN, image['id'], status='queued')
    assert_forbidden(response, "Forbidden to modify 'status' of image.")
    assert stored(client, image['id'])['x-image-meta-status'] == 'active'
    # the same status is accepted
    response, updated = update_image(client, A, image['id'], status='active', name='s')
    assert response.status_code == 200
    assert (updated['status'], updated['name']) == ('active', 's')
    _, queued = create_image(client, A)
    response, updated = update_image(client, A, queued['id'], status='queued')
    assert response.status_code == 200 and updated['status'] == 'queued'


def test_id_cannot_be_changed(client):
    _, image = create_image(client, A)
    other = str(uuid.uuid4())
    for identity in (A, ADMIN):
        response, _ = update_image(client, identity, image['id'], id=other, name='x')
        assert_forbidden(response, "Forbidden to modify 'id' of image.")
    assert head(client, ADMIN, other).status_code == 404
    assert stored(client, image['id'])['x-image-meta-name'] == 'image'
    response, updated = update_image(client, A, image['id'], id=image['id'], name='same')
    assert response.status_code == 200
    assert (updated['id'], updated['name']) == (image['id'], 'same')


def test_size_and_checksum_of_an_active_image(client):
    _, image = create_image(client, A, data=DATA)
    response, _ = update_image(client, A, image['id'], size=len(DATA) + 1)
    assert_forbidden(response, "Forbidden to modify 'size' of active image.")
    response, _ = update_image(client, A, image['id'], checksum='0' * 32)
    assert_forbidden(response, "Forbidden to modify 'checksum' of active image.")
    meta = stored(client, image['id'])
    assert meta['x-image-meta-size'] == str(len(DATA))
    assert meta['x-image-meta-checksum'] == MD5
    response, updated = update_image(client, A, image['id'], size=len(DATA), checksum=MD5,
                                     name='same values')
    assert response.status_code == 200
    assert (updated['size'], updated['checksum'], updated['name']) == (
        len(DATA), MD5, 'same values')
    # admins may change both
    response, updated = update_image(client, ADMIN, image['id'], size=99, checksum='0' * 32)
    assert response.status_code == 200
    assert (updated['size'], updated['checksum']) == (99, '0' * 32)
    assert get_header(response, 'ETag') == '0' * 32
    meta = stored(client, image['id'])
    assert (meta['x-image-meta-size'], meta['x-image-meta-checksum']) == ('99', '0' * 32)


def test_size_checksum_and_data_of_a_deactivated_image(client):
    _, image = create_image(client, A, data=DATA)
    deactivate = '/v1/images/%s/actions/deactivate' % image['id']
    assert client.http.post(deactivate, headers=ADMIN).status_code == 204
    response, _ = update_image(client, A, image['id'], size=1)
    assert_forbidden(response, "Forbidden to modify 'size' of deactivated image.")
    response, _ = update_image(client, A, image['id'], checksum='0' * 32)
    assert_forbidden(response, "Forbidden to modify 'checksum' of deactivated image.")
    response, _ = update_image(client, A, image['id'], data=b'other')
    assert response.status_code == 409
    assert 'Cannot upload to an unqueued image' in error_text(response)
    response, updated = update_image(client, A, image['id'], name='still deactivated')
    assert response.status_code == 200
    assert (updated['status'], updated['size'], updated['checksum']) == (
        'deactivated', len(DATA), MD5)


def test_size_and_checksum_are_free_on_a_queued_image(client):
    _, image = create_image(client, A)
    response, updated = update_image(client, A, image['id'], size=7, checksum='abc')
    assert response.status_code == 200
    assert (updated['size'], updated['checksum'], updated['status']) == (7, 'abc', 'queued')


def test_deleted_image_cannot_be_updated(client):
    _, image = create_image(client, A, data=DATA)
    assert delete_image(client, A, image['id']).status_code == 200
    response, _ = update_image(client, ADMIN, image['id'], name='zombie')
    assert_forbidden(response, 'Forbidden to update deleted image.')
    assert stored(client, image['id'])['x-image-meta-name'] == 'image'
    # its owner does not see it any more
    response, _ = update_image(client, A, image['id'], name='zombie')
    assert response.status_code == 404


# -- who may update -------------------------------------------------------------------
def test_non_owner_cannot_update_a_public_image(client):
    image = public_image_of(client, 'tenant-a', properties={'a': '1'})
    response, _ = update_image(client, B, image['id'], name='hijack')
    assert_forbidden(response, 'Forbidden to update image')
    meta = stored(client, image['id'])
    assert meta['x-image-meta-name'] == 'image'
    assert meta['x-image-meta-property-a'] == '1'


def test_non_owner_cannot_see_a_private_image(client):
    _, image = create_image(client, A, properties={'a': '1'})
    response, _ = update_image(client, B, image['id'], name='hijack')
    assert response.status_code == 404
    assert 'not found' in error_text(response)
    meta = stored(client, image['id'])
    assert meta['x-image-meta-name'] == 'image'
    assert meta['x-image-meta-property-a'] == '1'


def test_member_cannot_update_a_shared_image(client):
    _, image = create_image(client, A)
    share(client, image['id'], 'tenant-b', can_share=True)
    assert head(client, B, image['id']).status_code == 200
    response, _ = update_image(client, B, image['id'], name='by member')
    assert response.status_code in (403, 404)   # the reference's 500 is a bug (§18.1)
    assert stored(client, image['id'])['x-image-meta-name'] == 'image'


def test_caller_without_tenant_cannot_update(client):
    _, image = create_image(client, ADMIN, owner='')
    assert image['owner'] is None
    nobody = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}
    response, _ = update_image(client, nobody, image['id'], name='x')
    assert response.status_code == 403
    assert stored(client, image['id'])['x-image-meta-name'] == 'image'


def test_admin_updates_any_image(client):
    _, image = create_image(client, A)
    response, updated = update_image(client, ADMIN, image['id'], name='by admin')
    assert response.status_code == 200
    assert (updated['name'], updated['owner']) == ('by admin', 'tenant-a')


# -- owner -------------------------------------------------------------------------------
def test_owner_change(client):
    _, image = create_image(client, A)
    response, updated = update_image(client, A, image['id'], owner='tenant-b', name='n')
    assert response.status_code == 200
    assert (updated['owner'], updated['name']) == ('tenant-a', 'n')
    assert head(client, B, image['id']).status_code == 404
    assert head(client, A, image['id']).status_code == 200
    # admins change the owner
    response, updated = update_image(client, ADMIN, image['id'], owner='tenant-b')
    assert response.status_code == 200
    assert updated['owner'] == 'tenant-b'
    assert head(client, B, image['id']).status_code == 200
    assert head(client, A, image['id']).status_code == 404
    response, updated = update_image(client, ADMIN, image['id'], owner='')
    assert response.status_code == 200
    assert updated['owner'] is None
    assert 'x-image-meta-owner' not in stored(client, image['id'])


# -- amazon pairing on PUT ---------------------------------------------------------------
def test_amazon_format_alone_rewrites_the_other(client):
    _, image = create_image(client, A, data=DATA)
    assert (image['disk_format'], image['container_format']) == ('raw', 'bare')
    response, updated = update_image(client, A, image['id'], container_format='aki')
    assert response.status_code == 200
    assert (updated['disk_format'], updated['container_format']) == ('aki', 'aki')
    meta = stored(client, image['id'])
    assert (meta['x-image-meta-disk_format'], meta['x-image-meta-container_format']) == (
        'aki', 'aki')
    response, updated = update_image(client, A, image['id'], disk_format='ari')
    assert response.status_code == 200
    assert (updated['disk_format'], updated['container_format']) == ('ari', 'ari')


def test_amazon_mismatch_on_put(client):
    _, image = create_image(client, A)
    for disk, container in (('ari', 'bare'), ('raw', 'ami'), ('aki', 'ari')):
        response, _ = update_image(client, A, image['id'], disk_format=disk,
                                   container_format=container)
        assert response.status_code == 400
        assert 'Invalid mix of disk and container formats.' in error_text(response)
    meta = stored(client, image['id'])
    assert (meta['x-image-meta-disk_format'], meta['x-image-meta-container_format']) == (
        'raw', 'bare')


# -- publicising ------------------------------------------------------------------------------
def test_non_admin_cannot_make_an_image_public(client):
    _, image = create_image(client, A)
    for value in ('true', 'True', '1', 'on'):
        response, _ = update_image(client, A, image['id'], is_public=value)
        assert_forbidden(response, 'Access was denied to this resource.')
    assert stored(client, image['id'])['x-image-meta-is_public'] == 'False'
    assert head(client, B, image['id']).status_code == 404
    # admins may
    response, updated = update_image(client, ADMIN, image['id'], is_public='yes')
    assert response.status_code == 200
    assert updated['is_public'] is True
    assert head(client, B, image['id']).status_code == 200


def test_publicity_of_a_public_image(client):
    image = public_image_of(client, 'tenant-a')
    # is_public true is refused to non-admins even when the image is public already
    response, _ = update_image(client, A, image['id'], is_public='true', name='x')
    assert_forbidden(response, 'Access was denied to this resource.')
    assert stored(client, image['id'])['x-image-meta-name'] == 'image'
    # the owner may make it private
    assert head(client, B, image['id']).status_code == 200
    response, updated = update_image(client, A, image['id'], is_public='false')
    assert response.status_code == 200
    assert updated['is_public'] is False
    assert head(client, B, image['id']).status_code == 404


# -- property quota -------------------------------------------------------------------------
def test_property_quota_counts_kept_properties_when_not_purging(client, settings_override):
    settings_override(image_property_quota=2)
    image = with_props(client)
    response, _ = update_image(client, A, image['id'], properties={'c': '3'},
                               headers={PURGE: 'false'})
    assert response.status_code == 413
    assert ('The limit has been exceeded on the number of allowed image properties. '
            'Attempted: 3, Maximum: 2') in error_text(response)
    assert properties_in_head(client, image['id']) == {'a': '1', 'b': '2'}
    response, updated = update_image(client, A, image['id'], properties={'a': 'x'},
                                     headers={PURGE: 'false'})
    assert response.status_code == 200
    assert updated['properties'] == {'a': 'x', 'b': '2'}


def test_property_quota_when_purging(client, settings_override):
    settings_override(image_property_quota=2)
    image = with_props(client)
    response, updated = update_image(client, A, image['id'], properties={'c': '3', 'd': '4'})
    assert response.status_code == 200
    assert updated['properties'] == {'c': '3', 'd': '4'}
    response, _ = update_image(client, A, image['id'],
                               properties={'e': '5', 'f': '6', 'g': '7'})
    assert response.status_code == 413
    assert 'Attempted: 3, Maximum: 2' in error_text(response)
    assert properties_in_head(client, image['id']) == {'c': '3', 'd': '4'}
    # with data purging is off: kept properties count
    response, image = create_image(client, A, properties={'a': '1', 'b': '2'})
    response, _ = update_image(client, A, image['id'], data=DATA, properties={'c': '3'})
    assert response.status_code == 413
    assert 'Attempted: 3, Maximum: 2' in error_text(response)
    assert stored(client, image['id'])['x-image-meta-status'] == 'queued'
    assert stored_object_keys() == []


# -- null values ---------------------------------------------------------------------------
def test_empty_header_sets_the_field_to_null(client):
    _, image = create_image(client, A, name='named', properties={'a': '1', 'b': '2'})
    response, updated = update_image(client, A, image['id'], name='', properties={'a': ''},
                                     headers={PURGE: 'false'})
    assert response.status_code == 200
    assert updated['name'] is None
    assert updated['properties'] == {'a': None, 'b': '2'}
    meta = stored(client, image['id'])
    assert 'x-image-meta-name' not in meta
    assert 'x-image-meta-property-a' not in meta
    assert meta['x-image-meta-property-b'] == '2'
    detail = body_json(client.http.get('/v1/images/detail', headers=A))['images']
    assert detail[0]['name'] is None
    assert detail[0]['properties'] == {'a': None, 'b': '2'}


def test_virtual_size_and_protected(client):
    _, image = create_image(client, A)
    response, updated = update_image(client, A, image['id'], virtual_size=1024)
    assert response.status_code == 200 and updated['virtual_size'] == 1024
    response, updated = update_image(client, A, image['id'], virtual_size='None')
    assert response.status_code == 200 and updated['virtual_size'] is None
    assert 'x-image-meta-virtual_size' not in stored(client, image['id'])
    response, updated = update_image(client, A, image['id'], protected='True')
    assert response.status_code == 200 and updated['protected'] is True
    response, updated = update_image(client, A, image['id'], protected='banana')
    assert response.status_code == 200 and updated['protected'] is False


# -- external sources on PUT -----------------------------------------------------------------
def test_unsupported_location_and_copy_from_are_refused_on_put(client):
    _, image = create_image(client, A)
    response, _ = update_image(client, A, image['id'], location='file:///x.img')
    assert response.status_code == 400
    response, _ = update_image(client, A, image['id'],
                               headers={'x-glance-api-copy-from': 'swift+config://x'})
    assert response.status_code == 400
    response, _ = update_image(client, A, image['id'], location='')
    assert response.status_code == 400
    assert 'External source should not be empty' in error_text(response)
    assert stored(client, image['id'])['x-image-meta-status'] == 'queued'


def test_publicize_policy_is_checked_before_visibility(client):
    _, image = create_image(client, A)
    response, _ = update_image(client, B, image['id'], is_public='true')
    assert_forbidden(response, 'Access was denied to this resource.')
    assert stored(client, image['id'])['x-image-meta-is_public'] == 'False'


def test_non_owner_upload_to_a_public_image(client):
    # active: the 409 comes before the ownership check (observed in the reference)
    response, active = create_image(client, ADMIN, data=DATA, is_public='True',
                                    owner='tenant-a')
    assert response.status_code == 201
    response, _ = update_image(client, B, active['id'], data=b'other')
    assert response.status_code == 409
    assert 'Cannot upload to an unqueued image' in error_text(response)
    # queued: forbidden, and the image stays queued without data
    queued = public_image_of(client, 'tenant-a')
    response, _ = update_image(client, B, queued['id'], data=DATA)
    assert_forbidden(response, 'Forbidden to update image')
    assert stored(client, queued['id'])['x-image-meta-status'] == 'queued'
    assert stored_object_keys() == ['images/%s' % active['id']]
