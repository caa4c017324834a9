"""DELETE /v1/images/{id}: soft delete, protection, data and memberships (v1 §12)."""
import re
import uuid

from tests.helpers import (ADMIN, share, admin_view, body_json, create_image,
                           delete_image, error_text, head, memberships_of, stored_image_ids,
                           stored_object, stored_object_keys, tenant, update_image)

A = tenant('tenant-a')
B = tenant('tenant-b')
DATA = b'delete test data'
TIME = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$')


def active_image(client, identity=A, **fields):
    response, image = create_image(client, identity, data=DATA, **fields)
    assert response.status_code == 201 and image['status'] == 'active'
    assert stored_object(image['id']) == DATA
    return image


def public_image_of(client, owner, **fields):
    response, image = create_image(client, ADMIN, data=DATA, is_public='True', owner=owner,
                                   **fields)
    assert response.status_code == 201 and image['is_public'] is True
    return image


def status_of(client, image_id):
    return admin_view(client, image_id)['x-image-meta-status']


def assert_untouched(client, image):
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == image['status']
    assert meta['x-image-meta-deleted'] == 'False'
    assert 'x-image-meta-deleted_at' not in meta
    if image['status'] == 'active' and image['size']:
        assert stored_object(image['id']) == DATA


# -- the soft delete ---------------------------------------------------------------------
def test_delete_answers_200_with_an_empty_body_and_removes_the_data(client):
    image = active_image(client)
    other = active_image(client)
    response = delete_image(client, A, image['id'])
    assert response.status_code == 200
    assert response.body == b''
    assert stored_object(image['id']) is None
    assert stored_object_keys() == ['images/%s' % other['id']]


def test_deleted_image_stays_visible_to_admins(client):
    image = active_image(client, properties={'k': 'v'})
    assert delete_image(client, A, image['id']).status_code == 200
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'deleted'
    assert meta['x-image-meta-deleted'] == 'True'
    assert TIME.match(meta['x-image-meta-deleted_at'])
    assert meta['x-image-meta-deleted_at'] >= image['created_at']
    assert meta['x-image-meta-updated_at'] >= image['updated_at']
    assert meta['x-image-meta-owner'] == 'tenant-a'
    assert meta['x-image-meta-checksum'] == image['checksum']
    assert stored_image_ids() == [image['id']]
    download = client.http.get('/v1/images/%s' % image['id'],
                               headers=dict(ADMIN, Accept='*/*'))
    assert download.status_code == 404
    assert 'is not active' in error_text(download)


def test_deleted_image_is_gone_for_non_admins(client):
    image = active_image(client)
    assert delete_image(client, A, image['id']).status_code == 200
    image_url = '/v1/images/%s' % image['id']
    assert head(client, A, image['id']).status_code == 404
    assert client.http.get(image_url, headers=dict(A, Accept='*/*')).status_code == 404
    assert update_image(client, A, image['id'], name='x')[0].status_code == 404
    again = delete_image(client, A, image['id'])
    assert again.status_code == 404
    assert body_json(client.http.get('/v1/images', headers=A)) == {'images': []}
    assert body_json(client.http.get('/v1/images/detail', headers=A)) == {'images': []}
    assert status_of(client, image['id']) == 'deleted'


def test_second_delete_by_admin_is_not_found(client):
    image = active_image(client)
    assert delete_image(client, ADMIN, image['id']).status_code == 200
    meta = admin_view(client, image['id'])
    response = delete_image(client, ADMIN, image['id'])
    assert response.status_code == 404
    assert 'Image %s not found' % image['id'] in error_text(response)
    assert admin_view(client, image['id'])['x-image-meta-deleted_at'] == meta[
        'x-image-meta-deleted_at']


def test_id_of_a_deleted_image_cannot_be_reused(client):
    image_id = str(uuid.uuid4())
    response, _ = create_image(client, A, id=image_id)
    assert response.status_code == 201
    assert delete_image(client, A, image_id).status_code == 200
    for identity in (A, ADMIN):
        response, _ = create_image(client, identity, id=image_id, data=DATA)
        assert response.status_code == 409
        assert 'An image with identifier %s already exists' % image_id in error_text(response)
    assert stored_image_ids() == [image_id]
    assert status_of(client, image_id) == 'deleted'
    assert stored_object_keys() == []


def test_queued_and_killed_images_can_be_deleted(client):
    _, queued = create_image(client, A)
    killed_response = client.http.post('/v1/images', headers=dict(A, **{
        'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare',
        'Content-Type': 'text/plain'}), body=b'data')
    assert killed_response.status_code == 400
    [killed_id] = [i for i in stored_image_ids() if i != queued['id']]
    assert status_of(client, killed_id) == 'killed'
    for image_id in (queued['id'], killed_id):
        response = delete_image(client, A, image_id)
        assert response.status_code == 200 and response.body == b''
        meta = admin_view(client, image_id)
        assert (meta['x-image-meta-status'], meta['x-image-meta-deleted']) == (
            'deleted', 'True')


def test_delete_removes_memberships(client):
    image = active_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c', can_share=True)
    assert head(client, B, image['id']).status_code == 200
    assert memberships_of(image['id']) == ['tenant-b', 'tenant-c']
    assert delete_image(client, A, image['id']).status_code == 200
    assert memberships_of(image['id']) == []
    assert head(client, B, image['id']).status_code == 404
    assert body_json(client.http.get('/v1/images', headers=B)) == {'images': []}
    assert body_json(client.http.get('/v1/shared-images/tenant-b', headers=ADMIN)) == {
        'shared_images': []}
    members = client.http.get('/v1/images/%s/members' % image['id'], headers=ADMIN)
    assert members.status_code == 404


def test_deactivated_image_can_be_deleted(client):
    image = active_image(client)
    path = '/v1/images/%s/actions/deactivate' % image['id']
    assert client.http.post(path, headers=ADMIN).status_code == 204
    assert status_of(client, image['id']) == 'deactivated'
    assert delete_image(client, A, image['id']).status_code == 200
    assert status_of(client, image['id']) == 'deleted'
    assert stored_object(image['id']) is None


# -- protected images -----------------------------------------------------------------
def test_protected_image_cannot_be_deleted(client):
    image = active_image(client, protected='True')
    for identity in (A, ADMIN):
        response = delete_image(client, identity, image['id'])
        assert response.status_code == 403
        assert 'Image is protected' in error_text(response)
    assert_untouched(client, image)
    response, _ = update_image(client, A, image['id'], protected='False')
    assert response.status_code == 200
    assert delete_image(client, A, image['id']).status_code == 200
    assert status_of(client, image['id']) == 'deleted'
    assert stored_object(image['id']) is None
    # a protected queued image
    _, queued = create_image(client, A, protected='yes')
    response = delete_image(client, A, queued['id'])
    assert response.status_code == 403
    assert 'Image is protected' in error_text(response)
    assert_untouched(client, queued)


def test_protection_is_checked_before_ownership(client):
    image = public_image_of(client, 'tenant-a', protected='True')
    response = delete_image(client, B, image['id'])
    assert response.status_code == 403
    assert 'Image is protected' in error_text(response)
    assert_untouched(client, image)


# -- who may delete ----------------------------------------------------------------------
def test_non_owner_cannot_delete_a_public_image(client):
    image = public_image_of(client, 'tenant-a')
    response = delete_image(client, B, image['id'])
    assert response.status_code == 403
    assert 'Forbidden to delete image' in error_text(response)
    assert_untouched(client, image)


def test_invisible_and_unknown_images_are_not_found(client):
    image = active_image(client)
    response = delete_image(client, B, image['id'])
    assert response.status_code == 404
    assert 'not found' in error_text(response)
    assert_untouched(client, image)
    for image_id in (str(uuid.uuid4()), '1', 'new'):
        assert delete_image(client, ADMIN, image_id).status_code == 404
        assert delete_image(client, A, image_id).status_code == 404


def test_member_cannot_delete_a_shared_image(client):
    image = active_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    response = delete_image(client, B, image['id'])
    assert response.status_code in (403, 404)   # the reference's 500 is a bug (§18.1)
    assert_untouched(client, image)
    assert memberships_of(image['id']) == ['tenant-b']


def test_caller_without_tenant_cannot_delete_an_ownerless_image(client):
    response, image = create_image(client, ADMIN, owner='', data=DATA)
    assert image['owner'] is None
    nobody = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}
    response = delete_image(client, nobody, image['id'])
    assert response.status_code == 403
    assert_untouched(client, image)


def test_admin_deletes_any_image(client):
    image = active_image(client)
    response = delete_image(client, ADMIN, image['id'])
    assert response.status_code == 200 and response.body == b''
    assert status_of(client, image['id']) == 'deleted'
    assert stored_object(image['id']) is None


# -- delayed delete ------------------------------------------------------------------------
def test_delayed_delete_of_an_image_with_data(client, settings_override):
    settings_override(delayed_delete=True)
    image = active_image(client)
    response = delete_image(client, A, image['id'])
    assert response.status_code == 200 and response.body == b''
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'pending_delete'
    assert meta['x-image-meta-deleted'] == 'True'
    assert TIME.match(meta['x-image-meta-deleted_at'])
    assert head(client, A, image['id']).status_code == 404
    assert body_json(client.http.get('/v1/images', headers=A)) == {'images': []}
    # a pending_delete image cannot be deleted again
    response = delete_image(client, ADMIN, image['id'])
    assert response.status_code == 403
    assert 'Forbidden to delete a pending_delete image.' in error_text(response)
    assert delete_image(client, A, image['id']).status_code == 404
    assert status_of(client, image['id']) == 'pending_delete'


def test_delayed_delete_of_images_without_data(client, settings_override):
    settings_override(delayed_delete=True)
    _, queued = create_image(client, A)
    _, empty = create_image(client, A, size=0)
    assert (queued['status'], empty['status']) == ('queued', 'active')
    for image in (queued, empty):
        assert delete_image(client, A, image['id']).status_code == 200
        meta = admin_view(client, image['id'])
        assert (meta['x-image-meta-status'], meta['x-image-meta-deleted']) == (
            'deleted', 'True')
